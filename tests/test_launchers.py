"""Launchers beyond the basic one write the same records: the same tiny sweep under the basic
launcher, ``hydra/launcher=aebench_joblib`` (2 parallel workers) and ``submitit_local``
(submitit's local executor, what ``aebench_slurm`` uses on a cluster, minus Slurm), with job
folders named by their overrides so the folders match one to one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aebench.identity import SUBDIR_OVERRIDE
from analysis.collect import load_runs
from tests.helpers import ROOT, run_cli

SWEEP = [
    "-m",
    "task=regression",
    "optimizer=sgdm",
    "scale=smoke",
    "steps=20",
    "ae=off,on",
    "seed=0,1",
    "trainer.threads=1",
    SUBDIR_OVERRIDE,
]
#: record fields that may differ between launchers, and why:
#: wall_s and target.wall_s: wall-clock time (parallel jobs share the CPU, start-up differs);
#: git: the commit and dirty flag of the tree at the time the job ran (other work goes on)
VARYING = ("wall_s", "git")


def _sweep(tmp_path: Path, name: str, *launcher: str) -> dict[str, tuple[dict, str]]:
    """Run the sweep into ``tmp_path/name``; ``{job folder: (record, curves.csv text)}``."""
    out = tmp_path / name
    proc = run_cli(*SWEEP, f"hydra.sweep.dir={out}", *launcher, cwd=ROOT, timeout=400)
    assert proc.returncode == 0, proc.stderr[-3000:]
    found = {}
    for path in sorted(out.rglob("result.json")):
        record = json.loads(path.read_text())
        for key in VARYING:
            record.pop(key)
        record["target"].pop("wall_s")
        found[path.parent.name] = (record, (path.parent / "curves.csv").read_text())
    return found


def _assert_same(basic: dict, other: dict) -> None:
    assert sorted(other) == sorted(basic)  # the same folders: one per job, named alike
    for folder, (record, curves) in basic.items():
        theirs, their_curves = other[folder]
        assert theirs == record, folder  # arm, seed, status, metrics, pairing hashes, config...
        assert their_curves == curves, folder  # deterministic on CPU, whatever the process


@pytest.fixture(scope="module")
def basic(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[dict, str]]:
    found = _sweep(tmp_path_factory.mktemp("launch"), "basic")
    assert len(found) == 4 and {r["status"] for r, _ in found.values()} == {"completed"}
    assert len({(r["arm"], r["seed"]) for r, _ in found.values()}) == 4
    return found


@pytest.mark.slow
def test_joblib_launcher_writes_the_records_of_the_basic_launcher(
    basic: dict, tmp_path: Path
) -> None:
    joblib = _sweep(tmp_path, "joblib", "hydra/launcher=aebench_joblib", "hydra.launcher.n_jobs=2")
    _assert_same(basic, joblib)
    # and the analysis reads them unchanged: the same runs table but for the folders
    a = load_runs([tmp_path / "joblib"], curves=True).table.drop(columns=["path", "wall_s"])
    assert len(a) == 4 and set(a["status"]) == {"completed"}


@pytest.mark.slow
def test_submitit_local_launcher_writes_the_records_of_the_basic_launcher(
    basic: dict, tmp_path: Path
) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher")
    local = _sweep(
        tmp_path, "submitit", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=10"
    )
    _assert_same(basic, local)
    assert list((tmp_path / "submitit" / ".submitit").iterdir())  # submitit's files, apart


@pytest.mark.slow
def test_a_failing_job_under_joblib_is_recorded_and_the_sweep_goes_on(tmp_path: Path) -> None:
    """The app reraises only outside a sweep (``hc.mode``): joblib workers see MULTIRUN too."""
    proc = run_cli(
        "-m",
        "task=regression",
        "task._target_=tests.failing_task.FailingRegression",
        "scale=smoke",
        "steps=20",
        "seed=0,1",
        "trainer.threads=1",
        f"hydra.sweep.dir={tmp_path}",
        "hydra/launcher=aebench_joblib",
        cwd=ROOT,
        timeout=400,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in tmp_path.rglob("result.json")]
    assert len(records) == 2 and {r["status"] for r in records} == {"failed"}
    assert all("boom: injected failure" in r["error"] for r in records)
