"""Per-run metrics from a run's record (a runs-table row) and its ``curves.csv``.

Every metric the analysis compares is registered in :data:`METRICS` with the direction that is
better, so predictions and comparisons orient differences the same way. Definitions (the
choices where the theory or the protocol leaves room):

``final``, ``best``, ``auc``
    As recorded (``metric.final``, ``metric.best``, ``auc``): the task's evaluation metric at
    the budget, its best value, and the trapezoidal area under the evaluation curve over the
    budget divided by the budget. What a diverged or failed run counts as is not decided here
    but by the one outcome policy every statistic applies (:mod:`analysis.outcomes`: diverged
    at the worst rank, never its last finite value; failed excluded).

``ttt`` and ``time_to_target``
    ``ttt`` is the first evaluated step at which the target was reached, for a **completed** run
    that reached it; NaN otherwise, i.e. censored: a miss, and also a diverged or failed run even
    if it touched the target before breaking (the issue's rule: diverging means infinite time).
    :func:`analysis.stats.as_censored` turns the NaN into ``inf`` for fraction reached and ERT.
    ``time_to_target`` is the *restricted* time ``min(ttt, budget)`` with censored runs at their
    budget: the restricted-mean-survival-time reading of time-to-target, finite for every run
    and unbiased under censoring at a common budget (the only censoring here), so a paired test
    can use it. When every compared run is censored it carries no information
    (:attr:`MetricSpec.censored`).

``incidents``
    ``nonfinite + divergence + lr_cliffs`` from the record (docs/records.md).

``oscillation``
    The amplitude of the training loss around its trend: with ``x`` the logged training loss
    (its natural log when every value is positive, so the amplitude is relative and a loss
    scaled by ``c`` oscillates the same; the raw loss otherwise), the trend is a centred moving
    average over ``2h+1`` logged rows, ``h = max(2, n // 20)`` (a window of ~10% of the run,
    long against a stale-gradient or step-size oscillation, short against the learning curve's
    bend), and the oscillation is the RMS of ``x - trend`` over the rows where the window fits.
    In log units, 0.1 means the loss swings by about 10% around its trend. It depends on the
    logging cadence, which is the same for every arm of a scale. NaN with fewer than
    ``2h + 3`` finite rows.

``recovery`` (where the curves have a ``drift_phase`` column that changes)
    For each switch (the first logged row of a new phase), the settling time of the series
    (:data:`RECOVERY_SERIES`: for RL tasks the unscaled return, else the training loss) onto the
    new phase's *own* asymptote, the median of its last 20% of rows: the first step from which
    its 1%-of-the-phase running median stays within a band of 10% of the disturbance (at least
    3 of its own noise std) for 5% of the phase; a phase still moving in that tail, or cut
    short (a run that stopped: censored at the step it stopped), is censored at its length
    (definition and reasons: :mod:`analysis.recovery`). The reference belongs to the phase, so
    the reading does not depend on the phase order. ``recovery`` is the mean over switches of
    these restricted times (as for ``time_to_target``), ``recovery_censored`` the number of
    switches never settled, ``switches`` the number of switches, ``recovery_level`` where the
    phases settled, higher = better: the mean of ``log A`` over the asymptotes of a return,
    ``-log A`` of a loss (a collapse settles fast but low: guard ``recovery`` with it).

``plateau_exit`` (tasks that log ``plateau_exit_step``, e.g. ``plateau``)
    The step at which the run left the plateau as the task defines it (first logged value),
    restricted like ``time_to_target``: a run that never left counts at its budget, and
    ``plateau_exited`` is False.

``selection_errors`` (tasks that log ``selection_errors``, e.g. ``basis_equation``)
    The last finite logged value: the size of the symmetric difference between the bases the
    fit selected at the end of the run and the true ones (0 = exactly the right expression).

``gamma_logvar``, ``gamma_median`` (AE runs: the controller logs ``gamma``)
    The variance (ddof 1) of ``log gamma`` over the logged steps after step 0, and the median of
    gamma. The log makes "smoother gamma" a relative statement, unchanged when the gradient
    scale (and so gamma) is multiplied by a constant, as in the gauge experiments. Vanilla runs
    do not log gamma: NaN.

Coefficient trajectories, for every ``lr``, ``momentum``, ``beta1``, ``beta2``, ``eps``,
``weight_decay`` and ``sigma`` column (``/pgN`` suffixes included): ``<col>:start``, ``:end``,
``:min``, ``:max`` over the finite logged values; ``<col>:logmean`` the mean of the natural log
over the positive values (the AE chart of a scale coefficient; NaN if none); and for momentum
and the betas ``<col>:horizon``, the mean of ``log 1/(1-beta)`` (their AE chart; the coupling
prediction's axis) over the values below 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd

from analysis.curves import Curves
from analysis.recovery import Recovery, median
from analysis.recovery import recovery as _recovery

#: coefficient columns summarised (a ``/pgN`` or ``/trajN`` suffix is allowed); ``gate_mean``,
#: ``dropout`` and ``l1`` are the model coefficients of the gated_depth and basis_equation tasks;
#: ``lr_eff`` the step size the LR-free and hypergradient optimizers applied
COEFFICIENTS = (
    "lr",
    "momentum",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "sigma",
    "gate_mean",
    "dropout",
    "l1",
    "lr_eff",
)
#: coefficients whose AE chart is ``log 1/(1-beta)``
BETA_LIKE = ("momentum", "beta1", "beta2")
COEF_STATS = ("start", "end", "min", "max", "logmean", "horizon")
#: at most this many rows of each curve are kept for the figures
MAX_TRACE_POINTS = 100
#: the curve column recovery is measured on, first present wins, with "higher is better":
#: the unscaled episodic return of RL tasks (their loss is a policy-gradient surrogate), else
#: the training loss
RECOVERY_SERIES = (("return_unscaled", True), ("train_loss", False))


@dataclass(frozen=True)
class MetricSpec:
    """A per-run metric: its column in the runs table and which direction is better.

    ``better`` is ``"lower"``, ``"higher"`` or ``"mode"`` (the task's ``metric.mode``: ``min``
    means lower is better). ``censored`` marks a restricted time (misses at their horizon): when
    every compared run is censored, a comparison says nothing.
    """

    name: str
    better: Literal["lower", "higher", "mode"]
    censored: bool
    description: str

    def higher_is_better(self, mode: str | None) -> bool | None:
        """True/False, or None when it depends on an unknown task mode."""
        if self.better == "mode":
            return {"max": True, "min": False}.get(str(mode))
        return self.better == "higher"


METRICS: dict[str, MetricSpec] = {
    m.name: m
    for m in (
        MetricSpec("final", "mode", False, "evaluation metric at the budget"),
        MetricSpec("best", "mode", False, "best evaluation metric"),
        MetricSpec("auc", "mode", False, "area under the evaluation curve / budget"),
        MetricSpec(
            "time_to_target", "lower", True, "steps to target, misses at the budget (restricted)"
        ),
        MetricSpec("incidents", "lower", False, "nonfinite + divergence + lr_cliffs"),
        MetricSpec("nonfinite", "lower", False, "steps with a non-finite training loss"),
        MetricSpec("divergence", "lower", False, "1 if the run diverged"),
        MetricSpec("lr_cliffs", "lower", False, "one-step lr changes by more than 2x"),
        MetricSpec("oscillation", "lower", False, "RMS of log loss around its moving average"),
        MetricSpec("recovery", "lower", True, "mean steps to recover after a drift switch"),
        MetricSpec("recovery_level", "higher", False, "settled level after switches (log)"),
        MetricSpec("plateau_exit", "lower", True, "step leaving the plateau (restricted)"),
        MetricSpec("gamma_logvar", "lower", False, "variance of log gamma (AE runs)"),
        MetricSpec(
            "selection_errors", "lower", False, "wrong or missing bases at the end (basis tasks)"
        ),
        MetricSpec("wall_s", "lower", False, "wall seconds"),
    )
}


def metric_spec(name: str) -> MetricSpec | None:
    """The spec of a registered metric, or of a coefficient summary ``<coef>:<stat>`` (no better
    direction: ``better="higher"`` by convention, used only as a correlation axis)."""
    if name in METRICS:
        return METRICS[name]
    base, _, stat = name.partition(":")
    if stat in COEF_STATS and base.split("/")[0] in COEFFICIENTS:
        return MetricSpec(name, "higher", False, f"{stat} of the {base} trajectory")
    return None


# --------------------------------------------------------------------------- record metrics


def _num(value: object) -> float:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return math.nan
    return out


def record_metrics(row: dict) -> dict[str, float]:
    """``ttt``, ``time_to_target`` and ``incidents`` from a runs-table row (see module doc)."""
    budget = _num(row.get("budget"))
    step = _num(row.get("target_step"))
    hit = row.get("status") == "completed" and bool(row.get("reached")) and math.isfinite(step)
    ttt = step if hit else math.nan
    restricted = min(ttt, budget) if hit and math.isfinite(budget) else budget
    counts = [_num(row.get(k)) for k in ("nonfinite", "divergence", "lr_cliffs")]
    known = [c for c in counts if math.isfinite(c)]
    return {
        "ttt": ttt,
        "time_to_target": restricted,
        "incidents": float(sum(known)) if known else math.nan,
    }


# --------------------------------------------------------------------------- curve metrics


def moving_average(x: np.ndarray, h: int) -> np.ndarray:
    """Centred moving average over ``[i-h, i+h]`` clipped to the array (shorter at the ends)."""
    n = x.size
    if n == 0:
        return x.astype(float)
    c = np.concatenate([[0.0], np.cumsum(x, dtype=float)])
    idx = np.arange(n)
    lo = np.maximum(idx - h, 0)
    hi = np.minimum(idx + h + 1, n)
    return (c[hi] - c[lo]) / (hi - lo)


def running_median(x: np.ndarray, h: int) -> np.ndarray:
    """Centred running median over ``[i-h, i+h]`` clipped to the array."""
    return pd.Series(x).rolling(2 * h + 1, center=True, min_periods=1).median().to_numpy()


def _loss_scale(loss: np.ndarray) -> tuple[np.ndarray, bool]:
    """The loss in the units metrics use: its log when all positive (``True``), else raw."""
    if loss.size and (loss > 0).all():
        return np.log(loss), True
    return loss.astype(float), False


def window_half(n: int) -> int:
    """Half-width ``h`` of the trend window for ``n`` logged rows (see ``oscillation``)."""
    return max(2, n // 20)


def oscillation(loss: np.ndarray) -> float:
    """RMS of the (log) loss around its centred moving average (module doc); NaN if too short."""
    x = np.asarray(loss, float)
    x = x[np.isfinite(x)]
    h = window_half(x.size)
    if x.size < 2 * h + 3:
        return math.nan
    x, _ = _loss_scale(x)
    trend = moving_average(x, h)
    resid = (x - trend)[h : x.size - h]
    return float(np.sqrt(np.mean(resid**2)))


def recovery(
    steps: np.ndarray, loss: np.ndarray, phase: np.ndarray, higher_is_better: bool = False
) -> Recovery:
    """Settling time after each change of ``phase`` onto the phase's own asymptote
    (:mod:`analysis.recovery`). ``higher_is_better`` orients the level score only; the
    settling band is symmetric, so the times do not depend on it."""
    return _recovery(steps, loss, phase, higher_is_better=higher_is_better)


def gamma_stats(steps: np.ndarray, gamma: np.ndarray) -> tuple[float, float]:
    """``(variance of log gamma, median gamma)`` over finite positive values after step 0."""
    g = gamma[(steps > 0) & np.isfinite(gamma) & (gamma > 0)]
    if g.size == 0:
        return math.nan, math.nan
    var = float(np.var(np.log(g), ddof=1)) if g.size >= 3 else math.nan
    return var, median(g)


def coefficient_summary(name: str, values: np.ndarray) -> dict[str, float]:
    """``<name>:start/end/min/max/logmean[/horizon]`` of one coefficient column (module doc)."""
    v = values[np.isfinite(values)]
    if v.size == 0:
        return {}
    out = {
        f"{name}:start": float(v[0]),
        f"{name}:end": float(v[-1]),
        f"{name}:min": float(v.min()),
        f"{name}:max": float(v.max()),
    }
    pos = v[v > 0]
    out[f"{name}:logmean"] = float(np.log(pos).mean()) if pos.size else math.nan
    if name.split("/")[0] in BETA_LIKE:
        below = v[v < 1]
        out[f"{name}:horizon"] = float(-np.log1p(-below).mean()) if below.size else math.nan
    return out


@lru_cache(maxsize=256)
def _coefficient_keys(columns: tuple[str, ...]) -> tuple[tuple[str, ...], np.ndarray, tuple]:
    """For a curves header: its coefficient columns, which are beta-like, and each one's
    summary keys (``start, end, min, max, logmean`` and ``horizon`` or None); cached, as every
    run of an arm shares its header."""
    names = tuple(c for c in columns if is_coefficient(c))
    beta = np.array([n.split("/")[0] in BETA_LIKE for n in names], bool)
    keys = tuple(
        (
            *(f"{n}:{k}" for k in ("start", "end", "min", "max", "logmean")),
            f"{n}:horizon" if b else None,
        )
        for n, b in zip(names, beta, strict=True)
    )
    return names, beta, keys


def coefficient_summaries(curves: Curves) -> tuple[dict[str, float], list[str]]:
    """:func:`coefficient_summary` of every coefficient column of ``curves`` (column order),
    and those columns. The columns that are all finite, positive and (for momentum and the
    betas) below 1, as logged coefficients are, are summarised together as rows of one array,
    with the same values (numpy reduces each row of a C-ordered array as it reduces a 1-D
    one); the others one by one. Per-column calls were most of the per-run metrics' cost."""
    names, beta, keys = _coefficient_keys(tuple(curves.names()))
    if not names or len(curves) == 0:
        out = {k: v for n in names for k, v in coefficient_summary(n, curves.columns[n]).items()}
        return out, list(names)
    block = np.stack([curves.columns[n] for n in names])
    with np.errstate(invalid="ignore", divide="ignore"):
        fast = np.isfinite(block).all(axis=1) & (block > 0).all(axis=1)
        fast &= ~beta | (block < 1).all(axis=1)
        logmean = np.log(block).mean(axis=1)
        horizon = -np.log1p(-block).mean(axis=1)
    stats = np.column_stack([block[:, 0], block[:, -1], block.min(axis=1), block.max(axis=1)])
    stats = np.column_stack([stats, logmean, horizon]).tolist()
    out: dict[str, float] = {}
    for i, name in enumerate(names):
        if not fast[i]:
            out.update(coefficient_summary(name, block[i]))
            continue
        row, key = stats[i], keys[i]
        for j in range(5):
            out[key[j]] = row[j]
        if key[5] is not None:
            out[key[5]] = row[5]
    return out, list(names)


def is_coefficient(column: str) -> bool:
    return column.split("/")[0] in COEFFICIENTS


@dataclass
class Traces:
    """Down-sampled curves of one run, kept for the figures (float32 to bound memory).

    ``val`` is ``(steps, values)`` of the evaluation metric; ``grid`` the logged rows on a
    common step grid (every ``stride`` steps, at most :data:`MAX_TRACE_POINTS` rows) with
    ``columns`` naming its columns (``step`` first, then ``train_loss``, coefficients,
    ``gamma``).
    """

    val: tuple[np.ndarray, np.ndarray]
    columns: tuple[str, ...] = ()
    grid: np.ndarray = field(default_factory=lambda: np.empty((0, 0), np.float32))


def _grid_rows(steps: np.ndarray) -> np.ndarray:
    """Indices of the rows on a step grid shared by every run of an arm: steps that are
    multiples of ``cadence * ceil(rows / MAX_TRACE_POINTS)``, ``cadence`` the smallest step
    between logged rows (the same in every seed of an arm, so the grids line up)."""
    if steps.size <= MAX_TRACE_POINTS:
        return np.arange(steps.size)
    gaps = np.diff(steps)
    gaps = gaps[gaps > 0]
    cadence = float(gaps.min()) if gaps.size else 1.0
    stride = cadence * math.ceil(steps.size / MAX_TRACE_POINTS)
    # np.isclose(r, 0.0) with its default tolerances, without its per-call overhead
    return np.flatnonzero(np.abs(np.mod(steps, stride)) <= 1e-8)


def plateau_exit(steps: np.ndarray, exit_step: np.ndarray, budget: float) -> tuple[float, bool]:
    """``(restricted exit step, exited)`` from a task's ``plateau_exit_step`` column (blank
    until the run leaves the plateau): the first logged value, else the budget (censored)."""
    hit = exit_step[np.isfinite(exit_step)]
    if hit.size:
        return float(hit[0]), True
    return (float(budget) if math.isfinite(budget) else float(steps.max(initial=0))), False


def curve_metrics(
    curves: Curves, metric_name: str | None, budget: float = math.nan
) -> tuple[dict[str, float | bool], Traces]:
    """The curve-based metrics of one run (module doc) and its traces for the figures."""
    steps = curves.steps
    out: dict[str, float | bool] = {}
    loss = curves.get("train_loss")
    if loss is not None:
        out["oscillation"] = oscillation(loss)
    exit_col = curves.get("plateau_exit_step")
    if exit_col is not None:
        out["plateau_exit"], out["plateau_exited"] = plateau_exit(steps, exit_col, budget)
    errors = curves.get("selection_errors")
    if errors is not None:
        last = errors[np.isfinite(errors)]
        out["selection_errors"] = float(last[-1]) if last.size else math.nan
    phase = curves.get("drift_phase")
    drifts = phase is not None and np.unique(phase[np.isfinite(phase)]).size > 1
    out["drifts"] = bool(drifts)
    series = next(((curves.get(c), hi) for c, hi in RECOVERY_SERIES if c in curves.columns), None)
    if drifts and series is not None:
        rec = recovery(steps, series[0], phase, series[1])
        out.update(
            recovery=rec.mean_restricted,
            recovery_censored=float(rec.censored),
            switches=float(rec.switches),
            recovery_level=rec.level_score,
        )
    gamma = curves.get("gamma")
    if gamma is not None:
        out["gamma_logvar"], out["gamma_median"] = gamma_stats(steps, gamma)
    kept = ["step"]
    if loss is not None:
        kept.append("train_loss")
    summaries, coefficients = coefficient_summaries(curves)
    out.update(summaries)
    kept += coefficients
    if gamma is not None:
        kept.append("gamma")
    val_col = curves.get(f"val_{metric_name}") if metric_name else None
    if val_col is not None:
        ok = np.isfinite(val_col)
        val = (steps[ok].astype(np.float32), val_col[ok].astype(np.float32))
    else:
        val = (np.empty(0, np.float32), np.empty(0, np.float32))
    rows = _grid_rows(steps)
    grid = np.column_stack([curves.columns[c][rows] for c in kept]).astype(np.float32)
    return out, Traces(val=val, columns=tuple(kept), grid=grid)
