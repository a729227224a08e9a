"""Paper scale is ready to run elsewhere: every job composes, and the cost estimate has a
measured step time for every task those jobs use."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from orchestration.paper_estimate import default_times, estimates, load_times, main, render

PAPER_TIMES = default_times("paper")


@pytest.fixture(scope="module")
def times() -> dict:
    assert PAPER_TIMES.is_file(), "run python benchmarks/step_times.py and commit its JSON"
    return load_times(PAPER_TIMES, "paper")


@pytest.mark.slow
def test_every_paper_job_composes_and_has_a_step_time(times: dict) -> None:
    from orchestration.evidence import EXPERIMENT, Composer, expand

    composer = Composer()
    seen_tasks = set()
    try:
        names = [e for e in composer.experiments() if EXPERIMENT.match(e)]
        assert len(names) >= 19
        for name in names:
            jobs = expand(composer, name, [f"experiment={name}", "scale=paper"])
            # the seed changes neither the task nor the budget: one job per other setting
            distinct = {tuple(o for o in job if not o.startswith("seed=")): job for job in jobs}
            for job in distinct.values():
                cfg = composer.compose(job)
                assert cfg.scale.name == "paper", job
                steps = cfg.steps if cfg.steps is not None else cfg.task.budget.paper
                assert int(steps) > 0, job
                seen_tasks.add(str(cfg.hydra.runtime.choices["task"]))
    finally:
        composer.close()
    assert seen_tasks <= set(times["tasks"]), seen_tasks - set(times["tasks"])


def test_estimate_covers_every_experiment(times: dict) -> None:
    rows = estimates("paper", times)
    assert len(rows) >= 19
    missing = {r.experiment: r.missing for r in rows if r.missing}
    assert not missing, missing
    assert all(r.hours is not None and r.hours > 0 for r in rows)
    page = render("paper", times, rows, PAPER_TIMES)
    assert "No experiment has been run at this scale" in page
    assert "make evidence SCALE=paper" in page and "--launcher slurm" in page


def test_times_of_another_scale_are_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    # paper-scale step times (ResNet-18, GPT) would overstate a cpu sweep by orders of magnitude
    out = tmp_path / "cost.md"
    rc = main(["--scale", "cpu", "--times", str(PAPER_TIMES), "--out", str(out)])
    line = capsys.readouterr().out.strip()
    assert rc == 2 and not out.exists()
    assert "measured at scale='paper', not scale='cpu'" in line and "\n" not in line


def test_a_file_without_tasks_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "t.json"
    bad.write_text(json.dumps({"scale": "cpu"}))
    with pytest.raises(ValueError, match="not a step-times file"):
        load_times(bad, "cpu")
