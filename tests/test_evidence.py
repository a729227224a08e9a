"""Resumable evidence runs: ``resume=true`` (aebench/resume.py), job folders named by their
overrides (aebench/identity.py), ``aebench-evidence`` (orchestration/evidence.py) and the report's
Missing experiments section (analysis/report.py)."""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from omegaconf import open_dict

from aebench.identity import job_dir_name, job_identity
from aebench.runner import JobContext, run_job
from aebench.validation import ConfigError
from orchestration.evidence import main as evidence_main
from orchestration.evidence import select_experiments
from tests.helpers import ROOT, compose_config

FIXTURE = ROOT / "tests" / "fixtures" / "experiment" / "e98_evidence_tiny.yaml"
BASE = ["task=regression", "optimizer=sgdm", "scale=smoke", "steps=4", "trainer.threads=1"]


def _run(overrides: list[str], out_dir: Path, sweep_dir: Path | None = None):  # noqa: ANN202
    cfg, choices = compose_config(overrides)
    ctx = JobContext(out_dir, choices, overrides, reraise=True, sweep_dir=sweep_dir)
    return run_job(cfg, ctx)


def _listing(root: Path) -> dict[str, float]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")}


# --------------------------------------------------------------------------- resume=true


def test_resume_skips_a_completed_job_of_the_same_arm_and_seed(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    sweep = tmp_path / "sweep"
    first = _run([*BASE, "seed=1", "resume=true"], sweep / "a", sweep)
    assert first.status == "completed"
    before = _listing(sweep)
    with caplog.at_level(logging.INFO, logger="aebench.runner"):
        again = _run([*BASE, "seed=1", "resume=true"], sweep / "a", sweep)
    assert _listing(sweep) == before  # nothing written, nothing touched
    skips = [r.getMessage() for r in caplog.records if r.getMessage().startswith("skip:")]
    assert skips == [f"skip: {first.arm} seed=1 already completed in {sweep / 'a'}"]
    assert (again.arm, again.seed, again.status) == (first.arm, 1, "completed")
    assert again.metric.final == first.metric.final

    # the same job in another folder (another job number): found by arm and seed; the folder
    # Hydra made for it (.hydra and the job log only) is removed, so it never reads as partial
    other = sweep / "b"
    (other / ".hydra").mkdir(parents=True)
    (other / ".hydra" / "config.yaml").write_text("seed: 1\n")
    (other / "app.log").write_text("")
    _run([*BASE, "seed=1", "resume=true"], other, sweep)
    assert not other.exists()
    assert sorted(p.parent.name for p in sweep.rglob("result.json")) == ["a"]


def test_resume_reruns_partial_and_failed_jobs_in_their_folder(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    killed = sweep / "killed"  # a job killed midway: curves but no record
    killed.mkdir(parents=True)
    (killed / "curves.csv").write_text("step,train_loss\n0,1.0\n")
    record = _run([*BASE, "seed=0", "resume=true"], killed, sweep)
    assert record.status == "completed" and record.steps == 4
    assert json.loads((killed / "result.json").read_text())["status"] == "completed"

    failed = sweep / "failed"  # an exception recorded as failed is retried, not kept
    _run([*BASE, "seed=2", "resume=true"], failed, sweep)
    data = json.loads((failed / "result.json").read_text())
    data.update(status="failed", error="RuntimeError: transient")
    (failed / "result.json").write_text(json.dumps(data))
    rerun = _run([*BASE, "seed=2", "resume=true"], failed, sweep)
    assert rerun.status == "completed" and rerun.error is None
    assert json.loads((failed / "result.json").read_text())["status"] == "completed"


def test_resume_keeps_diverged_runs_as_final(tmp_path: Path) -> None:
    """A diverged run is data: the same config and seed diverge again, so it is not rerun."""
    sweep = tmp_path / "sweep"
    bad = ["task=rosenbrock", "optimizer=sgd", "optimizer.lr=1e6", "scale=smoke", "steps=20"]
    first = _run([*bad, "resume=true"], sweep / "0", sweep)
    assert first.status == "diverged"
    before = _listing(sweep)
    again = _run([*bad, "resume=true"], sweep / "0", sweep)
    assert again.status == "diverged" and _listing(sweep) == before


def test_resume_runs_other_seeds_and_arms(tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    _run([*BASE, "seed=0", "resume=true"], sweep / "0", sweep)
    seed1 = _run([*BASE, "seed=1", "resume=true"], sweep / "1", sweep)
    lr = _run([*BASE, "seed=0", "optimizer.lr=0.05", "resume=true"], sweep / "2", sweep)
    assert seed1.steps == 4 and lr.steps == 4  # trained, not skipped
    arms = {json.loads(p.read_text())["arm"] for p in sweep.glob("*/result.json")}
    assert len(arms) == 2 and len(list(sweep.glob("*/result.json"))) == 3


def test_resume_never_changes_the_arm_id() -> None:
    plain, choices = compose_config([*BASE, "seed=3"])
    resumed, resumed_choices = compose_config([*BASE, "seed=3", "resume=true"])
    arm = job_identity(plain, choices).arm
    assert job_identity(resumed, resumed_choices).arm == arm
    with open_dict(plain):
        del plain["resume"]  # records written before the key existed: the same arm
    assert job_identity(plain, choices).arm == arm


def test_resume_refuses_to_overwrite_another_jobs_record(tmp_path: Path) -> None:
    """Folders named by job number and a sweep whose order changed: job 0 is now another job."""
    sweep = tmp_path / "sweep"
    _run([*BASE, "seed=0", "resume=true"], sweep / "0", sweep)
    before = _listing(sweep)
    with pytest.raises(ConfigError, match="holds the record of another job"):
        _run([*BASE, "seed=5", "resume=true"], sweep / "0", sweep)
    assert _listing(sweep) == before


# --------------------------------------------------------------------------- job folders


def test_job_folders_depend_on_the_overrides_not_their_order() -> None:
    a = ["experiment=e01_static_regression", "ae=on", "seed=3", "resume=True"]
    b = ["seed=3", "trainer.threads=4", "ae=on", "experiment=e01_static_regression"]
    assert job_dir_name(a) == job_dir_name(b)
    assert job_dir_name(a).startswith("e01_static_regression/ae=on,seed=3-")
    assert job_dir_name([*a[:-1], "seed=4"]) != job_dir_name(a)
    weird = job_dir_name(["optimizer.betas=[0.9,0.99]", "task.path='/x y'"])
    assert "/" not in weird and " " not in weird and "[" not in weird
    long = job_dir_name([f"task.k{i}={i}" for i in range(100)])
    assert len(long) < 120


# --------------------------------------------------------------------------- aebench-evidence


def test_unknown_experiment_is_one_line_listing_the_allowed(capsys) -> None:  # noqa: ANN001
    assert evidence_main(["--experiments", "e01_nope", "--scale", "cpu", "--out", "x"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("aebench-evidence: error: --experiments=e01_nope")
    assert "allowed: all, e01_static_regression" in err[0]
    with pytest.raises(
        ConfigError, match="--experiments=nope: no such experiment; allowed: all, e01_x$"
    ):
        select_experiments("nope", ["demo", "e01_x"])
    assert select_experiments("all", ["demo", "e02_b", "e01_a", "tune_lr"]) == ["e02_b", "e01_a"]


def test_dry_run_counts_jobs_and_what_is_done(
    tmp_path: Path,
    capsys,  # noqa: ANN001
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AEBENCH_CONF", str(_conf_with_fixture(tmp_path)))
    out = tmp_path / "ev"
    argv = ["--experiments", "e98_evidence_tiny", "--scale", "smoke", "--out", str(out)]
    assert evidence_main([*argv, "--dry-run"]) == 0
    text = capsys.readouterr().out
    assert "e98_evidence_tiny: 6 jobs, 0 already done, 6 to run" in text
    assert "hydra.sweep.subdir='\\${aebench_job_dir:\\${hydra.overrides.task}}'" in text
    # a job done in its folder counts as done; extra overrides narrow (or widen) the sweep
    job = ["optimizer=sgdm", "ae=on", "steps=30", "seed=1", "experiment=e98_evidence_tiny"]
    job += ["scale=smoke", "resume=True", "trainer.threads=1"]
    _run(job, out / job_dir_name(job), out)
    assert evidence_main([*argv, "--dry-run"]) == 0
    assert "e98_evidence_tiny: 6 jobs, 1 already done, 5 to run" in capsys.readouterr().out
    assert evidence_main([*argv, "--dry-run", "--", "seed=1,7"]) == 0
    assert "e98_evidence_tiny: 4 jobs, 1 already done, 3 to run" in capsys.readouterr().out
    # another experiment sharing that arm and seed finds it by arm and seed, in e98's folder
    argv[1] = "e99_evidence_overlap"
    assert evidence_main([*argv, "--dry-run"]) == 0
    assert "e99_evidence_overlap: 4 jobs, 1 already done, 3 to run" in capsys.readouterr().out


def test_progress_line_counts_and_paces_the_jobs() -> None:
    from orchestration.evidence import Job, Plan, Progress

    plan = Plan("e01_x", [Job([], str(i)) for i in range(10)], [])
    plan.jobs[0].done_in = Path("elsewhere")  # done before this run
    now = time.time()
    progress = Progress(plan, Path("/nonexistent"), now - 100, parallel=2)
    assert progress.line(prior_wall=10.0).startswith("e01_x: 1/10 done, 9 left, 1m40s elapsed")
    assert progress.line(prior_wall=10.0).endswith("ETA 45s")  # 9 jobs x 10 s / 2 workers
    progress.ended = {"1": "completed", "2": "failed", "3": "completed"}
    progress.times = [now - 30, now - 30, now]  # two seen at the first poll, one 30 s later
    assert progress.line(None) == (
        "e01_x: 4/10 done, 1 failed, 6 left, 1m40s elapsed, ETA 3m00s"  # 30 s a job
    )


# --------------------------------------------------------------------------- the report


def test_report_names_each_predictions_experiment_and_the_missing_ones(tmp_path: Path) -> None:
    from analysis.cli import main as analyze
    from tests.analysis.synth import write_run

    for seed in range(5):
        write_run(tmp_path / "runs", seed=seed, final=0.1, target_step=40)
        write_run(tmp_path / "runs", seed=seed, ae=True, final=0.06, target_step=20)
    report = tmp_path / "report"
    assert analyze([str(tmp_path / "runs"), "--out", str(report), "--quiet", "--no-figures"]) == 0
    v = pd.read_csv(report / "predictions.csv", keep_default_na=False)
    assert {"experiment", "runs_missing"} <= set(v.columns)
    static = v[v["prediction"] == "static_speedup"]
    assert set(static["runs_missing"]) == {False}
    assert set(static["experiment"]) == {"e01_static_regression"}
    assert set(v.loc[v["prediction"] == "resonance", "runs_missing"]) == {True}
    text = (report / "report.md").read_text()
    section = text.split("## Missing experiments", 1)[1].split("\n## ", 1)[0]
    assert "`e07_induced_oscillation` (feeds resonance)" in section
    assert (
        f"aebench-evidence --experiments e07_induced_oscillation --scale smoke --out "
        f"{tmp_path / 'runs'}" in section
    )
    assert "aebench -m experiment=e07_induced_oscillation scale=smoke" in section
    # static_speedup found its runs: e01 may be listed only for the predictions still missing
    # theirs (its ae=meta variant)
    fed = [
        name.strip()
        for line in section.splitlines()
        if line.startswith("- `e01_static_regression` (feeds ")
        for name in line.split("(feeds ", 1)[1].split(")", 1)[0].split(",")
    ]
    assert "static_speedup" not in fed and "static_speedup_meta" in fed
    assert "| prediction | experiment | data |" in text
    assert "### Sweeps that would produce the missing runs" in text  # still there


# --------------------------------------------------------------------------- acceptance


def _conf_with_fixture(tmp_path: Path) -> Path:
    conf = tmp_path / "conf"
    shutil.copytree(ROOT / "conf", conf)
    for fixture in FIXTURE.parent.glob("e9*.yaml"):
        shutil.copy(fixture, conf / "experiment" / fixture.name)
    return conf


def _evidence(out: Path, conf: Path, **kw) -> subprocess.Popen:  # noqa: ANN003
    env = {**os.environ, "AEBENCH_CONF": str(conf), "WANDB_MODE": "offline"}
    cmd = [sys.executable, "-m", "orchestration.evidence", "--experiments", "e98_evidence_tiny"]
    cmd += ["--scale", "smoke", "--out", str(out), "--poll", "0.2", "--no-figures"]
    return subprocess.Popen(cmd, env=env, cwd=out.parent, start_new_session=True, text=True, **kw)


def _report_shape(report: Path) -> dict:
    md = (report / "report.md").read_text()
    shape = {
        "files": sorted(str(p.relative_to(report)) for p in report.rglob("*")),
        "headings": [line for line in md.splitlines() if line.startswith("#")],
        "tables": [line.count("|") for line in md.splitlines() if line.startswith("|")],
    }
    for csv in report.glob("*.csv"):
        frame = pd.read_csv(csv)
        shape[csv.name] = (frame.shape, list(frame.columns))
    return shape


@pytest.mark.slow
def test_evidence_killed_midway_resumes_to_the_same_report(tmp_path: Path) -> None:
    """The issue's acceptance: SIGKILL aebench-evidence (and its sweep) after the first record,
    rerun it: one completed record per (arm, seed), and a report shaped like an uninterrupted
    run's."""
    conf = _conf_with_fixture(tmp_path)
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    # the uninterrupted reference runs beside the killed run and its rerun (time, not logic)
    reference = _evidence(whole, conf, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    proc = _evidence(killed, conf, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not list(killed.rglob("result.json")):
        assert proc.poll() is None and time.time() < deadline, "no record appeared"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert len(list(killed.rglob("result.json"))) < 6  # killed midway, not at the end
    rerun = _evidence(killed, conf, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, _ = rerun.communicate(timeout=240)
    assert rerun.returncode == 0, out
    first = next(line for line in out.splitlines() if line.startswith("e98_evidence_tiny: 6 jobs"))
    assert "0 already done" not in first and "6 to run" not in first
    ref_out, _ = reference.communicate(timeout=240)
    assert reference.returncode == 0, ref_out
    assert "e98_evidence_tiny: 6 jobs, 0 already done, 6 to run" in ref_out
    assert "e98_evidence_tiny: 6/6 done, 0 left" in ref_out

    runs = pd.read_csv(killed / "report" / "runs.csv")
    assert len(runs) == 6 and set(runs["status"]) == {"completed"}
    assert runs.groupby(["arm", "seed"]).size().eq(1).all() and runs["arm"].nunique() == 2
    assert _report_shape(killed / "report") == _report_shape(whole / "report")
    finals = {
        (r.arm, r.seed): r.final for r in pd.read_csv(whole / "report" / "runs.csv").itertuples()
    }
    assert {(r.arm, r.seed): r.final for r in runs.itertuples()} == finals  # deterministic too
