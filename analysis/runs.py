"""Collect run records (``result.json``) under sweep or run folders into one table.

    python -m analysis.runs multirun/2026-11-23/10-00-00 [more paths] [--csv runs.csv]

prints one row per run (sorted by arm and seed), then one row per arm with the mean of the
final metric over its completed seeds. Records that cannot be read are listed, not dropped.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

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


def find_records(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_file() and p.name == "result.json":
            found.append(p)
        elif p.is_dir():
            found.extend(sorted(p.rglob("result.json")))
        else:
            raise FileNotFoundError(f"{p}: no such run or sweep folder")
    return found


def flatten(record: dict, path: Path) -> dict:
    metric, target = record.get("metric") or {}, record.get("target") or {}
    return {
        "task": record.get("task"),
        "optimizer": record.get("optimizer"),
        "lr": ((record.get("config") or {}).get("optimizer") or {}).get("lr"),
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
        "arm": record.get("arm"),
        "path": str(path.parent),
    }


def collect(paths: Iterable[str | Path]) -> tuple[pd.DataFrame, list[str]]:
    """The runs table and one line per unreadable record."""
    rows, problems = [], []
    for path in find_records(paths):
        try:
            rows.append(flatten(json.loads(path.read_text()), path))
        except (OSError, ValueError, AttributeError) as err:
            problems.append(f"{path}: unreadable ({type(err).__name__}: {err})")
    table = pd.DataFrame(rows, columns=COLUMNS)
    if not table.empty:
        table = table.sort_values(["arm", "seed"], kind="stable").reset_index(drop=True)
    return table, problems


def arm_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per arm: runs, completed runs, mean final metric over completed runs, targets reached."""
    done = table[table.status == "completed"]
    keys = ["task", "optimizer", "lr", "schedule", "ae", "ablation", "scale", "metric"]
    summary = table.groupby(keys, dropna=False).agg(runs=("seed", "size"))
    summary["completed"] = done.groupby(keys, dropna=False).size()
    summary["final_mean"] = done.groupby(keys, dropna=False)["final"].mean()
    summary["reached_target"] = table.groupby(keys, dropna=False)["target_step"].count()
    return summary.fillna({"completed": 0}).reset_index()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.runs", description=__doc__)
    parser.add_argument("paths", nargs="+", help="sweep folders, run folders or result.json files")
    parser.add_argument("--csv", help="also write the runs table to this CSV file")
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
        print(table.drop(columns=["arm", "path"]).to_string(index=False, float_format="%.4g"))
        print()
        print(arm_summary(table).to_string(index=False, float_format="%.4g"))
    for line in problems:
        print(line, file=sys.stderr)
    if args.csv:
        table.to_csv(args.csv, index=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
