"""Paper scale is ready to run elsewhere: every job composes, and the cost estimate has a
measured step time for every task those jobs use."""

from __future__ import annotations

import pytest

from orchestration.paper_estimate import DEFAULT_TIMES, estimates, load_times, render


@pytest.fixture(scope="module")
def times() -> dict:
    assert DEFAULT_TIMES.is_file(), "run python benchmarks/step_times.py and commit its JSON"
    return load_times(DEFAULT_TIMES)


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
    page = render("paper", times, rows, DEFAULT_TIMES)
    assert "No experiment has been run at this scale" in page
    assert "make evidence SCALE=paper" in page and "--launcher slurm" in page
