"""The tuning stage of ``aebench-evidence`` (issue 18): before an experiment's evaluation runs,
every arm under ``ruleset=external`` gets its trials (:func:`aebench.tuning.run_stage`), and its
evaluation runs then carry the best trial's values, its index and the tuning budget.

An experiment whose jobs are all ``ruleset=self_tuning`` (the default) keeps its one sweep. Under
``external`` the sweep is split into one sweep per arm (the arm's overrides, its seeds swept,
the chosen values added). The tuning runs live beside ``--out``, in ``<out>-tuning/``, so the
analysis of ``--out`` reads evaluation runs only; a rerun skips every tuning job and choice
already made (resumable), then the evaluation runs already done.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from aebench import tuning
from aebench.identity import job_dir_name
from orchestration.evidence import (
    Job,
    Plan,
    _die_with_parent,
    expand_with_choices,
    mark_done,
    record_index,
)


def tuning_root(out: Path) -> Path:
    return out.parent / f"{out.name}-tuning"


def _key(o: str) -> str:
    return o.split("=", 1)[0].lstrip("+~")


def _runner(threads: int) -> Callable[[list[str], Path], dict[str, Any] | None]:
    def run(overrides: list[str], folder: Path) -> dict[str, Any] | None:
        folder.mkdir(parents=True, exist_ok=True)
        cmd = [
            sys.executable,
            "-m",
            "aebench",
            *overrides,
            "resume=true",
            f"trainer.threads={threads}",
            f"hydra.run.dir={folder}",
        ]
        with open(folder / "tuning.log", "w") as log:
            # dies with aebench-evidence (even by SIGKILL), as the sweeps do; an exception here
            # (Ctrl-C) kills it in subprocess.run
            subprocess.run(
                cmd,
                stdout=log,
                stderr=subprocess.STDOUT,
                check=False,
                preexec_fn=_die_with_parent if os.name == "posix" else None,
            )
        return tuning._read(folder)

    return run


def prediction_selection(experiment: str) -> str:
    """What ranks an experiment's trials when the command gives no ``ruleset.select``: the
    metric the tests of the predictions naming the experiment share, when it is one that
    :data:`aebench.tuning.SELECTIONS` can rank by (e01's static_speedup: ``time_to_target``);
    else ``final`` (the task metric's final value)."""
    from aebench.paths import config_dir
    from analysis.predictions import load_predictions

    metrics = {
        test.metric
        for pred in load_predictions([config_dir() / "predictions"])
        if pred.experiment == experiment
        for test in pred.tests
    }
    if len(metrics) == 1 and (metric := metrics.pop()) in tuning.SELECTIONS:
        return metric
    return "final"


def staged_plans(
    composer: Any,
    p: Plan,
    out: Path,
    threads: int,
    say: Callable[[str], None],
    runner: Callable | None = None,
) -> list[Plan]:
    """``[p]`` when no job is under ``ruleset=external``; else run (or resume) the tuning stage
    of each of its arms and return one evaluation sweep per arm."""
    groups: dict[tuple[str, ...], list[list[str]]] = {}
    for job in p.jobs:
        arm = tuple(o for o in job.overrides if _key(o) != "seed")
        groups.setdefault(arm, []).append(job.overrides)
    rulesets = {}
    for arm in groups:
        cfg = composer.compose(list(arm))
        rulesets[arm] = (
            OmegaConf.to_container(cfg.ruleset, resolve=True) if cfg.get("ruleset") else {},
            bool(cfg.ae.enabled),
            # the components whose YAMLs declare the arm's search space (aebench.tuning)
            {
                c: OmegaConf.to_container(cfg[c], resolve=True)
                for c, _ in tuning.COMPONENTS
                if cfg.get(c) is not None
            },
        )
    if not any(str(r.get("name")) == "external" for r, _, _ in rulesets.values()):
        return [p]
    arguments = p.command[4 : len(p.command) - len(p.hydra_overrides)]
    _, base = expand_with_choices(composer, p.experiment, arguments)
    root = tuning_root(out)
    selection = prediction_selection(p.experiment)
    plans = []
    for arm, jobs in groups.items():
        ruleset, ae_on, components = rulesets[arm]
        if not any(_key(o) == "ruleset.select" for o in arm):
            ruleset = {**ruleset, "select": selection}
        seeds = sorted({int(s) for s in (tuning._seed_of(o) for o in jobs) if s is not None})
        arm_id = composer.identity(list(arm))[0]
        if (root / "tuning" / f"{arm_id}.json").exists():
            say(f"{p.experiment}: tuning {arm_id}: done before (choice in {root / 'tuning'})")
        elif str(ruleset.get("name")) == "external":
            say(
                f"{p.experiment}: tuning {arm_id}: {ruleset.get('trials')} trials x "
                f"{ruleset.get('tuning_seeds')} tuning seeds, ranked by "
                f"{ruleset.get('select', 'final')} (into {root})"
            )
        extra = tuning.run_stage(
            arm_id, list(arm), ruleset, ae_on, seeds, root, runner or _runner(threads), components
        )
        keys = {_key(e) for e in extra}
        fixed = [o for o in arm if _key(o) not in keys]
        new_jobs = [
            Job(j2, job_dir_name(j2))
            for j2 in ([o for o in j if _key(o) not in keys] + extra for j in jobs)
        ]
        mark_done(composer, new_jobs, out, record_index(out), base)
        sweep = [f"seed={','.join(str(s) for s in seeds)}"] if seeds else []
        command = [
            sys.executable,
            "-m",
            "aebench",
            "-m",
            *fixed,
            *sweep,
            *extra,
            *p.hydra_overrides,
        ]
        plans.append(Plan(p.experiment, new_jobs, command, p.hydra_overrides))
    return plans


def run_staged(
    composer: Any, p: Plan, out: Path, args: Any, say: Callable[[str], None]
) -> tuple[int, int]:
    """:func:`orchestration.evidence.run_plan` after the tuning stage: ``(exit status, failed)``."""
    from orchestration.evidence import run_plan

    plans = staged_plans(composer, p, out, args.threads, say)
    if plans == [p]:
        return run_plan(p, out, args, say)
    status, failed = 0, 0
    for sub in plans:
        if not sub.todo:
            say(f"{p.experiment}: {len(sub.jobs)} tuned jobs of one arm already done")
            continue
        rc, n = run_plan(sub, out, args, say)
        status, failed = status or rc, failed + n
    return status, failed
