"""Arms: readable labels, field lookup (run columns and ``config.*`` paths), default partners.

An **arm** is the record's ``arm`` id: every choice but the seed. For tables and figures each
arm gets

- ``label``: ``optimizer schedule AE|off [ablation] [swarm=...] [key=value ...]`` (``AE meta``,
  ``AE canonical``: an ``ae`` choice other than ``on``), the extra ``key=value`` being the run's
  command-line overrides that are not group choices, the seed, ``trainer.*``/``logger.*``/
  ``hydra.*`` keys, or ``ae.laws.*`` (which ``ablation`` names);
- ``method``: the label without ``task.*`` overrides (what is compared *across* tasks);
- ``problem``: the task with its ``task.*`` overrides, e.g. ``regression[loss_scale=10]``
  (what performance profiles and the IQM aggregate over).

Two different arms of one task never share a label: a clash gets the arm's config hash
appended. The default comparisons pair arms through two context hashes of the arm's resolved
config: ``ctx_off`` leaves out the whole ``ae`` node (an AE arm and the ``ae=off`` arm of the
same everything else match), ``ctx_laws`` leaves out ``ae.laws`` only (a knock-out and the
``ablation=none`` arm of the same AE settings match). Both include the data source, so real and
synthetic runs are never paired.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pandas as pd

from analysis.collect import RunSet

#: overrides of these keys are group choices, already in the label
GROUPS = ("task", "optimizer", "schedule", "ae", "ablation", "swarm", "scale", "logger")
#: overrides with these prefixes do not change what an arm computes, or are named otherwise
HIDDEN_PREFIXES = ("seed", "trainer.", "logger.", "hydra.", "ae.laws.", "experiment", "resume")
#: run-table columns a filter or stratum may name (besides ``config.<dotted.path>``)
RUN_FIELDS = (
    "task",
    "optimizer",
    "schedule",
    "ae",
    "ablation",
    "swarm",
    "scale",
    "seed",
    "status",
    "data_source",
    "arm",
    "label",
    "method",
    "problem",
    "metric",
    "mode",
    "budget",
    "drifts",
    "lr",
    "ae_arm",
    "ruleset",
    "experiment",  # the run's experiment=<name> override (analysis.runs.experiment_of)
)


#: caption note of every table that compares arms (issue 18): rulesets are never mixed
RULESET_NOTE = (
    "Arms are compared only within one tuning ruleset (self_tuning: documented defaults; "
    "external: best of ruleset.trials trials per problem)."
)


def ruleset_of(config: dict[str, Any] | None) -> str:
    """The ruleset name of an arm's resolved config (self_tuning when it names none)."""
    return str(((config or {}).get("ruleset") or {}).get("name", "self_tuning"))


def ae_arm(overrides: Any, ae: Any, choice: Any = None) -> str | None:
    """The ``ae`` group choice of a run (off, on, canonical, meta, ...): the record's own
    ``ae_arm`` (the choice it composed) where it has one, else the last ``ae=<x>`` of its
    command-line overrides (sweeps name it there), else ``on``/``off`` from its ``ae`` flag."""
    if isinstance(choice, str) and choice:
        return choice
    if isinstance(overrides, str):
        picks = [o[3:] for o in overrides.split() if o.startswith("ae=")]
        if picks:
            return picks[-1].strip("'\"")
    if ae is True or ae is False:
        return "on" if ae else "off"
    return None


def _hash(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:12]


def _override_parts(overrides: list[str]) -> tuple[list[str], list[str]]:
    """``(task overrides, other shown overrides)`` of one arm's command line."""
    task, other = [], []
    for item in overrides:
        key = item.split("=", 1)[0].lstrip("+~")
        if key in GROUPS or key.startswith(HIDDEN_PREFIXES):
            continue
        (task if key.startswith("task.") else other).append(item.lstrip("+~"))
    return sorted(task), sorted(other)


def _value(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _task_keys(runset: RunSet, firsts: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """Per (data source, task): the ``task.*`` keys that tell its arms apart, i.e. those any of
    its arms overrides on the command line or whose resolved values differ between its arms.
    Labels show them from the resolved config, so an arm run with a no-op override (``task.
    loss_scale=1`` in a loss-scale sweep) and the same arm run without it in another
    experiment (one arm id) get the same label and problem."""
    keys: dict[tuple[str, str], list[str]] = {}
    for (ds, task), group in firsts.groupby(["data_source", "task"], dropna=False):
        arms = group["arm"].tolist()
        named = {
            o.split("=", 1)[0]
            for arm in arms
            for o in _override_parts(runset.arm_overrides.get(arm, []))[0]
        }
        flats = [runset.flat_config(arm) for arm in arms]
        varying = {
            k
            for k in set().union(*flats)
            if k.startswith("task.") and len({repr(f.get(k)) for f in flats}) > 1
        }
        keys[(str(ds), str(task))] = sorted(named | varying)
    return keys


def _arm_row(
    arm: str, first: pd.Series, runset: RunSet, task_keys: list[str] | None = None
) -> dict[str, Any]:
    task_over, other = _override_parts(runset.arm_overrides.get(arm, []))
    if task_keys is not None and runset.arm_configs.get(arm) is not None:
        flat = runset.flat_config(arm)
        task_over = [f"{k}={_value(flat[k])}" for k in task_keys if k in flat]
    ae = first["ae"]
    choice = first.get("ae_arm")
    named = f"AE {choice}" if isinstance(choice, str) and choice not in ("on", "off") else "AE"
    parts = [str(first["optimizer"]), str(first["schedule"]), named if ae is True else "off"]
    if first["ablation"] not in (None, "none") and ae is True:
        parts.append(str(first["ablation"]))
    if first["swarm"] not in (None, "off"):
        parts.append(f"swarm={first['swarm']}")
    ruleset = ruleset_of(runset.arm_configs.get(arm))
    if ruleset != "self_tuning":
        parts.append(f"ruleset={ruleset}")
    method = " ".join(parts + other)
    label = " ".join([method, *task_over])
    problem = str(first["task"])
    if task_over:
        problem += "[" + ",".join(o[len("task.") :] for o in task_over) + "]"
    config = runset.arm_configs.get(arm)
    ds = str(first["data_source"])
    if config is not None:
        no_ae = {k: v for k, v in config.items() if k != "ae"}
        # the ruleset pairs by name: tuned arms of one ruleset differ in their chosen trial
        no_ae["ruleset"] = ruleset
        ae_node = dict(config.get("ae") or {})
        ae_node.pop("laws", None)
        ctx_off = ds + ":" + _hash(no_ae)
        ctx_laws = ds + ":" + _hash({**no_ae, "ae": ae_node})
    else:
        ctx_off = ctx_laws = None
    return {
        "arm": arm,
        "label": label,
        "method": method,
        "problem": problem,
        "ctx_off": ctx_off,
        "ctx_laws": ctx_laws,
        "ruleset": ruleset,
    }


def _unique(frame: pd.DataFrame, column: str, within: list[str]) -> None:
    """Append the arm's hash (the end of its id) to ``column`` where two arms share it within
    ``within``; where that still clashes (ids that end alike, e.g. ``...-meta-external`` and
    ``...-external``), the whole id."""
    clash = frame.duplicated([*within, column], keep=False)
    base = frame.loc[clash, column]
    frame.loc[clash, column] = base + " #" + frame.loc[clash, "arm"].str[-8:]
    again = clash & frame.duplicated([*within, column], keep=False)
    frame.loc[again, column] = base[again[clash]] + " #" + frame.loc[again, "arm"]


def annotate(runset: RunSet) -> pd.DataFrame:
    """Add ``label``, ``method``, ``problem``, ``ctx_off`` and ``ctx_laws`` to the runs table
    (in place) and return the arms table: one row per (data source, task, arm)."""
    table = runset.table
    over = table["overrides"] if "overrides" in table.columns else [None] * len(table)
    chosen = table["ae_choice"] if "ae_choice" in table.columns else [None] * len(table)
    table["ae_arm"] = [ae_arm(o, a, c) for o, a, c in zip(over, table["ae"], chosen, strict=True)]
    table["ruleset"] = [
        ruleset_of(runset.arm_configs.get(a)) if isinstance(a, str) else None for a in table["arm"]
    ]
    has_arm = table["arm"].notna()
    if not has_arm.any():
        for col in ("label", "method", "problem", "ctx_off", "ctx_laws"):
            table[col] = None
        return pd.DataFrame(columns=["arm", "label", "method", "problem", "ctx_off", "ctx_laws"])
    firsts = table[has_arm].drop_duplicates("arm")
    task_keys = _task_keys(runset, firsts)
    arms = pd.DataFrame(
        [
            _arm_row(r["arm"], r, runset, task_keys[(str(r["data_source"]), str(r["task"]))])
            for _, r in firsts.iterrows()
        ]
    )
    keep = ["arm", "data_source", "task", "optimizer", "schedule", "ae", "ablation", "scale"]
    arms = firsts[keep].reset_index(drop=True).merge(arms, on="arm")
    _unique(arms, "label", ["data_source", "task"])
    _unique(arms, "method", ["data_source", "problem"])
    for col in ("label", "method", "problem", "ctx_off", "ctx_laws"):
        table[col] = table["arm"].map(arms.set_index("arm")[col])
    runs = table[has_arm].groupby("arm").size()
    arms["runs"] = arms["arm"].map(runs).astype(int)
    return arms


def field_values(runset: RunSet, table: pd.DataFrame, path: str) -> pd.Series:
    """The values of ``path`` for the rows of ``table``: a run column, or ``config.a.b`` read
    from the arm's resolved config (``config.seed`` is the seed column). Absent: NaN."""
    if not path.startswith("config."):
        if path in table.columns:
            return table[path]
        return pd.Series(np.nan, index=table.index, dtype=object)
    key = path[len("config.") :]
    if key == "seed":
        return table["seed"]
    lookup = {
        arm: runset.flat_config(arm).get(key, np.nan) for arm in table["arm"].dropna().unique()
    }
    return table["arm"].map(lookup).astype(object)


def by_preference_off(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of ``ae=off`` arms in the order one of several equivalent ones is chosen: the
    ``ablation=none`` arm first (an ablation does nothing without AE), then by arm id."""
    return frame.assign(_other=frame["ablation"] != "none").sort_values(["_other", "arm"])


def partners(arms: pd.DataFrame) -> pd.DataFrame:
    """The default comparisons: ``(kind, arm_a, arm_b)`` with ``a`` the reference.

    - ``ae_vs_off``: every AE arm (``b``) against the ``ae=off`` arm of the same config but the
      ``ae`` node (``ctx_off``); among several such (e.g. ``ae=off`` runs given an ablation,
      which does nothing without AE), the one with ``ablation=none``, else the first by id;
    - ``knockout_vs_none``: every AE arm with a knock-out against the AE arm with
      ``ablation=none`` and the same config but ``ae.laws`` (``ctx_laws``).

    Arms without a partner are simply not compared (the report lists them).
    """
    rows: list[dict[str, str]] = []
    if arms.empty:
        return pd.DataFrame(columns=["kind", "arm_a", "arm_b"])
    ae_on = arms[arms["ae"].map(lambda v: v is True)]
    ae_off = arms[arms["ae"].map(lambda v: v is False)]
    off_by_ctx: dict[str, str] = {}
    for _, r in by_preference_off(ae_off).iterrows():
        if r["ctx_off"] is not None:
            off_by_ctx.setdefault(r["ctx_off"], r["arm"])
    none_by_ctx = {
        r["ctx_laws"]: r["arm"]
        for _, r in ae_on[ae_on["ablation"] == "none"].sort_values("arm").iterrows()
        if r["ctx_laws"] is not None
    }
    for _, r in ae_on.sort_values("arm").iterrows():
        off = off_by_ctx.get(r["ctx_off"])
        if off is not None:
            rows.append({"kind": "ae_vs_off", "arm_a": off, "arm_b": r["arm"]})
        if r["ablation"] not in (None, "none"):
            ref = none_by_ctx.get(r["ctx_laws"])
            if ref is not None:
                rows.append({"kind": "knockout_vs_none", "arm_a": ref, "arm_b": r["arm"]})
    return pd.DataFrame(rows, columns=["kind", "arm_a", "arm_b"])
