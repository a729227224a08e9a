"""Statistics core of ``aebench-analyze``: summaries, comparisons, censoring, profiles.

Small functions with one job each, built on scipy/numpy/pandas; only what no library does is
written here. Definitions follow, and cite, three references:

- rliable (Agarwal et al., "Deep RL at the Edge of the Statistical Precipice", NeurIPS 2021;
  github.com/google-research/rliable): interquartile mean, probability of improvement,
  stratified bootstrap confidence intervals.
- COCO (Hansen et al., "COCO: Performance assessment", 2016/2021): expected running time (ERT),
  the evaluations used by all runs over the number of successes (an unsuccessful run is
  charged what it used: its budget, or the step a diverged run stopped at).
- AlgoPerf (Dahl et al., "Benchmarking Neural Network Training Algorithms", 2023): performance
  profiles on time-to-target ratios with a cutoff ``r_max``.

Conventions used throughout:

- Non-finite values (NaN, +-inf) in metric samples are dropped *and counted* (``n_dropped``),
  never dropped silently. Time-to-target is different: there ``inf`` means "missed" and is data.
- Comparisons are oriented so that a **positive difference means arm ``b`` is better than arm
  ``a``**, whatever the metric's direction (``higher_is_better``).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats

CIMethod = Literal["t", "percentile", "bca"]
ArrayLike = Sequence[float] | np.ndarray | pd.Series

__all__ = [
    "Comparison",
    "RestrictedMean",
    "Summary",
    "as_censored",
    "ert_interval",
    "expected_running_time",
    "finite",
    "fraction_reached",
    "holm",
    "iqm",
    "km_restricted_mean",
    "paired_comparison",
    "performance_profile",
    "performance_ratios",
    "probability_of_improvement",
    "probability_of_improvement_ci",
    "stratified_bootstrap_iqm",
    "summarize",
    "t_interval",
]


# --------------------------------------------------------------------------- helpers


def finite(values: ArrayLike) -> tuple[np.ndarray, int]:
    """The finite entries of ``values`` as a float array, and how many were dropped.

    ``None`` counts as NaN (pandas reads a JSON ``null`` that way).
    """
    dtype = getattr(values, "dtype", None)
    if isinstance(dtype, np.dtype) and dtype.kind == "f":
        arr = np.asarray(values, float)  # already numbers: no round trip through objects
    else:
        arr = np.asarray(pd.to_numeric(pd.Series(values, dtype=object), errors="coerce"), float)
    keep = np.isfinite(arr)
    return arr[keep], int((~keep).sum())


def t_interval(values: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Student-t confidence interval of the mean: ``mean +- t_{n-1,(1+c)/2} * s / sqrt(n)``.

    ``s`` is the sample standard deviation (ddof=1). Returns ``(nan, nan)`` for n < 2, where the
    spread is unknown. Constant samples give a zero-width interval at the mean.
    """
    x = np.asarray(values, float)
    n = x.size
    if n < 2:
        return float("nan"), float("nan")
    mean = float(x.mean())
    half = float(_t_quantile((1 + confidence) / 2, n - 1) * x.std(ddof=1) / np.sqrt(n))
    return mean - half, mean + half


@lru_cache(maxsize=256)
def _t_quantile(q: float, df: int) -> np.float64:
    """``stats.t.ppf(q, df)``, cached: a report asks for the same few quantiles thousands of
    times, and scipy's per-call overhead, not the quantile, was the cost."""
    return stats.t.ppf(q, df=df)


def _bootstrap_kwargs(seed: int) -> dict:
    """Seed argument for scipy.stats.bootstrap across versions (``rng`` since scipy 1.15)."""
    key = "rng" if "rng" in inspect.signature(stats.bootstrap).parameters else "random_state"
    return {key: np.random.default_rng(seed)}


def _bootstrap_interval(
    x: np.ndarray, method: Literal["percentile", "bca"], confidence: float, n_boot: int, seed: int
) -> tuple[float, float]:
    """Bootstrap CI of the mean via scipy.stats.bootstrap (percentile or BCa).

    A constant sample has no resampling spread: its interval is the point itself (scipy's BCa
    is undefined there).
    """
    if x.size < 2:
        return float("nan"), float("nan")
    if np.all(x == x[0]):
        return float(x[0]), float(x[0])
    res = stats.bootstrap(
        (x,),
        np.mean,
        n_resamples=n_boot,
        confidence_level=confidence,
        method="BCa" if method == "bca" else "percentile",
        vectorized=True,
        **_bootstrap_kwargs(seed),
    )
    return float(res.confidence_interval.low), float(res.confidence_interval.high)


# --------------------------------------------------------------------------- summaries


def iqm(values: ArrayLike) -> float:
    """Interquartile mean, as rliable defines it (``aggregate_iqm``).

    ``scipy.stats.trim_mean(values, proportiontocut=0.25)``: sort, cut ``floor(0.25 * n)``
    values from each end, average the rest. Robust to outliers yet, unlike the median, uses half
    of the data. NaN for an empty sample; raises ValueError on NaN (drop them first, see
    :func:`finite`), since NaN would sort to an end and be trimmed silently.
    """
    x = np.asarray(values, float).ravel()
    if x.size == 0:
        return float("nan")
    if np.isnan(x).any():
        raise ValueError("iqm: NaN in values; drop non-finite values first")
    # scipy's trim_mean step by step (the same partition, so the same sum), without the
    # per-call cost of its axis/NaN-policy wrapper
    cut = int(0.25 * x.size)
    middle = np.partition(x, (cut, x.size - cut - 1))[cut : x.size - cut]
    return float(np.mean(middle))


@dataclass(frozen=True)
class Summary:
    """Summary of one sample (one arm, one metric).

    ``n`` counts the finite values used; ``n_dropped`` the non-finite ones removed. ``ci_low``
    and ``ci_high`` bound the mean at ``confidence``, computed by ``method``; both are NaN when
    n < 2. With n = 0 every statistic is NaN.
    """

    n: int
    n_dropped: int
    mean: float
    ci_low: float
    ci_high: float
    median: float
    iqm: float
    method: str
    confidence: float


def summarize(
    values: ArrayLike,
    ci: CIMethod = "t",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> Summary:
    """n, mean with its confidence interval, median and IQM of the finite ``values``.

    ``ci``: ``"t"`` (default) is the Student-t interval of :func:`t_interval`; ``"percentile"``
    and ``"bca"`` are bootstrap intervals of the mean from ``scipy.stats.bootstrap`` with
    ``n_boot`` resamples and a fixed ``seed`` (deterministic). Non-finite values are dropped and
    counted in ``n_dropped``. n = 0: everything NaN; n = 1: mean, median and IQM are the value,
    the interval is NaN (no spread can be estimated from one run).
    """
    if ci not in ("t", "percentile", "bca"):
        raise ValueError(f"summarize: ci must be 't', 'percentile' or 'bca', not {ci!r}")
    x, dropped = finite(values)
    nan = float("nan")
    if x.size == 0:
        return Summary(0, dropped, nan, nan, nan, nan, nan, ci, confidence)
    if ci == "t":
        low, high = t_interval(x, confidence)
    else:
        low, high = _bootstrap_interval(x, ci, confidence, n_boot, seed)
    return Summary(
        n=int(x.size),
        n_dropped=dropped,
        mean=float(x.mean()),
        ci_low=low,
        ci_high=high,
        median=float(np.median(x)),
        iqm=iqm(x),
        method=ci,
        confidence=confidence,
    )


# --------------------------------------------------------------------------- comparisons


def probability_of_improvement(a: ArrayLike, b: ArrayLike, higher_is_better: bool = True) -> float:
    """P(b better than a) for one task, as rliable defines it (``probability_of_improvement``).

    The Mann-Whitney U statistic of ``b`` against ``a``, normalised by ``len(a) * len(b)``: the
    fraction of all (a_i, b_j) pairs in which b_j is better, ties counting 1/2. 0.5 means no
    tendency, 1 that every b beats every a. "Better" is larger when ``higher_is_better``, else
    smaller. Inputs must be finite; NaN when either is empty.
    """
    x = np.asarray(a, float).ravel()
    y = np.asarray(b, float).ravel()
    if x.size == 0 or y.size == 0:
        return float("nan")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("probability_of_improvement: non-finite values; drop them first")
    sign = 1.0 if higher_is_better else -1.0
    u = stats.mannwhitneyu(sign * y, sign * x, alternative="two-sided").statistic
    return float(u / (x.size * y.size))


@dataclass(frozen=True)
class Comparison:
    """Comparison of arm ``b`` against arm ``a`` on one metric.

    ``diff`` is oriented so that **positive means b is better**: ``mean(b - a)`` when higher is
    better, ``mean(a - b)`` when lower is better. ``test`` names the test behind ``p``:

    - ``"paired-t"``: pairs by seed; ``diff`` is the mean paired difference, its CI the Student-t
      interval, ``p`` the paired t-test (scipy.stats.ttest_rel, two-sided), ``p_wilcoxon`` the
      Wilcoxon signed-rank test, ``effect_size`` Cohen's d_z = mean(d) / sd(d).
    - ``"mann-whitney-u"`` (fewer than ``min_pairs`` shared seeds): ``diff`` is the difference of
      the means, its CI Welch's t interval, ``p`` the two-sided Mann-Whitney U test,
      ``p_wilcoxon`` NaN, ``effect_size`` Cohen's d with the pooled standard deviation.
    - ``"none"``: not enough data for any test (all fields NaN but the counts).

    ``prob_improvement`` is rliable's P(b better than a) over the values compared.
    ``n_a``/``n_b`` count the values used from each arm (equal to ``n_pairs`` when paired);
    ``n_dropped`` counts non-finite values removed from both arms.
    """

    test: str
    paired: bool
    n_pairs: int
    n_a: int
    n_b: int
    n_dropped: int
    diff: float
    ci_low: float
    ci_high: float
    p: float
    p_wilcoxon: float
    effect_size: float
    effect_size_kind: str
    prob_improvement: float
    higher_is_better: bool
    confidence: float


def _pairs(
    a: np.ndarray, b: np.ndarray, seeds_a: Sequence[Hashable], seeds_b: Sequence[Hashable]
) -> tuple[np.ndarray, np.ndarray]:
    """Values of a and b at the seeds present in both, in sorted seed order."""
    if len(seeds_a) != len(a) or len(seeds_b) != len(b):
        raise ValueError("paired_comparison: each seed list must be as long as its values")
    sa = pd.Series(a, index=pd.Index(list(seeds_a)))
    sb = pd.Series(b, index=pd.Index(list(seeds_b)))
    for name, s in (("seeds_a", sa), ("seeds_b", sb)):
        if s.index.has_duplicates:
            dup = s.index[s.index.duplicated()].unique().tolist()
            raise ValueError(f"paired_comparison: repeated seeds in {name}: {dup}")
    shared = sa.index.intersection(sb.index)
    shared = shared.sort_values() if len(shared) else shared
    return sa.loc[shared].to_numpy(float), sb.loc[shared].to_numpy(float)


def _quiet(fn, *args, **kwargs) -> float:
    """p-value of a scipy test, NaN where the test is undefined; scipy's warnings silenced."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return float(fn(*args, **kwargs).pvalue)
        except ValueError:
            return float("nan")


def _paired(
    d_a: np.ndarray, d_b: np.ndarray, sign: float, confidence: float, wilcoxon: bool = True
) -> dict:
    d = sign * (d_b - d_a)
    n = d.size
    sd = float(d.std(ddof=1))
    low, high = t_interval(d, confidence)
    all_zero = bool(np.all(d == 0))
    return {
        "diff": float(d.mean()),
        "ci_low": low,
        "ci_high": high,
        "p": float("nan") if all_zero else _quiet(stats.ttest_rel, d_b, d_a),
        "p_wilcoxon": (
            float("nan") if all_zero or n < 2 or not wilcoxon else _quiet(stats.wilcoxon, d)
        ),
        "effect_size": float(d.mean() / sd) if sd > 0 else float("nan"),
    }


def _welch_interval(x: np.ndarray, y: np.ndarray, confidence: float) -> tuple[float, float]:
    """Welch's t interval of mean(y) - mean(x) (Welch-Satterthwaite degrees of freedom)."""
    if x.size < 2 or y.size < 2:
        return float("nan"), float("nan")
    vx, vy = x.var(ddof=1) / x.size, y.var(ddof=1) / y.size
    se = np.sqrt(vx + vy)
    diff = y.mean() - x.mean()
    if se == 0:
        return float(diff), float(diff)
    df = (vx + vy) ** 2 / (vx**2 / (x.size - 1) + vy**2 / (y.size - 1))
    half = stats.t.ppf((1 + confidence) / 2, df=df) * se
    return float(diff - half), float(diff + half)


def _unpaired(x: np.ndarray, y: np.ndarray, sign: float, confidence: float) -> dict:
    xs, ys = sign * x, sign * y
    low, high = _welch_interval(xs, ys, confidence)
    if x.size >= 2 and y.size >= 2:
        pooled = np.sqrt(
            ((x.size - 1) * x.var(ddof=1) + (y.size - 1) * y.var(ddof=1)) / (x.size + y.size - 2)
        )
    else:
        pooled = 0.0
    diff = float(ys.mean() - xs.mean())
    return {
        "diff": diff,
        "ci_low": low,
        "ci_high": high,
        "p": _quiet(stats.mannwhitneyu, ys, xs, alternative="two-sided"),
        "p_wilcoxon": float("nan"),
        "effect_size": diff / float(pooled) if pooled > 0 else float("nan"),
    }


def paired_comparison(
    a: ArrayLike,
    b: ArrayLike,
    seeds_a: Sequence[Hashable] | None,
    seeds_b: Sequence[Hashable] | None,
    higher_is_better: bool,
    confidence: float = 0.95,
    min_pairs: int = 2,
    wilcoxon: bool = True,
) -> Comparison:
    """Compare arm ``b`` with arm ``a`` on one metric, pairing runs by seed where possible.

    Pairs are the seeds present in both arms whose values are finite in both; a seed must not
    repeat within an arm (ValueError). With at least ``min_pairs`` pairs the comparison is paired
    (unshared seeds are left out); otherwise, or when a seed list is ``None``, it falls back to
    the unpaired Mann-Whitney U test on every finite value. See :class:`Comparison` for the
    fields and their definitions; positive ``diff`` means b is better. ``wilcoxon=False`` skips
    the signed-rank test (``p_wilcoxon`` NaN): for small samples with ties scipy computes it by
    permutation (~0.2 s each), too slow for the thousands of comparisons of a large report.
    """
    sign = 1.0 if higher_is_better else -1.0
    a_raw = np.asarray(pd.to_numeric(pd.Series(a, dtype=object), errors="coerce"), float)
    b_raw = np.asarray(pd.to_numeric(pd.Series(b, dtype=object), errors="coerce"), float)
    dropped = int((~np.isfinite(a_raw)).sum() + (~np.isfinite(b_raw)).sum())
    common = {"higher_is_better": higher_is_better, "confidence": confidence}

    if seeds_a is not None and seeds_b is not None:
        pa, pb = _pairs(a_raw, b_raw, seeds_a, seeds_b)
        ok = np.isfinite(pa) & np.isfinite(pb)
        pa, pb = pa[ok], pb[ok]
        if pa.size >= max(min_pairs, 2):
            return Comparison(
                test="paired-t",
                paired=True,
                n_pairs=int(pa.size),
                n_a=int(pa.size),
                n_b=int(pb.size),
                n_dropped=dropped,
                effect_size_kind="d_z",
                prob_improvement=probability_of_improvement(pa, pb, higher_is_better),
                **_paired(pa, pb, sign, confidence, wilcoxon),
                **common,
            )

    x, y = a_raw[np.isfinite(a_raw)], b_raw[np.isfinite(b_raw)]
    if x.size == 0 or y.size == 0:
        nan = float("nan")
        return Comparison(
            "none", False, 0, int(x.size), int(y.size), dropped,
            nan, nan, nan, nan, nan, nan, "d", nan, **common,
        )  # fmt: skip
    return Comparison(
        test="mann-whitney-u",
        paired=False,
        n_pairs=0,
        n_a=int(x.size),
        n_b=int(y.size),
        n_dropped=dropped,
        effect_size_kind="d",
        prob_improvement=probability_of_improvement(x, y, higher_is_better),
        **_unpaired(x, y, sign, confidence),
        **common,
    )


def holm(pvalues: ArrayLike) -> np.ndarray:
    """Holm-Bonferroni step-down adjusted p-values (Holm 1979), in the input order.

    With the m non-NaN p-values sorted ascending, ``p_(1) <= ... <= p_(m)``:
    ``adj_(i) = max_{j <= i} min(1, (m - j + 1) * p_(j))``, i.e. multiplied by the number of
    hypotheses still in play, made monotone, capped at 1. Rejecting ``adj <= alpha`` controls
    the family-wise error rate at alpha. NaN entries pass through and do not count in m.
    """
    p = np.asarray(pvalues, float).ravel()
    out = np.full(p.shape, np.nan)
    idx = np.flatnonzero(~np.isnan(p))
    if idx.size == 0:
        return out
    if ((p[idx] < 0) | (p[idx] > 1)).any():
        raise ValueError("holm: p-values must lie in [0, 1]")
    m = idx.size
    order = idx[np.argsort(p[idx], kind="stable")]
    scaled = (m - np.arange(m)) * p[order]
    out[order] = np.minimum(1.0, np.maximum.accumulate(scaled))
    return out


# --------------------------------------------------------------------------- time-to-target


def as_censored(steps: ArrayLike) -> np.ndarray:
    """Time-to-target with misses as ``inf``: ``None``/NaN (the record's ``target.step`` of a
    run that did not reach the target) become ``inf``; other values are kept."""
    arr = np.asarray(pd.to_numeric(pd.Series(steps, dtype=object), errors="coerce"), float)
    return np.where(np.isnan(arr), np.inf, arr)


def _times(times: ArrayLike, who: str) -> np.ndarray:
    t = np.asarray(times, float).ravel()
    if np.isnan(t).any():
        raise ValueError(f"{who}: NaN time; mark a miss as inf (see as_censored)")
    if (t < 0).any():
        raise ValueError(f"{who}: negative time")
    return t


def fraction_reached(times: ArrayLike) -> float:
    """Fraction of runs that reached the target: finite times over all runs (a miss is ``inf``).

    NaN for no runs; raises ValueError on NaN times (ambiguous: convert with
    :func:`as_censored`).
    """
    t = _times(times, "fraction_reached")
    return float(np.isfinite(t).mean()) if t.size else float("nan")


def expected_running_time(times: ArrayLike, budgets: ArrayLike | float) -> float:
    """COCO's expected running time (ERT) to the target, in the units of ``times``.

    ``ERT = (sum over runs of the steps spent) / (number of runs that reached the target)``,
    where a run that reached the target spent its hitting time and a miss (``inf``) spent its
    whole budget. Equals the mean time when every run succeeds; ``inf`` when none does, NaN for
    no runs. ``budgets`` is one number or one per run; a finite time above its run's budget is a
    ValueError.
    """
    t = _times(times, "expected_running_time")
    if t.size == 0:
        return float("nan")
    b = np.broadcast_to(np.asarray(budgets, float), t.shape)
    hit = np.isfinite(t)
    if not np.isfinite(b[~hit]).all():
        raise ValueError("expected_running_time: every missed run needs a finite budget")
    if (t[hit] > b[hit]).any():
        raise ValueError("expected_running_time: a time-to-target exceeds its run's budget")
    successes = int(hit.sum())
    if successes == 0:
        return float("inf")
    return float((t[hit].sum() + b[~hit].sum()) / successes)


def performance_ratios(table: pd.DataFrame, r_max: float = 4.0) -> pd.DataFrame:
    """AlgoPerf performance ratios: a task x arm table of ``time / best time on the task``.

    ``table`` has columns ``task``, ``arm``, ``time`` (steps to target, ``inf`` for a miss), one
    row per (task, arm): aggregate seeds first (e.g. with :func:`expected_running_time`). An arm
    absent from a task counts as a miss. Ratios above ``r_max`` become ``inf`` (failure), as do
    all ratios on a task that no arm solved. Times must be positive and not NaN.
    """
    missing = {"task", "arm", "time"} - set(table.columns)
    if missing:
        raise ValueError(f"performance_ratios: missing columns {sorted(missing)}")
    if table.duplicated(["task", "arm"]).any():
        raise ValueError("performance_ratios: one row per (task, arm); aggregate seeds first")
    t = _times(table["time"], "performance_ratios")
    if (t == 0).any():
        raise ValueError("performance_ratios: times must be positive")
    wide = table.pivot(index="task", columns="arm", values="time").astype(float)
    wide = wide.fillna(np.inf)
    best = wide.min(axis=1)
    with np.errstate(invalid="ignore"):
        ratios = wide.div(best, axis=0)
    ratios.loc[~np.isfinite(best)] = np.inf
    return ratios.mask(ratios > r_max, np.inf)


def performance_profile(
    table: pd.DataFrame, tau_grid: ArrayLike, r_max: float = 4.0
) -> pd.DataFrame:
    """AlgoPerf performance profiles: ``rho_arm(tau)`` = fraction of tasks with ratio <= tau.

    Ratios are those of :func:`performance_ratios` (a miss or a ratio above ``r_max`` never
    counts). Returns an arm x tau DataFrame (index ``arm``, columns the values of ``tau_grid``),
    each row non-decreasing in tau, with ``rho_arm(1)`` the fraction of tasks the arm is (joint)
    fastest on.
    """
    ratios = performance_ratios(table, r_max)
    taus = np.asarray(tau_grid, float).ravel()
    r = ratios.to_numpy()  # task x arm
    rho = (r[:, :, None] <= taus[None, None, :]).mean(axis=0)  # arm x tau
    out = pd.DataFrame(rho, index=ratios.columns, columns=pd.Index(taus, name="tau"))
    out.index.name = "arm"
    return out


# --------------------------------------------------------------------------- across tasks


def stratified_bootstrap_iqm(
    scores_by_task: Mapping[str, ArrayLike],
    n_boot: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
) -> tuple[float, float, float]:
    """IQM over tasks with rliable's stratified-bootstrap percentile CI: ``(point, low, high)``.

    ``point`` is the IQM of all runs of all tasks pooled (rliable's ``aggregate_iqm``). Each of
    ``n_boot`` bootstrap replicates resamples, with replacement, the runs *within each task*
    independently (keeping each task's run count), pools them and takes the IQM; ``low`` and
    ``high`` are the ``(1 -+ confidence) / 2`` percentiles of the replicates. Deterministic for
    a fixed ``seed``.

    The caller normalises scores per task first (e.g. to [0, 1] between a reference and a
    best score, oriented so higher is better), or the IQM mixes incomparable units. Every task
    needs at least one run, and scores must be finite (ValueError otherwise: a diverged run must
    be given a score by the caller, not dropped here).
    """
    if not scores_by_task:
        raise ValueError("stratified_bootstrap_iqm: no tasks")
    groups = []
    for task, scores in scores_by_task.items():
        x = np.asarray(scores, float).ravel()
        if x.size == 0:
            raise ValueError(f"stratified_bootstrap_iqm: task {task!r} has no runs")
        if not np.isfinite(x).all():
            raise ValueError(f"stratified_bootstrap_iqm: task {task!r} has non-finite scores")
        groups.append(x)
    point = iqm(np.concatenate(groups))
    rng = np.random.default_rng(seed)
    total = sum(g.size for g in groups)
    chunk = max(1, 2_000_000 // total)  # bound memory at ~16 MB of resampled scores
    reps = []
    for start in range(0, n_boot, chunk):
        k = min(chunk, n_boot - start)
        pooled = np.concatenate([g[rng.integers(0, g.size, size=(k, g.size))] for g in groups], 1)
        reps.append(stats.trim_mean(pooled, proportiontocut=0.25, axis=1))
    replicates = np.concatenate(reps)
    alpha = (1 - confidence) / 2
    low, high = np.percentile(replicates, [100 * alpha, 100 * (1 - alpha)])
    return point, float(low), float(high)


# --------------------------------------------------------------------------- censored times


@dataclass(frozen=True)
class RestrictedMean:
    """Kaplan-Meier restricted mean time to target (RMST) up to ``horizon``, its CI and the
    share of runs censored (that did not reach the target)."""

    rmst: float
    ci_low: float
    ci_high: float
    censored_share: float
    horizon: float


def km_restricted_mean(
    times: ArrayLike, censor: ArrayLike, horizon: float, confidence: float = 0.95
) -> RestrictedMean:
    """Kaplan-Meier restricted mean ``RMST = integral_0^horizon S(t) dt``.

    ``times`` are hitting times (``inf`` for a miss); a miss is censored at its ``censor``
    time (the budget; a diverged run counts as a miss through the budget under the outcome
    policy, :mod:`analysis.outcomes`). ``S`` is the product-limit estimate
    ``prod_{t_j <= t} (1 - d_j / n_j)``; the variance is the standard delta-method (Greenwood)
    one, ``sum_j A_j^2 d_j / (n_j (n_j - d_j))`` with ``A_j = integral_{t_j}^horizon S``; the
    CI is the normal interval clipped to ``[0, horizon]`` (a step count is never negative).
    With every run censored at the horizon the RMST is the horizon and the interval is
    degenerate (``[horizon, horizon]``): nothing was learnt about the time.
    """
    t = np.asarray(times, float).ravel()
    c = np.broadcast_to(np.asarray(censor, float), t.shape)
    n_runs = t.size
    if n_runs == 0:
        nan = float("nan")
        return RestrictedMean(nan, nan, nan, nan, float(horizon))
    hit = np.isfinite(t) & (t <= horizon)
    obs = np.where(hit, t, np.minimum(c, horizon))
    order = np.argsort(obs, kind="stable")
    obs, hit = obs[order], hit[order]
    event_times = np.unique(obs[hit])
    surv, s = [], 1.0
    at_risk_d = []
    for tj in event_times:
        n_j = int((obs >= tj).sum())
        d_j = int(((obs == tj) & hit).sum())
        s *= 1.0 - d_j / n_j
        surv.append(s)
        at_risk_d.append((n_j, d_j))
    grid = np.concatenate([[0.0], event_times, [horizon]])
    levels = np.concatenate([[1.0], surv])
    areas = levels * np.diff(grid)
    rmst = float(areas.sum())
    var = 0.0
    for j, (n_j, d_j) in enumerate(at_risk_d):
        a_j = float(areas[j + 1 :].sum())
        if n_j > d_j:
            var += a_j**2 * d_j / (n_j * (n_j - d_j))
    z = stats.norm.ppf((1 + confidence) / 2)
    half = z * np.sqrt(var)
    lo, hi = max(0.0, rmst - half), min(float(horizon), rmst + half)
    return RestrictedMean(rmst, float(lo), float(hi), float((~hit).mean()), float(horizon))


def ert_interval(
    times: ArrayLike,
    spent: ArrayLike,
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(ERT, low, high)``: COCO's ERT (:func:`expected_running_time`, misses charged the
    steps they used) with a percentile bootstrap CI over runs (``n_boot`` resamples, fixed
    seed). A resample without a success has ERT ``inf``, so the upper bound is ``inf`` when
    that happens in more than ``(1 - confidence) / 2`` of them. Bounds are never negative."""
    t = np.asarray(times, float).ravel()
    b = np.broadcast_to(np.asarray(spent, float), t.shape)
    if t.size == 0:
        nan = float("nan")
        return nan, nan, nan
    point = expected_running_time(t, b)
    hit = np.isfinite(t)
    cost = np.where(hit, t, b)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, t.size, size=(n_boot, t.size))
    succ = hit[idx].sum(1)
    with np.errstate(divide="ignore", invalid="ignore"):
        reps = np.where(succ > 0, cost[idx].sum(1) / np.maximum(succ, 1), np.inf)
    a = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [a, 1 - a], method="inverted_cdf")
    return point, max(0.0, float(lo)), float(hi)


def _draw_counts(idx: np.ndarray, n: int) -> np.ndarray:
    """Per row of bootstrap indices ``idx`` (replicates x draws), how often each of ``n`` items
    was drawn (replicates x n)."""
    k = idx.shape[0]
    flat = (idx + n * np.arange(k)[:, None]).ravel()
    return np.bincount(flat, minlength=k * n).reshape(k, n).astype(np.float64)


@lru_cache(maxsize=16)
def _paired_draw_counts(na: int, nb: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """How often each run of arm a and of arm b is drawn in each of ``n_boot`` resamples (each
    arm resampled on its own, a first, from one generator seeded with ``seed``), transposed:
    ``(na x n_boot, nb x n_boot)``. They depend on the sizes and the seed only, so every
    comparison of equally sized arms shares them (cached, read-only)."""
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, na, size=(n_boot, na))
    ib = rng.integers(0, nb, size=(n_boot, nb))
    ca = np.ascontiguousarray(_draw_counts(ia, na).T)
    cb = np.ascontiguousarray(_draw_counts(ib, nb).T)
    ca.flags.writeable = cb.flags.writeable = False
    return ca, cb


def probability_of_improvement_ci(
    a: ArrayLike,
    b: ArrayLike,
    higher_is_better: bool = True,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float, float]:
    """``(P(b better than a), low, high)``: :func:`probability_of_improvement` with rliable's
    stratified bootstrap percentile CI (each arm resampled on its own, ``n_boot`` resamples,
    fixed seed). Values may hold the worst rank (``+-inf``): only the order matters."""
    x = np.asarray(a, float).ravel()
    y = np.asarray(b, float).ravel()
    if x.size == 0 or y.size == 0 or np.isnan(x).any() or np.isnan(y).any():
        nan = float("nan")
        return nan, nan, nan
    sign = 1.0 if higher_is_better else -1.0
    xs, ys = sign * x, sign * y
    wins = (ys[None, :] > xs[:, None]) + 0.5 * (ys[None, :] == xs[:, None])  # a x b
    point = float(wins.mean())
    ca, cb = _paired_draw_counts(x.size, y.size, n_boot, seed)  # run x replicate
    # a replicate's mean of wins over its resampled (a, b) pairs is sum_ij ca_i W_ij cb_j over
    # na nb, with c* how often each run was drawn; with a sorted, sum_i ca_i W_ij is a
    # cumulative count at b_j's rank, (C[<] + C[<=]) / 2: O(n_boot n), no na x nb product.
    # Every term is a multiple of 1/2 far below 2^53, so the sums are exact in any order.
    order = np.argsort(xs, kind="stable")
    cum = np.zeros((x.size + 1, n_boot))
    np.cumsum(ca[order], axis=0, out=cum[1:])
    sx = xs[order]
    lt, le = np.searchsorted(sx, ys, "left"), np.searchsorted(sx, ys, "right")
    per_b = 0.5 * (cum[lt] + cum[le])  # b-run x replicate: a-draws it beats
    reps = (per_b * cb).sum(axis=0) / (x.size * y.size)
    q = (1 - confidence) / 2
    lo, hi = np.quantile(reps, [q, 1 - q])
    return point, float(lo), float(hi)
