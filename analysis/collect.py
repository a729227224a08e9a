"""Build the runs table of ``aebench-analyze``: every record under the given paths, one row per
run, with the per-run metrics of :mod:`analysis.metrics` computed from its ``curves.csv``.

Memory stays bounded for large sweeps: a record's full config is kept once per arm (runs of one
arm share it but for the seed, the logger and the trainer keys, which the arm id leaves out), and
each run keeps only down-sampled traces for the figures.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from analysis.curves import read_many
from analysis.metrics import Traces, curve_metrics, record_metrics
from analysis.runs import NOT_IN_ARM, RECORD_COLUMNS, Problem, iter_runs


@dataclass
class RunSet:
    """What the analysis reads: the runs table, the problems met, configs per arm, traces.

    ``table`` has one row per run (partial runs included, ``status == "partial"``), the record
    columns of :data:`analysis.runs.RECORD_COLUMNS`, the metrics of :mod:`analysis.metrics`, and
    ``run`` (an integer id, the key of ``traces``). ``arm_configs`` maps an arm id to its
    resolved config without the keys the arm id leaves out; ``arm_overrides`` to the command-line
    overrides of its first run (for readable labels).
    """

    table: pd.DataFrame
    problems: list[Problem] = field(default_factory=list)
    arm_configs: dict[str, dict] = field(default_factory=dict)
    arm_overrides: dict[str, list[str]] = field(default_factory=dict)
    traces: dict[int, Traces] = field(default_factory=dict)
    _flat: dict[str, dict[str, Any]] = field(default_factory=dict, repr=False)

    def flat_config(self, arm: str) -> dict[str, Any]:
        """The arm's config as ``{"a.b.c": value}`` (cached; empty for an unknown arm)."""
        if arm not in self._flat:
            self._flat[arm] = flatten_config(self.arm_configs.get(arm, {}))
        return self._flat[arm]

    def usable(self) -> pd.DataFrame:
        """The rows with a record (partial runs left out)."""
        return self.table[self.table.status != "partial"]


def flatten_config(config: Any, prefix: str = "") -> dict[str, Any]:
    """Leaves of a nested config as ``{"a.b.c": value}``; lists become JSON text."""
    out: dict[str, Any] = {}
    if isinstance(config, dict):
        for key, value in config.items():
            out.update(flatten_config(value, f"{prefix}{key}."))
    elif isinstance(config, list):
        out[prefix[:-1]] = json.dumps(config)
    else:
        out[prefix[:-1]] = config
    return out


def _config_hash(config: dict) -> str:
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def _split_arms_by_source(
    table: pd.DataFrame, configs: dict[str, dict], overrides: dict[str, list[str]]
) -> None:
    """Make an arm id that occurs with several data sources unique per source (``<id>@<source>``):
    the same config run on real and on synthetic data is two arms, never pooled."""
    if table.empty or "arm" not in table.columns:
        return
    sources = table.dropna(subset=["arm"]).groupby("arm")["data_source"].nunique()
    for arm in sources[sources > 1].index:
        rows = table["arm"] == arm
        table.loc[rows, "arm"] = arm + "@" + table.loc[rows, "data_source"].astype(str)
        for new in table.loc[rows, "arm"].unique():
            if arm in configs:
                configs[new] = configs[arm]
            if arm in overrides:
                overrides[new] = overrides[arm]


def _add_curve_metrics(
    rows: list[dict], traces: dict[int, Traces], problems: list[Problem]
) -> None:
    """Read the ``curves.csv`` of every run with a record (batched, see
    :func:`analysis.curves.read_many`) and add its metrics to its row."""
    present: list[tuple[dict, Path]] = []
    for row in rows:
        if row["status"] == "partial" or not row.get("path"):
            continue
        path = Path(row["path"]) / "curves.csv"
        if path.is_file():
            present.append((row, path))
        else:
            problems.append(Problem(str(path.parent), "curves", "no curves.csv"))
    for i, result in read_many([p for _, p in present]):
        row, path = present[i]
        if isinstance(result, Exception):
            problems.append(Problem(str(path), "curves", f"unreadable: {result}"))
            continue
        budget = row.get("budget")
        budget = float(budget) if isinstance(budget, int | float) else float("nan")
        metrics, trace = curve_metrics(result, row.get("metric"), budget)
        row.update(metrics)
        traces[row["run"]] = trace


def _censor_plateau_exits(table: pd.DataFrame) -> None:
    """A finished run of a task that reports plateau exits (some of its runs log
    ``plateau_exit_step``) but whose curves never logged one did not exit: its restricted exit
    step is its budget, not missing (records written before the column was logged from the
    first step leave it out until the exit)."""
    if "plateau_exit" not in table.columns or not table["plateau_exit"].notna().any():
        return
    reports = table.groupby(["task", "data_source"], dropna=False)["plateau_exit"].transform(
        lambda s: s.notna().any()
    )
    fill = reports & table["plateau_exit"].isna() & table["status"].isin(["completed", "diverged"])
    table.loc[fill, "plateau_exit"] = pd.to_numeric(table.loc[fill, "budget"], errors="coerce")
    table.loc[fill, "plateau_exited"] = False


def load_runs(paths: Iterable[str | Path], curves: bool = True) -> RunSet:
    """Read every run under ``paths`` (see :func:`analysis.runs.find_runs`); with ``curves``,
    also each ``curves.csv`` (a missing or unreadable one is a problem line, not an error)."""
    problems: list[Problem] = []
    rows: list[dict] = []
    arm_configs: dict[str, dict] = {}
    arm_overrides: dict[str, list[str]] = {}
    traces: dict[int, Traces] = {}
    for row, record in iter_runs(paths, problems):
        run_id = len(rows)
        row["run"] = run_id
        rows.append(row)
        if record is None:
            continue
        config = record.get("config")
        if isinstance(config, dict):
            arm_config = {k: v for k, v in config.items() if k not in NOT_IN_ARM}
            if not row.get("arm"):
                row["arm"] = f"{row.get('task')}-unnamed-{_config_hash(arm_config)}"
            arm_configs.setdefault(row["arm"], arm_config)
        overrides = record.get("overrides")
        if row.get("arm") and isinstance(overrides, list):
            arm_overrides.setdefault(row["arm"], [str(o) for o in overrides])
        row["data_source"] = row.get("data_source") or "unknown"
        row.update(record_metrics(row))
    if curves:
        _add_curve_metrics(rows, traces, problems)
    table = pd.DataFrame(rows)
    for col in [*RECORD_COLUMNS, "run"]:
        if col not in table.columns:
            table[col] = pd.Series(dtype=object)
    for flag in ("drifts", "plateau_exited"):
        if flag in table.columns:
            table[flag] = table[flag].map(lambda v: bool(v) if v == v else False)
        elif flag == "drifts":
            table[flag] = False
    for col in ("final", "best", "auc", "wall_s", "budget", "steps", "target_step", "lr"):
        table[col] = pd.to_numeric(table[col], errors="coerce")
    _censor_plateau_exits(table)
    _split_arms_by_source(table, arm_configs, arm_overrides)
    table = table.sort_values(["data_source", "task", "arm", "seed"], kind="stable")
    return RunSet(table.reset_index(drop=True), problems, arm_configs, arm_overrides, traces)
