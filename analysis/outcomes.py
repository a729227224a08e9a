"""One outcome policy for runs that did not complete, applied before any statistic.

A record's ``status`` is ``completed``, ``diverged`` (the loss or parameters went non-finite or
blew up: the optimizer failed on this run), ``failed`` (an exception: a bug in the suite or the
task, not a property of the optimizer) or ``partial`` (no record yet). The policy (the table in
``docs/analysis.md``):

- **diverged is a failure of the arm.** The run is never dropped and never credited with the
  last finite value it logged. Value metrics (:data:`WORST_VALUE`) take the **worst rank**:
  ``+inf`` where lower is better, ``-inf`` where higher is better, so every rank-based test, the
  medians and the IQM place it below every finished run, and two diverged runs of a pair tie.
  Time-based metrics treat it as **never reaching** the event within the budget: ``ttt`` is
  censored and the restricted ``time_to_target`` is the budget (the worst restricted time);
  ``plateau_exit`` keeps an exit logged before the divergence (the event happened) and is the
  budget otherwise; ``recovery`` is ``+inf`` and ``recovery_level`` ``-inf`` (a phase the run
  did not survive is not a short settling time). ERT charges the steps the run used (COCO).
  Counts that *record* the failure (``incidents``, ``divergence``, ``nonfinite``,
  ``lr_cliffs``) and ``wall_s`` are kept as recorded.
- **failed is a bug**: excluded from every statistic, and listed at the top of the report
  (:func:`failed_runs`).
- **partial** runs have no record and are left out (listed as problems by the reader).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

#: value metrics a diverged run gets the worst rank on, with their better side ("mode": the
#: task's ``metric.mode``)
WORST_VALUE: dict[str, str] = {
    "final": "mode",
    "best": "mode",
    "auc": "mode",
    "oscillation": "lower",
    "gamma_logvar": "lower",
    "selection_errors": "lower",
    "recovery": "lower",
    "recovery_level": "higher",
}
EXCLUDED = ("failed", "partial")


def failed_runs(table: pd.DataFrame) -> pd.DataFrame:
    """The runs that raised (``status == "failed"``): excluded from the statistics."""
    if "status" not in table.columns:
        return table.iloc[:0]
    return table[table["status"] == "failed"]


def apply_policy(table: pd.DataFrame) -> pd.DataFrame:
    """The rows the statistics use (completed and diverged runs with an arm), with the
    diverged runs' values set by the policy (module doc). Returns a new frame; ``table`` is
    not modified."""
    keep = ~table["status"].isin(EXCLUDED)
    if "arm" in table.columns:
        keep &= table["arm"].notna()
    out = table[keep]
    div = (out["status"] == "diverged").to_numpy()
    if not div.any():
        return out
    out = out.copy()
    if "mode" in out.columns:
        maximise = (out["mode"].astype(str) == "max").to_numpy()
    else:
        maximise = np.zeros(len(out), bool)
    for col, better in WORST_VALUE.items():
        if col not in out.columns:
            continue
        if better == "mode":
            worst = np.where(maximise, -np.inf, np.inf)
        else:
            worst = np.full(len(out), np.inf if better == "lower" else -np.inf)
        values = pd.to_numeric(out[col], errors="coerce").to_numpy(float).copy()
        measured = div.copy()
        if better != "mode":  # an arm that never measures the column keeps NaN
            measured &= ~(np.isnan(values) & _never_measured(out, col))
        values[measured] = worst[measured]
        out[col] = values
    if "ttt" in out.columns:
        out.loc[div, "ttt"] = np.nan
    if "time_to_target" in out.columns and "budget" in out.columns:
        out.loc[div, "time_to_target"] = pd.to_numeric(out.loc[div, "budget"], errors="coerce")
    return out


def _never_measured(frame: pd.DataFrame, col: str) -> np.ndarray:
    """Rows whose arm never measures ``col`` (no run of the arm has a value: ``gamma`` of a
    vanilla arm, ``recovery`` without drift): a diverged run there stays NaN, not worst."""
    if "arm" not in frame.columns:
        return np.zeros(len(frame), bool)
    has = pd.to_numeric(frame[col], errors="coerce").notna()
    if col in ("recovery", "recovery_level") and "drifts" in frame.columns:
        has = has | frame["drifts"].astype(bool)
    measured_arm = has.groupby(frame["arm"]).transform("any")
    return ~measured_arm.to_numpy(bool)
