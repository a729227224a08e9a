"""Collect run records (``result.json``) under sweep or run folders into one table.

    python -m analysis.runs multirun/2026-11-23/10-00-00 [more paths] [--csv runs.csv]

prints one row per run (sorted by arm and seed), then one row per arm with the mean of the
final metric over its completed seeds. Records that cannot be read are listed, not dropped.
``tuned_lr`` is the lr a ``schedule=lr_finder`` run trained at (its range test's suggestion;
``lr`` is the configured value, which that schedule ignores).

    python -m analysis.runs multirun/<tune_schedule sweep> --best [--by final|best|auc]

adds the winner of a tuning grid (``experiment=tune_schedule``, ``experiment=tune_lr``): per
data source, task, scale, optimizer, AE and swarm setting, the arm (schedule and lr) with the
best mean of ``--by`` (default ``final``; the metric's own direction) among the arms whose
every run completed (an arm with a diverged or failed seed is not a candidate: a baseline that
diverges on some seeds is not the one to pick), with its runner-up and the number of candidates
(:func:`best_arms`).

This module reads records only (not curves); :mod:`analysis.collect` adds the per-run metrics
from ``curves.csv``. What counts as what:

- a **record** is a ``result.json`` that parses as a JSON object; its row carries the record's
  fields, flattened (:func:`flatten`);
- an **unreadable** file (not JSON, not an object, unreadable bytes) gets one line in the
  problems list and no row;
- a **partial** run is kept as a row with ``status: partial``: either a Hydra job folder
  (``.hydra/config.yaml``) without a ``result.json`` (a job killed or still running; its
  choices are read from ``.hydra/overrides.yaml`` where possible), or a record lacking a
  field the analysis needs, or with a status outside the contract. Each also gets a problem
  line, so the report lists it.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

#: the statuses of the run-record contract (aebench/record.py); anything else is ``partial``
STATUSES = ("completed", "diverged", "failed")
#: the optimizers that set their own step size, for records written before the record carried
#: ``optimizer_traits`` (docs/records.md): only those are told by name, every later one by its
#: ``optimizer_traits.self_tuning`` (:func:`self_tuning`)
LEGACY_SELF_TUNING = ("schedulefree_adamw", "prodigy", "sgd_hd", "adam_hd")
#: fields without which a record cannot be analysed (it is then kept as ``partial``)
REQUIRED = ("status", "task", "seed", "metric")
#: config keys that are not part of an arm (as aebench.record.NOT_IN_ARM; not imported, so
#: that analysis reads records without the core installed)
NOT_IN_ARM = ("seed", "logger", "trainer", "resume")

#: the columns ``python -m analysis.runs`` prints (the table has more, see :func:`flatten`)
COLUMNS = [
    "task",
    "optimizer",
    "lr",
    "schedule",
    "ae",
    "ablation",
    "scale",
    "seed",
    "status",
    "steps",
    "metric",
    "final",
    "best",
    "target_step",
    "auc",
    "wall_s",
    "data_source",
    "arm",
    "path",
]

#: every column :func:`flatten` fills, in order
RECORD_COLUMNS = [
    *COLUMNS[:-2],
    "swarm",
    "mode",
    "target_value",
    "reached",
    "budget",
    "nonfinite",
    "divergence",
    "lr_cliffs",
    "tuned_lr",
    "cost_per_step",
    "guard_mean",
    "budget_mult_mean",
    "error",
    "overrides",
    "experiment",
    "ae_choice",
    "self_tuning",
    "schema",
    "commit",
    "arm",
    "path",
]


@dataclass(frozen=True)
class Problem:
    """One line for the report about a file that could not be used as it stands."""

    path: str
    kind: str  # "unreadable", "partial" or "curves"
    message: str

    def line(self) -> str:
        return f"{self.path}: {self.kind} ({self.message})"


def find_runs(paths: Iterable[str | Path]) -> tuple[list[Path], list[Path]]:
    """``result.json`` files, and Hydra job folders without one, under ``paths``.

    A path may be a sweep folder, a run folder or a ``result.json``; a path that does not exist
    is a FileNotFoundError. Folders are walked once (``os.walk``), in sorted order, without
    descending into ``.hydra``.
    """
    records: list[Path] = []
    partial: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.name == "result.json":
            records.append(p)
            continue
        if not p.is_dir():
            raise FileNotFoundError(f"{p}: no such run or sweep folder")
        for root, dirs, files in os.walk(p):
            dirs[:] = sorted(d for d in dirs if d != ".hydra")
            here = Path(root)
            if "result.json" in files:
                records.append(here / "result.json")
            elif (here / ".hydra" / "config.yaml").is_file():
                partial.append(here)
    return records, partial


def find_records(paths: Iterable[str | Path]) -> list[Path]:
    """The ``result.json`` files under ``paths`` (see :func:`find_runs`)."""
    return find_runs(paths)[0]


def _mapping(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _first_line(text: Any) -> str | None:
    if not text:
        return None
    lines = [s for s in str(text).strip().splitlines() if s.strip()]
    return lines[-1].strip() if lines else None  # a traceback's last line names the error


def flatten(record: dict, path: Path) -> dict:
    """One row of the runs table from one record (missing fields become None)."""
    metric, target = _mapping(record.get("metric")), _mapping(record.get("target"))
    incidents = _mapping(record.get("incidents"))
    config = _mapping(record.get("config"))
    overrides = record.get("overrides")
    return {
        "task": record.get("task"),
        "optimizer": record.get("optimizer"),
        "lr": _mapping(config.get("optimizer")).get("lr"),
        "schedule": record.get("schedule"),
        "ae": record.get("ae"),
        "ablation": record.get("ablation"),
        "scale": record.get("scale"),
        "seed": record.get("seed"),
        "status": record.get("status"),
        "steps": record.get("steps"),
        "metric": metric.get("name"),
        "final": metric.get("final"),
        "best": metric.get("best"),
        "target_step": target.get("step"),
        "auc": record.get("auc"),
        "wall_s": record.get("wall_s"),
        "data_source": record.get("data_source"),
        "swarm": record.get("swarm"),
        "mode": metric.get("mode"),
        "target_value": target.get("value"),
        "reached": target.get("reached"),
        "budget": record.get("budget"),
        "nonfinite": incidents.get("nonfinite"),
        "divergence": incidents.get("divergence"),
        "lr_cliffs": incidents.get("lr_cliffs"),
        "tuned_lr": _mapping(_mapping(record.get("extra")).get("lr_finder")).get("lr"),
        "cost_per_step": cost_per_step(record),
        "guard_mean": _group_mean(_ae_summary(record).get("guard_mean")),
        "budget_mult_mean": _group_mean(_ae_summary(record).get("budget_mult_mean")),
        "error": _first_line(record.get("error")),
        "overrides": " ".join(map(str, overrides)) if isinstance(overrides, list) else None,
        "experiment": experiment_of(overrides),
        "ae_choice": record.get("ae_arm"),
        "self_tuning": self_tuning(record),
        "schema": record.get("schema"),
        "commit": _mapping(record.get("git")).get("commit"),
        "arm": record.get("arm"),
        "path": str(path.parent),
    }


def self_tuning(record: dict) -> bool:
    """Whether the run's optimizer sets its own step size: its record's
    ``optimizer_traits.self_tuning``, or, for a record written before the field existed, whether
    it names one of :data:`LEGACY_SELF_TUNING`."""
    traits = record.get("optimizer_traits")
    if isinstance(traits, dict):
        return bool(traits.get("self_tuning"))
    return record.get("optimizer") in LEGACY_SELF_TUNING


def _ae_summary(record: dict) -> dict:
    """``extra.ae`` of a record (the AE controller's summary; empty without AE)."""
    return _mapping(_mapping(record.get("extra")).get("ae"))


def _group_mean(values: Any) -> float | None:
    """The mean over param groups of a per-group AE summary value (``extra.ae.guard_mean``,
    ``extra.ae.budget_mult_mean``: one entry per group, None for a group never updated);
    None when no group has a number. A bare number is taken as it is."""
    if isinstance(values, int | float) and not isinstance(values, bool):
        return float(values)
    if not isinstance(values, list):
        return None
    nums = [float(v) for v in values if isinstance(v, int | float) and not isinstance(v, bool)]
    return sum(nums) / len(nums) if nums else None


def cost_per_step(record: dict) -> float | None:
    """Forward-equivalents per step (issue 21, docs/es.md): an ES generation costs its fitness
    evaluations (members + centre) per step, a gradient step 3 (forward + backward); None when
    no step was taken. Compare arms on steps only when this agrees."""
    steps = record.get("steps")
    if not isinstance(steps, int | float) or steps <= 0:
        return None
    evals = record.get("fitness_evaluations")
    if isinstance(evals, int | float) and evals > 0:
        return float(evals) / float(steps)
    return 3.0


def read_record(path: Path) -> tuple[dict | None, Problem | None]:
    """The parsed record, or a Problem saying why the file is unreadable. Never raises."""
    try:
        record = json.loads(path.read_bytes())
    except (OSError, ValueError) as err:  # JSONDecodeError and UnicodeDecodeError are both
        return None, Problem(str(path), "unreadable", f"{type(err).__name__}: {err}")
    if not isinstance(record, dict):
        return None, Problem(str(path), "unreadable", "not a JSON object")
    return record, None


def check_record(row: dict) -> str | None:
    """Why a flattened record is partial (missing fields, unknown status), or None."""
    missing = [k for k in REQUIRED if row.get(k) is None]
    if missing:
        return "missing " + ", ".join(missing)
    if row["status"] not in STATUSES:
        return f"status {row['status']!r} is not one of {', '.join(STATUSES)}"
    return None


def experiment_of(overrides: object) -> str | None:
    """The experiment a run was launched with (its ``experiment=<name>`` override), else None.

    Two experiments can run the same configuration with different inputs that its arm id
    tells apart but no prediction field does (e09's and e10's shared set point at batch 256
    and loss scale 1 each read their own reference run): a prediction fed by one experiment
    filters on this column (``runs: {experiment: ...}``)."""
    if not isinstance(overrides, list):
        return None
    for item in map(str, overrides):
        key, _, value = item.partition("=")
        if key.lstrip("+") == "experiment" and value not in ("", "null"):
            return value
    return None


def partial_row(folder: Path) -> dict:
    """A row for a Hydra job folder without a record: choices from ``.hydra/overrides.yaml``."""
    row = dict.fromkeys(RECORD_COLUMNS)
    row.update(status="partial", path=str(folder))
    try:
        import yaml

        overrides = yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text()) or []
    except (OSError, ValueError, ImportError):
        overrides = []
    if isinstance(overrides, list):
        row["overrides"] = " ".join(map(str, overrides))
        row["experiment"] = experiment_of(overrides)
        for item in map(str, overrides):
            key, _, value = item.partition("=")
            if key in ("task", "optimizer", "schedule", "ablation", "scale", "swarm"):
                row[key] = value
            elif key == "ae":
                row["ae"] = value == "on"
            elif key == "seed" and value.isdigit():
                row["seed"] = int(value)
    return row


def iter_runs(
    paths: Iterable[str | Path], problems: list[Problem]
) -> Iterator[tuple[dict, dict | None]]:
    """Each run under ``paths`` as ``(row, record)``: the flattened row (status ``partial``
    where :func:`check_record` objects) and the parsed record (None for a job folder without
    one). Unreadable files yield nothing; they and partial runs are appended to ``problems``."""
    records, partial = find_runs(paths)
    for path in records:
        record, problem = read_record(path)
        if problem is not None:
            problems.append(problem)
            continue
        try:
            row = flatten(record, path)
        except Exception as err:  # noqa: BLE001 - a record of any shape must not stop the run
            problems.append(Problem(str(path), "unreadable", f"{type(err).__name__}: {err}"))
            continue
        why = check_record(row)
        if why is not None:
            row["status"] = "partial"
            problems.append(Problem(str(path), "partial", why))
        yield row, record
    for folder in partial:
        problems.append(Problem(str(folder), "partial", "no result.json"))
        yield partial_row(folder), None


def collect(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, list[str]]:
    """The runs table (records only, no curves) and one line per unreadable or partial run."""
    problems: list[Problem] = []
    rows = [row for row, _ in iter_runs(paths, problems)]
    table = pd.DataFrame(rows, columns=RECORD_COLUMNS)
    if not table.empty:
        table = table.sort_values(["arm", "seed"], kind="stable").reset_index(drop=True)
    return table, [p.line() for p in problems]


def arm_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per arm: runs, completed runs, mean final metric over completed runs, targets reached."""
    done = table[table.status == "completed"]
    keys = ["task", "optimizer", "lr", "schedule", "ae", "ablation", "scale", "metric"]
    summary = table.groupby(keys, dropna=False).agg(runs=("seed", "size"))
    summary["completed"] = done.groupby(keys, dropna=False).size()
    summary["final_mean"] = done.groupby(keys, dropna=False)["final"].mean()
    summary["reached_target"] = table.groupby(keys, dropna=False)["target_step"].count()
    return summary.fillna({"completed": 0}).reset_index()


#: what :func:`best_arms` picks a winner within (the grid's arms vary schedule and lr inside)
BEST_WITHIN = ["data_source", "task", "scale", "optimizer", "ae", "swarm"]


def best_arms(table: pd.DataFrame, by: str = "final") -> pd.DataFrame:
    """The winner of a tuning grid per :data:`BEST_WITHIN` group (module doc): its schedule,
    lr (and ``tuned_lr``), runs, mean of ``by``, the runner-up's and the candidate count."""
    rows = []
    runs = table[table["arm"].notna()]
    for key, group in runs.groupby(BEST_WITHIN, dropna=False, sort=True):
        per_arm = []
        for arm, g in group.groupby("arm", sort=True):
            values = pd.to_numeric(g[by], errors="coerce")
            if not (g["status"] == "completed").all() or values.isna().any():
                continue
            first = g.iloc[0]
            per_arm.append(
                (
                    arm,
                    first["schedule"],
                    first["lr"],
                    g["tuned_lr"].mean() if g["tuned_lr"].notna().any() else None,
                    len(g),
                    values.mean(),
                )
            )
        if not per_arm:
            continue
        # final, best and auc all follow the metric's direction (auc averages the metric)
        higher = bool((group["mode"] == "max").any())
        per_arm.sort(key=lambda r: -r[5] if higher else r[5])
        win = per_arm[0]
        second = per_arm[1] if len(per_arm) > 1 else None
        rows.append(
            {
                **dict(zip(BEST_WITHIN, key, strict=True)),
                "schedule": win[1],
                "lr": win[2],
                "tuned_lr": win[3],
                "runs": win[4],
                f"{by}_mean": win[5],
                "runner_up": f"{second[1]} lr={second[2]:g}" if second else None,
                f"runner_up_{by}": second[5] if second else None,
                "candidates": len(per_arm),
                "arm": win[0],
            }
        )
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.runs", description=__doc__)
    parser.add_argument("paths", nargs="+", help="sweep folders, run folders or result.json files")
    parser.add_argument("--csv", help="also write the runs table to this CSV file")
    parser.add_argument(
        "--best",
        action="store_true",
        help="also print the winner of a tuning grid per task, scale and optimizer (module doc)",
    )
    parser.add_argument(
        "--by", default="final", choices=("final", "best", "auc"), help="what --best ranks by"
    )
    args = parser.parse_args(argv)
    try:
        table, problems = collect(args.paths)
    except FileNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if table.empty:
        print("no readable run records found", file=sys.stderr)
        for line in problems:
            print(line, file=sys.stderr)
        return 1
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(table[COLUMNS[:-2]].to_string(index=False, float_format="%.4g"))
        print()
        print(arm_summary(table).to_string(index=False, float_format="%.4g"))
        if args.best:
            best = best_arms(table, args.by)
            print()
            if best.empty:
                print(f"--best: no arm has all its runs completed with a {args.by} value")
            else:
                print(best.drop(columns=["arm"]).to_string(index=False, float_format="%.4g"))
    for line in problems:
        print(line, file=sys.stderr)
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
