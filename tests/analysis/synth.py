"""Synthetic run records for the analysis tests: written in the real schema (through the
writer's own ``RunRecord`` and ``CurveBuffer``), or built in memory as a runs table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aebench.curves import CurveBuffer
from aebench.record import Incidents, Metric, RunRecord, Target, arm_id
from analysis.collect import RunSet

LAWS = ("noise", "resonance", "budget", "gauge", "coupling")


def make_config(
    task: str, optimizer: str, schedule: str, ae: bool, ablation: str, seed: int, **task_extra: Any
) -> dict:
    """A resolved config with the shape of the suite's (the keys analysis reads)."""
    off = ablation[3:] if ablation.startswith("no_") else None
    return {
        "task": {"name": task, "batch_size": 256, "loss_scale": 1.0, **task_extra},
        "optimizer": {"_target_": f"torch.optim.{optimizer}", "lr": 0.001, "betas": [0.9, 0.999]},
        "schedule": {"_target_": f"baselines.schedules.{schedule}"},
        "scale": {"name": "smoke", "evals": 10, "log_every": 1},
        "logger": {"kind": "csv"},
        "ae": {"enabled": ae, "laws": {law: law != off for law in LAWS}, "eta_a": 0.01},
        "swarm": {"enabled": False},
        "seed": seed,
        "steps": None,
        "trainer": {"threads": 1},
    }


def default_curves(
    budget: int, final: float, seed: int, ae: bool, drift_every: int | None = None
) -> dict[str, list[float]]:
    """A decaying loss from 1 to ``final`` with small noise, coefficients, AE signals."""
    rng = np.random.default_rng(seed)
    steps = np.arange(budget + 1)
    loss = np.exp(np.log(final) * steps / budget) * np.exp(0.02 * rng.standard_normal(steps.size))
    out: dict[str, list[float]] = {
        "step": steps.tolist(),
        "train_loss": [math.nan, *loss[1:].tolist()],
        "lr": (0.001 * (1 + 0.2 * ae * steps / budget)).tolist(),
        "beta1": (0.9 - 0.05 * ae * steps / budget).tolist(),
    }
    if ae:
        out["gamma"] = (0.1 * np.exp(0.1 * rng.standard_normal(steps.size))).tolist()
        out["sigma"] = [1e-6] * steps.size
    if drift_every:
        out["drift_phase"] = (steps // drift_every).astype(float).tolist()
    return out


def write_run(
    root: Path,
    *,
    task: str = "regression",
    optimizer: str = "adamw",
    schedule: str = "constant",
    ae: bool = False,
    ablation: str = "none",
    seed: int = 0,
    data_source: str = "synthetic",
    status: str = "completed",
    final: float = 0.1,
    auc: float | None = None,
    target: float = 0.05,
    target_step: int | None = None,
    budget: int = 50,
    mode: str = "min",
    metric: str = "mse",
    incidents: tuple[int, int, int] = (0, 0, 0),
    curves: dict[str, list[float]] | None = None,
    task_extra: dict | None = None,
    name: str | None = None,
    task_extra_on_command_line: bool = True,
    extra: dict | None = None,
) -> Path:
    """One run folder (``result.json`` + ``curves.csv``) under ``root``; returns the folder."""
    config = make_config(task, optimizer, schedule, ae, ablation, seed, **(task_extra or {}))
    choices = {
        "task": task,
        "optimizer": optimizer,
        "schedule": schedule,
        "ablation": ablation,
        "swarm": "off",
        "scale": "smoke",
    }
    overrides = [
        f"task={task}",
        f"optimizer={optimizer}",
        f"ae={'on' if ae else 'off'}",
        f"ablation={ablation}",
        f"seed={seed}",
    ]
    if task_extra_on_command_line:
        overrides += [f"task.{k}={v}" for k, v in (task_extra or {}).items()]
    folder = root / (name or f"{task}-{optimizer}-{schedule}-{ae}-{ablation}-{data_source}-{seed}")
    folder.mkdir(parents=True)
    reached = target_step is not None
    record = RunRecord(
        status=status,
        task=task,
        optimizer=optimizer,
        schedule=schedule,
        ae=ae,
        ablation=ablation,
        swarm="off",
        scale="smoke",
        seed=seed,
        arm=arm_id(choices, config, ae),
        overrides=overrides,
        config=config,
        data_source=data_source,
        metric=Metric(
            name=metric, mode=mode, final=final if status == "completed" else None, best=final
        ),
        target=Target(value=target, reached=reached, step=target_step),
        budget=budget,
        steps=budget,
        wall_s=1.0,
        auc=auc if auc is not None else (2 * final if status == "completed" else None),
        incidents=Incidents(*incidents),
        versions={},
        git={"commit": "0" * 40, "dirty": False},
        extra=dict(extra or {}),
    )
    record.write(folder)
    buf = CurveBuffer()
    cols = curves or default_curves(budget, final, seed, ae)
    for i, step in enumerate(cols["step"]):
        buf.log(int(step), **{k: v[i] for k, v in cols.items() if k != "step"})
    for s in range(0, budget + 1, max(1, budget // 10)):
        buf.log(s, **{f"val_{metric}": final * (1 + (budget - s) / budget)})
    buf.write(str(folder / "curves.csv"))
    return folder


def table_runset(rows: list[dict], configs: dict[str, dict] | None = None) -> RunSet:
    """A RunSet built in memory from rows (the columns verdicts read get defaults)."""
    defaults = {
        "status": "completed",
        "data_source": "synthetic",
        "task": "t",
        "scale": "smoke",
        "optimizer": "adamw",
        "schedule": "constant",
        "mode": "min",
        "budget": 100.0,
        "ttt": 50.0,
        "ablation": "none",
    }
    full = []
    for r in rows:
        row = {**defaults, **r}
        row.setdefault("arm", f"{row['task']}-{row['optimizer']}-{row['ae']}-{row['ablation']}")
        row.setdefault("label", row["arm"])
        full.append(row)
    table = pd.DataFrame(full)
    table["run"] = range(len(table))
    return RunSet(table=table, arm_configs=configs or {})
