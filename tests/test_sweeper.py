"""``hydra/sweeper=aebench``: each group combination and each value composed once before launch,
a value that cannot compose still stops the sweep before any job starts, and the joblib
launcher's workers start (and import torch) while the rest of the check runs."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
from pathlib import Path

from hydra_plugins.aebench_sweeper.aebench_sweeper import Warmup, jobs_to_compose
from tests.helpers import ROOT, compose_config

GROUPS = {"ae", "optimizer", "experiment", "hydra/launcher"}


def _is_group(key: str) -> bool:
    return key in GROUPS


def _product(**sweeps: list[str]) -> list[list[str]]:
    keys = list(sweeps)
    return [
        [f"{k}={v}" for k, v in zip(keys, values, strict=True)]
        for values in itertools.product(*sweeps.values())
    ]


def test_the_demo_composes_each_group_choice_and_each_seed_once() -> None:
    batch = _product(ae=["off", "on"], seed=[str(s) for s in range(10)], steps=["1200"])
    chosen = jobs_to_compose(batch, _is_group)
    assert chosen == list(range(11))  # ae=off with seeds 0-9, then ae=on once
    composed = [batch[i] for i in chosen]
    assert {o for job in composed for o in job} == {o for job in batch for o in job}


def test_every_combination_of_group_choices_is_composed() -> None:
    batch = _product(
        optimizer=["sgdm", "adamw"], ae=["off", "on"], lr=["0.1", "0.01"], seed=["0", "1", "2"]
    )
    chosen = jobs_to_compose(batch, _is_group)
    combos = {tuple(o for o in batch[i] if o.split("=")[0] in GROUPS) for i in chosen}
    assert len(combos) == 4  # every optimizer x ae pair
    assert {o for i in chosen for o in batch[i]} == {o for job in batch for o in job}
    assert len(chosen) < len(batch) / 3  # 24 jobs, 6 compositions
    assert jobs_to_compose([], _is_group) == []


def test_group_overrides_with_prefixes_and_nested_groups_count_as_choices() -> None:
    batch = [["+experiment=demo", "hydra/launcher=basic", "seed=0"]] * 3 + [
        ["+experiment=demo", "hydra/launcher=aebench_joblib", "seed=0"]
    ]
    assert jobs_to_compose(batch, _is_group) == [0, 3]


def test_aebench_sweeper_is_the_default() -> None:
    cfg, choices = compose_config([])
    assert choices["hydra/sweeper"] == "aebench"


def test_a_value_that_cannot_compose_stops_the_sweep_before_any_job(tmp_path: Path) -> None:
    # the Hydra app directly, without the aebench console script's preflight: the sweeper's
    # own check must catch the second value of optimizer.lr
    out = tmp_path / "sweep"
    code = "import sys; from aebench.app import hydra_entry; sys.argv[0] = 'aebench'; hydra_entry()"
    args = ["-m", "scale=smoke", "steps=2", "seed=0,1", "optimizer.lr=0.1,abc"]
    env = {**os.environ, "WANDB_MODE": "offline", "HYDRA_FULL_ERROR": "0"}
    proc = subprocess.run(
        [sys.executable, "-c", code, *args, f"hydra.sweep.dir={out}"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode != 0
    assert "abc" in proc.stderr
    assert not list(out.rglob("result.json"))  # no job ran


def test_the_launch_reuses_the_workers_the_warmup_started() -> None:
    from joblib import Parallel, delayed
    from joblib.externals.loky import reusable_executor

    kwargs = {"n_jobs": 2, "backend": "loky", "batch_size": 1}  # as the launch passes them
    warmup = Warmup(dict(kwargs), tasks=2)
    warmup.start()
    warmup.join(timeout=300)
    assert warmup.pids and os.getpid() not in warmup.pids
    executor = reusable_executor._executor
    imported = Parallel(**kwargs)(
        delayed(eval)("'aebench.runner' in __import__('sys').modules") for _ in range(4)
    )
    assert reusable_executor._executor is executor  # same worker processes, not new ones
    assert all(imported)


def test_no_warmup_without_worker_processes() -> None:
    from hydra._internal.core_plugins.basic_launcher import BasicLauncher
    from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher

    assert Warmup.of(BasicLauncher(), jobs=4) is None
    # n_jobs=1: joblib runs the jobs in the sweep's own process (a warm-up there would only
    # contend with the check for the interpreter)
    assert Warmup.of(JoblibLauncher(n_jobs=1, batch_size=1), jobs=4) is None
