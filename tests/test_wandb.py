"""logger=wandb: offline by default, one W&B run per job, each finished when its job ends."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.mark.slow
def test_wandb_offline_run_per_job(tmp_path: Path) -> None:
    proc = run_cli(
        "-m", "logger=wandb", "task=rosenbrock", "seed=0,1", "steps=5", cwd=tmp_path, timeout=300
    )
    assert proc.returncode == 0, proc.stderr
    jobs = sorted(tmp_path.glob("multirun/*/*/[0-9]"))
    assert len(jobs) == 2
    for job in jobs:
        assert json.loads((job / "result.json").read_text())["status"] == "completed"
        (run_dir,) = job.glob("wandb/offline-run-*")
        (history,) = run_dir.glob("run-*.wandb")
        assert history.stat().st_size > 0
