"""The Hydra application: ``aebench [overrides]`` and ``aebench -m [sweep overrides]``."""

from __future__ import annotations

import sys
from pathlib import Path

import hydra
from hydra.core.hydra_config import HydraConfig
from hydra.types import RunMode
from omegaconf import DictConfig

from aebench.identity import register_resolver
from aebench.paths import config_dir
from aebench.resume import clean_hydra_only
from aebench.schema import register_configs
from aebench.validation import ConfigError

register_configs()
register_resolver()  # ${aebench_job_dir:...}: job folders named by their overrides


@hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
def hydra_entry(cfg: DictConfig) -> None:
    # imported here, not above: a sweep's parent process (joblib, submitit) then never imports
    # torch and Lightning (~4 s), only the workers that run jobs do
    from aebench.runner import JobContext, run_job

    hc = HydraConfig.get()
    multirun = hc.mode == RunMode.MULTIRUN
    ctx = JobContext(
        out_dir=Path(hc.runtime.output_dir),
        choices=dict(hc.runtime.choices),
        overrides=list(hc.overrides.task),
        reraise=not multirun,
        sweep_dir=Path(hc.sweep.dir) if multirun else None,
    )
    try:
        run_job(cfg, ctx)
    except ConfigError as err:  # a value only the task could check: one line, no record
        print(f"aebench: error: {err}", file=sys.stderr)
        if not multirun:  # nothing left behind: the folder Hydra made for the job, if empty
            _remove_hydra_only(ctx.out_dir)
        raise SystemExit(2) from None


def prewarm() -> int:
    """Import what a job imports (torch, Lightning, the runner) and return this process's id:
    a parallel launcher's worker that runs it while the sweep is still being checked starts its
    first job without the ~4-9 s import (hydra/sweeper=aebench, docs/performance.md section 5)."""
    import os

    import aebench.runner  # noqa: F401

    return os.getpid()


def _remove_hydra_only(out_dir: Path) -> None:
    """Remove the job folder if it holds only Hydra's start-up files, then its parents while
    they are empty (``outputs/<date>/``), up to the working directory."""
    if not clean_hydra_only(out_dir):
        return
    stop = Path.cwd().resolve()
    parent = out_dir.resolve().parent
    while parent != stop and stop in parent.parents:
        try:
            parent.rmdir()
        except OSError:
            return
        parent = parent.parent
