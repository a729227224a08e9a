"""Shared gauge set point (issue 13, item 2): ``aebench-evidence`` runs e09/e10's reference level
first (stage 1, ``ae.gauge.target=calibrate``, one folder per seed), then every level with
``ae.gauge.target=from_run`` pointing at that seed's reference record (stage 2), resumably.

The job runner is replaced by a fake that writes the records a sweep would write, so the tests
check the ordering and the overrides, not training (tests/test_evidence.py runs real jobs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import orchestration.tuning_stage as tuning_stage
from aebench.ae.gauge import set_points_from_run
from orchestration import evidence
from orchestration.evidence import from_run_template, reference_dir

E09 = "e09_batch_size_sweep"


def _value(overrides: list[str], key: str) -> str | None:
    hits = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == key]
    return hits[-1] if hits else None


class FakeSweeps:
    """Stands in for ``run_staged``: records each call and writes a final record per job (a set
    point ``0.1 + seed/100`` on reference jobs; ``fail_seeds`` get status failed there)."""

    def __init__(self, fail_seeds: tuple[int, ...] = ()) -> None:
        self.calls: list[tuple[str, list[list[str]], list[str]]] = []
        self.fail_seeds = fail_seeds

    def __call__(self, composer, p, out, args, say):  # noqa: ANN001, ANN204
        if p.stage == "shared":  # stage 2 may only start once its references are recorded
            for job in p.todo:
                seed = int(_value(job.overrides, "seed"))
                ref = reference_dir(out, p.experiment) / f"seed{seed}" / "result.json"
                assert json.loads(ref.read_text())["status"] == "completed"
        self.calls.append((p.stage, [list(j.overrides) for j in p.todo], list(p.command)))
        failed = 0
        for job in p.todo:
            seed = int(_value(job.overrides, "seed"))
            status = "completed"
            if p.stage == "reference" and seed in self.fail_seeds:
                status, failed = "failed", failed + 1
            folder = out / job.folder
            folder.mkdir(parents=True, exist_ok=True)
            extra = {"ae": {"gauge_set_point": [0.1 + seed / 100]}} if status != "failed" else {}
            rec = {"arm": f"fake-{p.stage}", "seed": seed, "status": status, "extra": extra}
            (folder / "result.json").write_text(json.dumps(rec, indent=1))  # as records are
            (folder / "curves.csv").write_text("step,train_loss\n0,1.0\n")
        return (1 if failed else 0), failed


def _main(out: Path, fake: FakeSweeps, monkeypatch: pytest.MonkeyPatch, *extra: str) -> int:
    monkeypatch.setattr(tuning_stage, "run_staged", fake)
    argv = ["--experiments", E09, "--scale", "smoke", "--out", str(out), "--no-analyze"]
    return evidence.main([*argv, "--", "seed=0,1", *extra])


def test_reference_level_runs_first_and_levels_read_its_set_point(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "ev"
    fake = FakeSweeps()
    assert _main(out, fake, monkeypatch) == 0
    assert [c[0] for c in fake.calls] == ["reference", "shared"]
    (_, ref_jobs, ref_cmd), (_, jobs, cmd) = fake.calls
    # stage 1: the reference level only, calibrating, the gauge on, one folder per seed
    assert len(ref_jobs) == 2 and sorted(_value(j, "seed") for j in ref_jobs) == ["0", "1"]
    for j in ref_jobs:
        assert _value(j, "task.batch_size") == "256" and _value(j, "ablation") == "none"
        assert _value(j, "ae.gauge.target") == "calibrate"
    assert f"hydra.sweep.dir={reference_dir(out.resolve(), E09)}" in ref_cmd
    # stage 2: every level and ablation, each with its own seed's reference
    assert len(jobs) == 12  # 3 batch sizes x 2 ablations x 2 seeds
    assert {_value(j, "task.batch_size") for j in jobs} == {"64", "256", "1024"}
    template = from_run_template(out.resolve(), E09)
    for j in jobs:
        assert _value(j, "ae.gauge.target") == "from_run"
        assert _value(j, "ae.gauge.from_run").strip("'") == template
        seed = int(_value(j, "seed"))  # what the gauge reads (aebench.ae.gauge)
        assert set_points_from_run(template, seed, 1) == [pytest.approx(0.1 + seed / 100)]
    assert "ae.gauge.target=from_run" in cmd

    # resumable: a rerun finds both stages done and runs nothing
    again = FakeSweeps()
    assert _main(out, again, monkeypatch) == 0
    assert again.calls == []


def test_a_failed_reference_holds_back_its_seed_until_a_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "ev"
    fake = FakeSweeps(fail_seeds=(1,))
    assert _main(out, fake, monkeypatch) == 1
    assert [c[0] for c in fake.calls] == ["reference", "shared"]
    assert {_value(j, "seed") for j in fake.calls[1][1]} == {"0"}  # seed 1 has no set point
    assert "seeds 1 wait" in capsys.readouterr().out
    rerun = FakeSweeps()
    assert _main(out, rerun, monkeypatch) == 0
    assert [c[0] for c in rerun.calls] == ["reference", "shared"]
    assert [_value(j, "seed") for j in rerun.calls[0][1]] == ["1"]  # only the failed reference
    assert {_value(j, "seed") for j in rerun.calls[1][1]} == {"1"}  # seed 0 was done before


def test_per_run_calibrate_control_is_one_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake = FakeSweeps()
    assert _main(tmp_path / "ev", fake, monkeypatch, "ae.gauge.target=calibrate") == 0
    assert [c[0] for c in fake.calls] == [""]
    assert len(fake.calls[0][1]) == 12
    assert all(_value(j, "ae.gauge.target") == "calibrate" for j in fake.calls[0][1])


def test_reference_level_must_be_one_job_per_seed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    fake = FakeSweeps()
    assert _main(tmp_path / "ev", fake, monkeypatch, "optimizer=sgdm,adamw") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "reference level must be one job per seed" in err[0]
    assert fake.calls == []


@pytest.mark.parametrize("experiment", sorted(evidence.SHARED_SET_POINT))
def test_each_reference_level_is_one_of_the_sweep_levels(experiment: str) -> None:
    """A reference outside the sweep would calibrate a set point no stage-2 level shares."""
    from hydra import compose, initialize_config_dir

    from aebench.paths import config_dir

    with initialize_config_dir(str(config_dir()), version_base=None):
        cfg = compose("config", overrides=[f"experiment={experiment}"], return_hydra_config=True)
    params = cfg.hydra.sweeper.params
    for fixed in evidence.SHARED_SET_POINT[experiment]:
        key, value = fixed.split("=", 1)
        assert key in params, (experiment, key)
        assert value in str(params[key]).split(","), (experiment, fixed, params[key])
