"""Shared helpers: compose configs in-process and run jobs without a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import DictConfig, OmegaConf, open_dict

from aebench.paths import config_dir
from aebench.record import RunRecord
from aebench.runner import JobContext, run_job
from aebench.schema import register_configs

ROOT = Path(__file__).resolve().parent.parent


def compose_config(overrides: list[str] | None = None) -> tuple[DictConfig, dict]:
    """The job config for ``overrides`` (hydra node removed) and the group choices."""
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides or [], return_hydra_config=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    return cfg, choices


def run_in_process(
    overrides: list[str], out_dir: Path, reraise: bool = False
) -> tuple[RunRecord, dict]:
    """Run one job like ``aebench <overrides>`` would; return the record and its JSON on disk."""
    cfg, choices = compose_config(overrides)
    record = run_job(cfg, JobContext(out_dir, choices, overrides, reraise=reraise))
    return record, json.loads((out_dir / "result.json").read_text())


def run_cli(*args: str, cwd: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """``python -m aebench ARGS`` in a subprocess, offline."""
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    return subprocess.run(
        [sys.executable, "-m", "aebench", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def read_curves(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path) as f:
        return list(csv.DictReader(f))
