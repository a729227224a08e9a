"""The statistics tables of a report, built from the runs table with :mod:`analysis.stats`.

- :func:`summary_table`: per (data source, task, arm) and metric: n, mean with its CI, median,
  IQM. A metric an arm does not have (``gamma`` in vanilla runs, ``recovery`` without drift) is
  left out; a metric its runs lost by failing (``final`` of diverged runs) is kept, with the
  losses counted in ``n_dropped``.
- :func:`comparisons_table`: the default comparisons of :func:`analysis.arms.partners`, every
  metric of :data:`COMPARE_METRICS`, paired by seed (at least 5 pairs), signed-rank sign-flip
  tests (log ratios for loss-like metrics), Holm-adjusted over every row: an exploratory family
  of its own, apart from the predictions'.
- :func:`time_to_target_table`: fraction reached and COCO's expected running time per arm.
- :func:`profiles`: AlgoPerf performance profiles over problems (tasks with their ``task.*``
  overrides), time = ERT, ``r_max`` = 4, each rho(tau) with its stratified-bootstrap CI.
- :func:`iqm_table`: per method, the IQM over problems of normalised final scores with rliable's
  stratified bootstrap CI.

Runs are never pooled across data sources: every table has a ``data_source`` column and groups
by it first. Every table reads the runs through :func:`analysed` (the outcome policy of
:mod:`analysis.outcomes`): partial and failed runs are left out, diverged runs are in at the
worst rank (``n_diverged`` counts them; means and t intervals are of the finished runs only and
say so, medians and IQMs include the diverged runs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.metrics import METRICS
from analysis.outcomes import apply_policy
from analysis.stats import (
    as_censored,
    ert_interval,
    expected_running_time,
    fraction_reached,
    holm,
    km_restricted_mean,
    performance_profile,
    probability_of_improvement_ci,
    stratified_bootstrap_iqm,
    summarize,
)
from analysis.threshold import MIN_PAIRS, paired_differences, threshold_test

SUMMARY_METRICS = (
    "final",
    "best",
    "auc",
    "time_to_target",
    "incidents",
    "oscillation",
    "recovery",
    "plateau_exit",
    "gamma_logvar",
    "wall_s",
)
COMPARE_METRICS = (
    "final",
    "auc",
    "time_to_target",
    "incidents",
    "oscillation",
    "recovery",
    "plateau_exit",
    "gamma_logvar",
)
ARM_KEYS = ["data_source", "task", "arm"]
#: metrics counted in steps (or events): their intervals never go below 0
STEP_COUNTS = ("time_to_target", "plateau_exit", "recovery", "incidents")
R_MAX = 4.0


def analysed(table: pd.DataFrame) -> pd.DataFrame:
    """The rows statistics use, under the outcome policy of :mod:`analysis.outcomes`: runs with
    a record and an arm, failed runs (bugs) left out, diverged runs at the worst rank."""
    return apply_policy(table)


def _higher(metric: str, mode: object) -> bool | None:
    spec = METRICS.get(metric)
    return None if spec is None else spec.higher_is_better(None if mode is None else str(mode))


def summary_table(
    table: pd.DataFrame,
    ci: str = "t",
    confidence: float = 0.95,
    n_boot: int = 2000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per (data source, task, arm, metric); see the module doc for what is left out."""
    rows = []
    runs = analysed(table)
    for (ds, task, arm), group in runs.groupby(ARM_KEYS, sort=True):
        completed = bool((group["status"] == "completed").all())
        first = group.iloc[0]
        for metric in SUMMARY_METRICS:
            if metric not in group.columns:
                continue
            s = summarize(group[metric], ci, confidence, n_boot, seed)  # type: ignore[arg-type]
            if s.n == 0 and completed:
                continue
            values = pd.to_numeric(group[metric], errors="coerce").to_numpy(float)
            ranked = values[~np.isnan(values)]  # finished runs and the diverged at worst rank
            worst = int(np.isinf(ranked).sum())
            rows.append(
                {
                    "data_source": ds,
                    "task": task,
                    "arm": arm,
                    "label": first.get("label"),
                    "metric": metric,
                    "higher_is_better": _higher(metric, first.get("mode")),
                    "n": s.n,
                    "n_dropped": s.n_dropped - worst,
                    "n_diverged": worst,
                    "mean": s.mean,
                    # a count of steps is never negative: the t interval is clipped at 0
                    "ci_low": max(0.0, s.ci_low) if metric in STEP_COUNTS else s.ci_low,
                    "ci_high": s.ci_high,
                    "median": float(np.median(ranked)) if ranked.size else s.median,
                    "iqm": _rank_iqm(ranked) if ranked.size else s.iqm,
                    "ci_method": s.method,
                }
            )
    return pd.DataFrame(rows)


def _rank_iqm(values: np.ndarray) -> float:
    """IQM of values that may hold the worst rank (+-inf): inf when more than a quarter of
    them are worst on one side (the trimmed middle reaches them)."""
    x = np.sort(values)
    k = int(math.floor(0.25 * x.size))
    mid = x[k : x.size - k]
    with np.errstate(invalid="ignore"):
        return float(mid.mean()) if mid.size else math.nan


@dataclass(frozen=True)
class SeedPairing:
    """The runs of two arms that share a seed: their row positions in each arm, in the order of
    ``Index.intersection`` of the arms' seeds; ``repeated`` when a seed repeats in an arm (then
    the arms are not paired)."""

    pos_a: np.ndarray
    pos_b: np.ndarray
    repeated: bool = False


def seed_pairing(runs_a: pd.DataFrame, runs_b: pd.DataFrame) -> SeedPairing:
    """Pair two arms' runs by seed (:class:`SeedPairing`): the same for every metric, so a
    caller comparing many metrics computes it once."""
    none = np.empty(0, np.intp)
    if runs_a["seed"].duplicated().any() or runs_b["seed"].duplicated().any():
        return SeedPairing(none, none, repeated=True)
    ia, ib = pd.Index(runs_a["seed"].to_numpy()), pd.Index(runs_b["seed"].to_numpy())
    shared = ia.intersection(ib)
    return SeedPairing(ia.get_indexer(shared), ib.get_indexer(shared))


def compare_arms(
    runs_a: pd.DataFrame,
    runs_b: pd.DataFrame,
    metric: str,
    higher_is_better: bool,
    confidence: float = 0.95,
    pairing: SeedPairing | None = None,
) -> tuple[dict, str]:
    """Exploratory paired comparison of two arms' runs on ``metric``, paired by seed
    (``pairing``: :func:`seed_pairing` of the two, computed here when not given): the
    signed-rank sign-flip test of :mod:`analysis.threshold` at 0 (two-sided ``p = 2 min(p_above,
    p_below)``) and the ``confidence`` interval it inverts, on the log ratio for a positive
    metric to minimise (loss-like: ratios of geometric means), on the difference otherwise.
    No test on fewer than 5 pairs. Returns the row fields and notes."""
    notes = []
    nan = math.nan
    out = {"test": "none", "scale": "", "n": 0, "n_dropped": 0, "diff": nan, "ci_low": nan}
    out |= {"ci_high": nan, "p": nan, "prob_improvement": nan, "prob_improvement_low": nan}
    out |= {"prob_improvement_high": nan, "degenerate": False}
    pairing = seed_pairing(runs_a, runs_b) if pairing is None else pairing
    if pairing.repeated:
        return out, "repeated seeds: not paired, not compared"
    if metric == "time_to_target" and runs_a["ttt"].isna().all() and runs_b["ttt"].isna().all():
        notes.append("no run reached the target")
    if metric == "plateau_exit" and not (
        runs_a.get("plateau_exited", pd.Series(dtype=bool)).any()
        or runs_b.get("plateau_exited", pd.Series(dtype=bool)).any()
    ):
        notes.append("no run left the plateau")
    xa = runs_a[metric].to_numpy(float)[pairing.pos_a]
    xb = runs_b[metric].to_numpy(float)[pairing.pos_b]
    ok = ~np.isnan(xa) & ~np.isnan(xb)
    xa, xb = xa[ok], xb[ok]
    out["n"], out["n_dropped"] = int(xa.size), int(len(runs_a) + len(runs_b) - 2 * xa.size)
    if xa.size < MIN_PAIRS:
        notes.append(f"too few pairs ({xa.size} < {MIN_PAIRS}): no test")
        return out, "; ".join(notes)
    loss_like = not higher_is_better and bool((xa > 0).all() and (xb > 0).all())
    effect = "relative" if loss_like else "difference"
    direction = "increase" if higher_is_better else "decrease"
    d, tie = paired_differences(xa, xb, direction, effect)
    res = threshold_test(d, 0.0, (1 - confidence) / 2, tie=tie)
    poi, poi_lo, poi_hi = probability_of_improvement_ci(xa, xb, higher_is_better, confidence)
    out.update(
        test=res.test,
        scale="log ratio" if loss_like else "difference",
        diff=res.estimate,
        ci_low=res.ci_low,
        ci_high=res.ci_high,
        p=min(1.0, 2 * min(res.p_above, res.p_below)),
        degenerate=res.degenerate,
        prob_improvement=poi,
        prob_improvement_low=poi_lo,
        prob_improvement_high=poi_hi,
    )
    if res.degenerate:
        notes.append("degenerate interval (zero width)")
    return out, "; ".join(notes)


def comparisons_table(
    table: pd.DataFrame, pairs: pd.DataFrame, confidence: float = 0.95
) -> pd.DataFrame:
    """Every pair of ``pairs`` on every metric both arms have; ``p_holm`` over all rows."""
    keep = ["data_source", "task", "arm", "label", "seed", "mode", "ttt", "plateau_exited"]
    keep += list(COMPARE_METRICS)
    runs = analysed(table)[[c for c in keep if c in table.columns]]
    by_arm = {arm: g for arm, g in runs.groupby("arm", sort=False)}
    rows = []
    for _, pair in pairs.iterrows():
        a, b = by_arm.get(pair["arm_a"]), by_arm.get(pair["arm_b"])
        if a is None or b is None:
            continue
        first = b.iloc[0]
        label_a = a.iloc[0].get("label")
        pairing = seed_pairing(a, b)
        for metric in COMPARE_METRICS:
            if metric not in runs.columns:
                continue
            if a[metric].notna().sum() == 0 or b[metric].notna().sum() == 0:
                continue  # not measured in one arm (gamma in vanilla runs): nothing to compare
            higher = _higher(metric, first.get("mode"))
            if higher is None:
                continue
            comp, note = compare_arms(a, b, metric, higher, confidence, pairing)
            rows.append(
                {
                    "data_source": first["data_source"],
                    "task": first["task"],
                    "metric": metric,
                    "kind": pair["kind"],
                    "arm_a": pair["arm_a"],
                    "arm_b": pair["arm_b"],
                    "label_a": label_a,
                    "label_b": first.get("label"),
                    "higher_is_better": higher,
                    **comp,
                    "note": note,
                }
            )
    out = pd.DataFrame(rows)
    if not out.empty:
        out.insert(out.columns.get_loc("p") + 1, "p_holm", holm(out["p"].to_numpy(float)))
    return out


def steps_spent(g: pd.DataFrame) -> np.ndarray:
    """Steps each run used (COCO's ERT charges these): the budget for a completed run, the
    step it stopped at (``steps``) for a diverged one (its budget when that is unknown)."""
    budgets = g["budget"].to_numpy(float)
    if "steps" not in g.columns:
        return budgets
    used = pd.to_numeric(g["steps"], errors="coerce").to_numpy(float)
    div = (g["status"] == "diverged").to_numpy() & np.isfinite(used)
    return np.where(div, np.minimum(used, np.where(np.isfinite(budgets), budgets, used)), budgets)


def _ttt_intervals(
    times: np.ndarray, spent: np.ndarray, budgets: np.ndarray, ert: float
) -> dict[str, float]:
    """ERT's bootstrap CI and the Kaplan-Meier restricted mean (horizon: the largest budget)
    with its CI and the censored share (:mod:`analysis.stats`)."""
    nan = math.nan
    out = {"ert_low": nan, "ert_high": nan, "rmst": nan, "rmst_low": nan, "rmst_high": nan}
    out["censored_share"] = float((~np.isfinite(times)).mean()) if times.size else nan
    if math.isnan(ert) or not np.isfinite(budgets).any():
        return out
    _, out["ert_low"], out["ert_high"] = ert_interval(times, spent)
    km = km_restricted_mean(times, budgets, float(np.nanmax(budgets)))
    out.update(rmst=km.rmst, rmst_low=km.ci_low, rmst_high=km.ci_high)
    return out


def time_to_target_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per (data source, task, arm): runs, targets reached, fraction reached, ERT (COCO: steps
    used by all runs, a completed miss at its budget and a diverged run at the step it stopped,
    over the number of successes; ``inf`` when none reached), and the target value."""
    rows = []
    for (ds, task, arm), g in analysed(table).groupby(ARM_KEYS, sort=True):
        times = as_censored(g["ttt"])
        budgets = g["budget"].to_numpy(float)
        spent = steps_spent(g)
        if (~np.isfinite(times) & ~np.isfinite(spent)).any():
            ert = math.nan  # a miss without a budget: the steps it spent are unknown
        else:
            ert = expected_running_time(times, np.where(np.isfinite(spent), spent, np.inf))
        rows.append(
            {
                "data_source": ds,
                "task": task,
                "arm": arm,
                "label": g.iloc[0].get("label"),
                "method": g.iloc[0].get("method"),
                "problem": g.iloc[0].get("problem"),
                "target": g.iloc[0].get("target_value"),
                "runs": len(g),
                "reached": int(np.isfinite(times).sum()),
                "fraction_reached": fraction_reached(times),
                "ert": ert,
                **_ttt_intervals(times, spent, budgets, ert),
                "budget": float(np.nanmax(budgets)) if np.isfinite(budgets).any() else math.nan,
            }
        )
    return pd.DataFrame(rows)


def _ert_cells(table: pd.DataFrame, ttt: pd.DataFrame) -> dict[tuple, tuple[np.ndarray, ...]]:
    """Per (data source, problem, method) of ``ttt``: each run's cost (its hitting time, or the
    steps it spent for a miss) and whether it hit, the inputs of COCO's ERT
    (:func:`time_to_target_table`). Cells whose ERT is unknown (a miss without a budget) are
    left out, as the profile leaves them out."""
    cells = {}
    keyed = ttt.set_index(ARM_KEYS)
    for key, g in analysed(table).groupby(ARM_KEYS, sort=True):
        if key not in keyed.index:
            continue
        row = keyed.loc[key]
        if pd.isna(row["ert"]) or pd.isna(row["problem"]) or pd.isna(row["method"]):
            continue
        times = as_censored(g["ttt"])
        hit = np.isfinite(times)
        cost = np.where(hit, times, steps_spent(g))
        cells[(key[0], row["problem"], row["method"])] = (cost, hit)
    return cells


def _profile_bands(
    cells: dict[tuple, tuple[np.ndarray, ...]],
    problems: list,
    methods: list,
    taus: np.ndarray,
    r_max: float,
    n_boot: int,
    confidence: float,
    seed: int,
) -> tuple[np.ndarray, np.ndarray]:
    """``(low, high)``, each method x tau: rliable's stratified-bootstrap percentile interval
    of rho(tau). A replicate resamples, with replacement, the runs of every (problem, method)
    cell on its own (its run count kept), recomputes each cell's ERT (``inf`` without a
    success) and the profile, exactly as the point estimate (:func:`profiles`)."""
    rng = np.random.default_rng(seed)
    ert = np.full((n_boot, len(problems), len(methods)), np.inf)
    p_index = {p: i for i, p in enumerate(problems)}
    m_index = {m: j for j, m in enumerate(methods)}
    for (_, problem, method), (cost, hit) in cells.items():
        idx = rng.integers(0, cost.size, size=(n_boot, cost.size))
        succ = hit[idx].sum(1)
        with np.errstate(divide="ignore", invalid="ignore"):
            reps = np.where(succ > 0, cost[idx].sum(1) / np.maximum(succ, 1), np.inf)
        ert[:, p_index[problem], m_index[method]] = np.maximum(reps, 1.0)
    best = ert.min(axis=2, keepdims=True)
    with np.errstate(invalid="ignore"):
        ratio = ert / best
    ratio[~np.isfinite(np.broadcast_to(best, ratio.shape)) | (ratio > r_max)] = np.inf
    q = (1 - confidence) / 2
    low = np.empty((len(methods), taus.size))
    high = np.empty_like(low)
    for k, tau in enumerate(taus):
        rho = (ratio <= tau).mean(axis=1)  # replicate x method
        low[:, k], high[:, k] = np.quantile(rho, [q, 1 - q], axis=0)
    return low, high


def profiles(
    ttt: pd.DataFrame,
    table: pd.DataFrame | None = None,
    r_max: float = R_MAX,
    points: int = 61,
    n_boot: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
) -> pd.DataFrame:
    """AlgoPerf performance profiles per data source, long format (``data_source``, ``method``,
    ``tau``, ``rho``): time = ERT per (problem, method), a target met at step 0 counted as one
    step so that ratios are defined. Empty when no arm has a time. With the runs ``table``,
    also ``rho_low`` and ``rho_high``: the stratified-bootstrap ``confidence`` interval of each
    rho(tau) (:func:`_profile_bands`, ``n_boot`` replicates, fixed ``seed``)."""
    out = []
    taus = np.linspace(1.0, r_max, points)
    cells = _ert_cells(table, ttt) if table is not None else {}
    for ds, g in ttt.groupby("data_source", sort=True):
        frame = pd.DataFrame(
            {"task": g["problem"], "arm": g["method"], "time": np.maximum(g["ert"], 1.0)}
        ).dropna()
        if frame.empty:
            continue
        prof = performance_profile(frame, taus, r_max=r_max)
        long = prof.reset_index().melt(id_vars="arm", var_name="tau", value_name="rho")
        if table is not None:
            problems = sorted(frame["task"].unique(), key=str)
            methods = list(prof.index)
            mine = {k: v for k, v in cells.items() if k[0] == ds}
            low, high = _profile_bands(
                mine, problems, methods, taus, r_max, n_boot, confidence, seed
            )
            # melt stacks tau-major: every method at taus[0], then every method at taus[1], ...
            long["rho_low"] = low.T.ravel()
            long["rho_high"] = high.T.ravel()
        long.insert(0, "data_source", ds)
        out.append(long.rename(columns={"arm": "method"}))
    if not out:
        columns = ["data_source", "method", "tau", "rho"]
        return pd.DataFrame(
            columns=columns + (["rho_low", "rho_high"] if table is not None else [])
        )
    return pd.concat(out, ignore_index=True)


def normalised_scores(g: pd.DataFrame) -> pd.Series:
    """Final scores of one problem's runs in [0, 1], higher better: first oriented (``-log
    final`` for a positive metric to minimise, so that decades count alike; ``-final`` for any
    other metric to minimise; ``final`` to maximise), then min-max scaled over the problem's runs
    (the worst finished run 0, the best 1), the scale set by the finished runs only. A diverged
    run (worst rank, ``final = +-inf`` under the outcome policy) scores -1: below every finished
    run, never tied with the worst of them, and trimmed by the IQM while fewer than a quarter of
    the runs diverge.
    Without reference scores (rliable's human/random), the scale is relative to the runs
    analysed together: add or remove arms and the numbers move."""
    mode = g["mode"].dropna().iloc[0] if g["mode"].notna().any() else "min"
    v = g["final"].to_numpy(float)
    fin = np.isfinite(v)
    if mode == "max":
        s = v.copy()
    elif fin.any() and (v[fin] > 0).all():
        s = -np.log(np.where(fin, v, 1.0))
    else:
        s = -v
    out = np.where(np.isnan(v), 0.0, -1.0)
    if fin.any():
        lo, hi = s[fin].min(), s[fin].max()
        out[fin] = (s[fin] - lo) / (hi - lo) if hi > lo else 1.0
    return pd.Series(out, index=g.index)


def iqm_table(
    table: pd.DataFrame, n_boot: int = 2000, confidence: float = 0.95, seed: int = 0
) -> pd.DataFrame:
    """Per (data source, method): IQM over problems of :func:`normalised_scores` with the
    stratified bootstrap CI; ``problems`` counts the problems the method ran on (IQMs are
    comparable between methods that ran on the same problems)."""
    rows = []
    runs = analysed(table)
    for ds, g in runs.groupby("data_source", sort=True):
        scores = pd.concat([normalised_scores(p) for _, p in g.groupby("problem", sort=True)])
        g = g.assign(score=scores)
        for method, m in g.groupby("method", sort=True):
            by_problem = {p: s["score"].to_numpy(float) for p, s in m.groupby("problem")}
            point, low, high = stratified_bootstrap_iqm(by_problem, n_boot, confidence, seed)
            rows.append(
                {
                    "data_source": ds,
                    "method": method,
                    "problems": len(by_problem),
                    "runs": len(m),
                    "iqm": point,
                    "ci_low": low,
                    "ci_high": high,
                }
            )
    return pd.DataFrame(rows)
