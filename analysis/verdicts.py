"""Evaluate pre-registered predictions (:mod:`analysis.predictions`) on a runs table.

For each prediction and each stratum (its data source plus the ``strata`` fields), the runs are
split into arm ``a`` (reference) and arm ``b`` (favoured by the theory), paired on ``pair_on``,
and each metric test yields **evidence**: n, the effect oriented so that positive is the
predicted direction, its ``1 - alpha`` confidence interval, a two-sided p-value of "no
difference", and the Holm-adjusted p over every test of every prediction in the report (one
confirmatory family, kept apart from the exploratory default comparisons so that a verdict does
not depend on which other arms happen to sit in the same folder).

Only strata with runs of both arms are evaluated (a stratum with one arm says nothing about
the claim); when no stratum has both, the prediction gets one ``inconclusive`` verdict naming
where each arm was found and the sweep to run.

Runs enter under the outcome policy of :mod:`analysis.outcomes` (failed runs excluded, diverged
runs at the worst rank, never dropped). Outcome of one test, with threshold ``t`` on the
oriented effect (tests: :mod:`analysis.threshold`, paired signed-rank sign-flip permutation
tests, exact for n <= 12):

- ``supported``: ``H0: effect <= t`` rejected at alpha after Holm (``p_holm <= alpha``);
- ``refuted``: the mirror ``H0: effect >= t`` rejected at alpha after Holm
  (``p_holm_below <= alpha``), unless the interval is degenerate (zero width: it never refutes
  alone);
- ``inconclusive`` otherwise, or when the runs are missing or too few (fewer than
  ``max(min_n, 5)`` pairs: no test at all), the pairing is ambiguous, the arms' budgets differ
  (compute not matched), or every run of a censored metric is censored.

The reported interval is the one the two one-sided tests invert (Walsh-average bounds, exact
coverage in ``ci_level``, at least ``1 - 2 alpha``), on the effect's own scale: a ``difference``
is the Hodges-Lehmann pseudo-median of the paired differences; a ``relative`` effect is tested
on the log ratio (``log(a/b) > -log(1 - t)`` for a decrease of more than ``t``), i.e. on the
ratio of geometric means, and reported back as ``1 - exp(-theta)`` (decrease) or
``exp(theta) - 1`` (increase). Positive values are required for a relative effect.

The Holm family is fixed by the predictions: every test the predictions define, in the strata
present (a stratum needs runs of both arms of that prediction), each side (above, below)
adjusted over its own p-values; the exploratory comparisons table is another family
(:func:`analysis.tables.comparisons_table`). Runs of other arms in the folder do not enter it.

A prediction's verdict in a stratum combines its tests (``combine: all``: supported if every
test is, refuted if any is; ``any``: supported if any is, refuted if all are) and then its
guards (non-inferiority of ``b`` against ``a`` by ``margin``, each at alpha without Holm): a
guard whose ``H0: worsening <= margin`` is rejected is ``violated`` and refutes the prediction;
a guard ``holds`` only when ``H0: worsening >= margin`` is rejected; otherwise it is
``undetermined`` and makes a supported verdict inconclusive (so a margin of 0 on counts that
are zero in both arms cannot hold: nothing shows "no worse").

A correlation prediction is tested the same way at its threshold: the one-sided Fisher-z tests
of :func:`analysis.threshold.correlation_test` (``H0: rho_o <= t`` for supported, the mirror for
refuted, in the same Holm family) and the interval they invert; no test on fewer than
:data:`analysis.threshold.MIN_POINTS` points.

Knock-outs (arms selected by ``ablation``): each compare verdict carries both arms' mean AE-10
guard factor and AE-6 budget multiplier (``extra.ae``), and a knock-out whose arms differ in
either by more than :data:`CONFOUND_RATIO` is marked "confounded through AE-6/AE-10"
(:func:`confounding`; docs/analysis.md, section 7). Diverged runs that make an effect infinite
are named in the reason as ``diverged in b k/n, a j/n pairs`` (:func:`effect_text`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.arms import by_preference_off, field_values
from analysis.collect import RunSet
from analysis.metrics import METRICS, metric_spec
from analysis.outcomes import apply_policy
from analysis.predictions import Guard, MetricTest, Prediction
from analysis.stats import holm
from analysis.threshold import (
    MIN_PAIRS,
    MIN_POINTS,
    correlation_test,
    from_log,
    log_threshold,
    paired_differences,
    threshold_test,
)

NAN = math.nan


@dataclass
class Evidence:
    """One test (``role="test"``) or guard (``role="guard"``) of a prediction in one stratum."""

    prediction: str
    data_source: str
    stratum: str
    role: str
    metric: str
    effect_kind: str
    direction: str
    threshold: float
    test: str = "none"
    n_a: int = 0
    n_b: int = 0
    n_pairs: int = 0
    n_dropped: int = 0
    mean_a: float = NAN
    mean_b: float = NAN
    effect: float = NAN
    ci_low: float = NAN
    ci_high: float = NAN
    ci_level: float = NAN
    #: one-sided p of H0 effect <= threshold (supported) and of the mirror H0 effect >=
    #: threshold (refuted), each Holm-adjusted over the pre-registered family
    p: float = NAN
    p_holm: float = NAN
    p_below: float = NAN
    p_holm_below: float = NAN
    degenerate: bool = False
    n_diverged: int = 0
    #: pairs whose run of arm a (b) is at the worst rank (diverged, :mod:`analysis.outcomes`)
    n_diverged_a: int = 0
    n_diverged_b: int = 0
    outcome: str = "inconclusive"
    reason: str = ""
    label_a: str = ""
    label_b: str = ""
    #: each arm's mean over its runs of the AE-10 guard factor and the AE-6 budget multiplier
    #: (``extra.ae``: NaN for an arm without AE) and the knock-out confounding note
    #: (:func:`confounding`)
    guard_a: float = NAN
    guard_b: float = NAN
    budget_a: float = NAN
    budget_b: float = NAN
    confound: str = ""


@dataclass
class Verdict:
    """A prediction's verdict in one stratum (or overall, when no run matched it)."""

    prediction: str
    data_source: str
    stratum: str
    verdict: str
    reason: str
    claim: str
    experiment: str
    sweep: str
    #: no stratum had runs of the prediction's arms: its experiment (or sweep) has to be run
    runs_missing: bool = False
    #: as :class:`Evidence`: both arms' mean guard and budget multipliers, the confounding note
    guard_a: float = NAN
    guard_b: float = NAN
    budget_a: float = NAN
    budget_b: float = NAN
    confound: str = ""


# --------------------------------------------------------------------------- run selection


def _norm(value: Any) -> tuple:
    """A comparable form of a filter or run value: YAML and JSON numbers, bools, lists."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ("none",)
    if isinstance(value, bool | np.bool_):
        return ("bool", bool(value))
    if isinstance(value, int | float | np.integer | np.floating):
        return ("num", float(value))
    if isinstance(value, list | tuple):
        return ("str", json.dumps(list(value)))
    return ("str", str(value))


def _show(value: Any) -> str:
    n = _norm(value)
    if n[0] == "none":
        return "null"
    if n[0] == "num" and float(n[1]).is_integer():
        return str(int(n[1]))
    return str(n[1]).lower() if n[0] == "bool" else str(n[1])


def _map_cached(values: pd.Series, fn) -> list:  # noqa: ANN001
    """``[fn(v) for v in values]`` computed once per distinct value (missing values share one).

    A column of one type is factorised by pandas; an object column is deduplicated by
    ``(type, value)``, so that ``True`` and ``1`` stay apart."""
    if values.dtype != object:
        codes, uniques = pd.factorize(values)
        mapped = [fn(u) for u in uniques.tolist()]
        missing = np.flatnonzero(codes < 0)
        if missing.size:  # every missing value shares the mapping of the first one
            mapped.append(fn(values.iloc[[int(missing[0])]].tolist()[0]))
        return [mapped[c] for c in codes.tolist()]
    cache: dict = {}
    out = []
    for v in values.tolist():
        key = (type(v), v) if v == v else None  # NaN != NaN
        if key not in cache:
            cache[key] = fn(v)
        out.append(cache[key])
    return out


def select(runset: RunSet, table: pd.DataFrame, flt: dict[str, tuple]) -> pd.Series:
    """Boolean mask of the rows of ``table`` matching every field of ``flt``."""
    mask = np.ones(len(table), bool)
    for name, allowed in flt.items():
        ok = {_norm(a) for a in allowed}
        values = field_values(runset, table, name)
        mask &= np.array(_map_cached(values, lambda v, ok=ok: _norm(v) in ok), bool)
    return pd.Series(mask, index=table.index)


def describe(flt: dict[str, tuple]) -> str:
    return " ".join(f"{k}={','.join(_show(v) for v in vals)}" for k, vals in flt.items())


def _describe_runs(pred: Prediction) -> str:
    """The prediction's run filter as the reasons print it (``runs_not`` after ``not``)."""
    text = describe(pred.runs) or "(any)"
    return f"{text} not {describe(pred.runs_not)}" if pred.runs_not else text


def _keys(runset: RunSet, table: pd.DataFrame, fields: tuple[str, ...]) -> pd.Series:
    """One string per row naming its values of ``fields`` (a stratum or a pairing unit)."""
    parts = [
        _map_cached(field_values(runset, table, f), lambda v, f=f: f"{f}={_show(v)}")
        for f in fields
    ]
    if not parts:
        return pd.Series("", index=table.index)
    return pd.Series([" ".join(p) for p in zip(*parts, strict=True)], index=table.index)


# --------------------------------------------------------------------------- effects


def _direction(test_dir: str, metric: str, mode: Any) -> str | None:
    """``increase``/``decrease`` for a test direction given the metric's better side."""
    if test_dir in ("increase", "decrease"):
        return test_dir
    spec = metric_spec(metric)
    higher = spec.higher_is_better(None if mode is None else str(mode)) if spec else None
    if higher is None:
        return None
    return "increase" if (test_dir == "better") == higher else "decrease"


def _paired_values(
    a: pd.Series, b: pd.Series
) -> tuple[np.ndarray, np.ndarray, int]:  # indexed by pairing key
    """Values of the pairing keys both arms have, measured (not NaN) in both, and how many
    runs were left out. A diverged run is not NaN here: it carries the worst rank
    (:mod:`analysis.outcomes`)."""
    shared = a.index.intersection(b.index)
    x, y = a.loc[shared].to_numpy(float), b.loc[shared].to_numpy(float)
    ok = ~np.isnan(x) & ~np.isnan(y)
    return x[ok], y[ok], int(len(a) + len(b) - 2 * ok.sum())


def _location(x: np.ndarray, relative: bool) -> float:
    """An arm's typical value: the geometric mean of a positive metric compared as a ratio,
    the arithmetic mean otherwise (``inf`` when a run is at the worst rank)."""
    if x.size == 0:
        return NAN
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.exp(np.log(x).mean())) if relative else float(x.mean())


def compare_values(
    ev: Evidence,
    a: pd.Series,
    b: pd.Series,
    direction: str,
    effect: str,
    min_n: int,
    alpha: float,
    seed: int,
) -> None:
    """Fill ``ev`` with the paired tests of ``b`` against ``a`` at ``ev.threshold`` (Series of
    values indexed by pairing key; positive effect = ``direction``): the two one-sided
    signed-rank permutation tests of :mod:`analysis.threshold` on the paired differences (the
    log ratio for a relative effect, its threshold on the log scale) and the interval they
    invert, mapped back to the effect's scale. No test on fewer than ``max(min_n, 5)`` pairs;
    no unpaired fallback (a verdict compares runs that share a pairing unit)."""
    xa, xb, dropped = _paired_values(a, b)
    ev.n_pairs, ev.n_dropped = int(xa.size), dropped
    ev.n_diverged_a, ev.n_diverged_b = int(np.isinf(xa).sum()), int(np.isinf(xb).sum())
    ev.n_diverged = ev.n_diverged_a + ev.n_diverged_b
    relative = effect == "relative"
    ev.mean_a, ev.mean_b = _location(xa, relative), _location(xb, relative)
    need = max(min_n, MIN_PAIRS)
    ev.test = "signed-rank sign-flip"
    if xa.size < need:
        ev.reason = f"too few pairs: {xa.size} (need {need}; min_n {min_n})"
        return
    t = ev.threshold
    if relative and ((xa <= 0).any() or (xb <= 0).any()):
        if (xa < 0).any() or (xb < 0).any():
            ev.reason = f"{ev.metric}: a relative effect needs non-negative values"
            return
        # zeros (an instant recovery, no incident): the linear form of the same claim,
        # (1 - t) a - b > 0 for a decrease, b - (1 + t) a > 0 for an increase
        scale = 1.0 - t if direction == "decrease" else 1.0 + t
        lin_a = scale * xa
        d, tie = paired_differences(lin_a, xb, direction, "difference")
        res = threshold_test(d, 0.0, alpha, seed=seed, tie=tie)
        ev.effect_kind = f"relative as {'(1-t)a - b' if direction == 'decrease' else 'b - (1+t)a'}"
        ev.test, ev.ci_level, ev.degenerate = res.test, res.ci_level, res.degenerate
        ev.p, ev.p_below = res.p_above, res.p_below
        ev.effect, ev.ci_low, ev.ci_high = res.estimate, res.ci_low, res.ci_high
        ev.threshold = 0.0
        return
    d, tie = paired_differences(xa, xb, direction, effect)
    if relative:
        t = log_threshold(ev.threshold, direction)
        if math.isnan(t):
            ev.reason = f"relative threshold {ev.threshold:g} cannot be met by positive values"
            return
    res = threshold_test(d, t, alpha, seed=seed, tie=tie)
    ev.test, ev.ci_level, ev.degenerate = res.test, res.ci_level, res.degenerate
    ev.p, ev.p_below = res.p_above, res.p_below
    back = (lambda v: from_log(v, direction)) if relative else (lambda v: v)
    ev.effect, ev.ci_low, ev.ci_high = back(res.estimate), back(res.ci_low), back(res.ci_high)


def _censored_note(metric: str, a: pd.DataFrame, b: pd.DataFrame) -> str | None:
    """Why a censored metric says nothing here (every run of both arms censored), or None."""
    if metric == "time_to_target" and a["ttt"].isna().all() and b["ttt"].isna().all():
        return "no run reached the target within its budget"
    exited = "plateau_exited" in a.columns and (
        a["plateau_exited"].any() or b["plateau_exited"].any()
    )
    if metric == "plateau_exit" and not exited:
        return "no run left the plateau within its budget"
    if metric == "recovery" and "recovery_censored" in a.columns:
        c = np.concatenate(
            [a["recovery_censored"].to_numpy(float), b["recovery_censored"].to_numpy(float)]
        )
        s = np.concatenate([a["switches"].to_numpy(float), b["switches"].to_numpy(float)])
        if np.all(np.isnan(c) | (c >= s)):
            return "no run recovered from any drift switch"
    return None


# --------------------------------------------------------------------------- outcomes


def diverged_text(ev: Evidence) -> str:
    """``diverged in k/n pairs`` per arm (``b 3/10, a 0/10``), "" when no run diverged."""
    if not (ev.n_diverged_a or ev.n_diverged_b):
        return ""
    n = ev.n_pairs
    return f"diverged in b {ev.n_diverged_b}/{n}, a {ev.n_diverged_a}/{n} pairs"


def effect_text(ev: Evidence) -> str:
    """The effect and its interval as text: an effect that is infinite because runs diverged
    (worst rank) reads ``diverged in b k/n, a j/n pairs`` instead of ``-inf``."""

    def v(x: float) -> str:
        return f"{x:.4g}" if math.isfinite(x) else ("-" if math.isnan(x) else f"{x:g}")

    div = diverged_text(ev)
    if div and math.isinf(ev.effect):
        est = f"{div} (estimate at the worst rank)"
    else:
        est = v(ev.effect) + (f" ({div})" if div else "")
    return f"{est} [{v(ev.ci_low)}, {v(ev.ci_high)}]"


def _ci_text(ev: Evidence, what: str) -> str:
    degenerate = " (degenerate: zero width)" if ev.degenerate else ""
    return f"{what}: {ev.effect_kind} {effect_text(ev)}{degenerate}"


def test_outcome(ev: Evidence, alpha: float) -> None:
    """Set ``ev.outcome`` and ``ev.reason``: ``supported`` when the Holm-adjusted p of
    ``H0: effect <= threshold`` is at most alpha; ``refuted`` when that of the mirror
    ``H0: effect >= threshold`` is, unless the interval is degenerate (a zero-width interval
    never refutes alone); ``inconclusive`` otherwise."""
    if ev.reason:
        ev.outcome = "inconclusive"
        return
    t = ev.threshold
    ci = _ci_text(ev, ev.metric)
    if ev.p_holm <= alpha:
        ev.outcome = "supported"
        ev.reason = f"{ci}; H0 effect <= {t:g}: p_holm {ev.p_holm:.3g} <= {alpha:g}"
    elif ev.p_holm_below <= alpha and not ev.degenerate:
        ev.outcome = "refuted"
        ev.reason = f"{ci}; H0 effect >= {t:g}: p_holm {ev.p_holm_below:.3g} <= {alpha:g}"
    elif ev.p_holm_below <= alpha:
        ev.outcome = "inconclusive"
        ev.reason = f"{ci}: below {t:g} only on a degenerate interval"
    else:
        ev.outcome = "inconclusive"
        ev.reason = (
            f"{ci}: neither side of {t:g} shown (p above {ev.p_holm:.3g}, "
            f"below {ev.p_holm_below:.3g}, Holm)"
        )


def guard_outcome(ev: Evidence, alpha: float = 0.05) -> None:
    """``holds`` / ``violated`` / ``undetermined`` for a guard (effect = worsening of b):
    ``holds`` when ``H0: worsening >= margin`` is rejected at alpha (non-inferiority shown by
    the test, never by a zero-width interval alone), ``violated`` when
    ``H0: worsening <= margin`` is, ``undetermined`` otherwise."""
    if ev.reason:
        ev.outcome = "undetermined"
        return
    m = ev.threshold
    ci = _ci_text(ev, f"guard {ev.metric}")
    if ev.p_below <= alpha:
        ev.outcome, ev.reason = "holds", f"{ci} within margin {m:g} (p {ev.p_below:.3g})"
    elif ev.p <= alpha:
        ev.outcome, ev.reason = "violated", f"{ci} beyond margin {m:g} (p {ev.p:.3g})"
    else:
        ev.outcome, ev.reason = "undetermined", f"{ci}: margin {m:g} not shown either way"


def combine(pred: Prediction, tests: list[Evidence], guards: list[Evidence]) -> tuple[str, str]:
    """The verdict and its reason for one stratum (module doc)."""
    outcomes = [t.outcome for t in tests]
    if pred.combine == "all":
        if all(o == "supported" for o in outcomes):
            verdict, why = "supported", list(tests)
        elif any(o == "refuted" for o in outcomes):
            verdict, why = "refuted", [t for t in tests if t.outcome == "refuted"]
        else:
            verdict, why = "inconclusive", [t for t in tests if t.outcome == "inconclusive"]
    else:
        if any(o == "supported" for o in outcomes):
            verdict, why = "supported", [t for t in tests if t.outcome == "supported"]
        elif all(o == "refuted" for o in outcomes):
            verdict, why = "refuted", list(tests)
        else:
            verdict, why = "inconclusive", [t for t in tests if t.outcome == "inconclusive"]
    reasons = [t.reason for t in why]
    violated = [g for g in guards if g.outcome == "violated"]
    unsure = [g for g in guards if g.outcome == "undetermined"]
    if violated:
        verdict, reasons = "refuted", [g.reason for g in violated] + reasons
    elif verdict == "supported" and unsure:
        verdict, reasons = "inconclusive", [g.reason for g in unsure] + reasons
    return verdict, "; ".join(dict.fromkeys(r for r in reasons if r))


# --------------------------------------------------------------------------- kinds


@dataclass
class Context:
    """What every stratum's evaluation needs."""

    pred: Prediction
    runset: RunSet
    n_boot: int
    seed: int

    @property
    def level(self) -> float:
        return 1.0 - self.pred.alpha


def _new(ctx: Context, ds: str, stratum: str, role: str, test: MetricTest | Guard) -> Evidence:
    if isinstance(test, Guard):
        return Evidence(
            ctx.pred.name, ds, stratum, role, test.metric, test.effect, "worse", test.margin
        )
    return Evidence(
        ctx.pred.name, ds, stratum, role, test.metric, test.effect, test.direction, test.threshold
    )


def _labels(runs: pd.DataFrame) -> str:
    return "; ".join(sorted(map(str, runs["label"].dropna().unique())))


def _best_arm(ctx: Context, a: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The rows of the best arm of ``a`` by the first test's metric mean (``select_a: best``)."""
    metric = ctx.pred.tests[0].metric
    spec = METRICS[metric]
    higher = spec.higher_is_better(a["mode"].dropna().iloc[0] if a["mode"].notna().any() else None)
    means = a.groupby("arm")[metric].mean().dropna()
    if means.empty:
        return a, ""
    best = means.idxmax() if higher else means.idxmin()
    chosen = a[a["arm"] == best]
    return chosen, f"a = best of {a['arm'].nunique()} arms by {metric}: {_labels(chosen)}"


def one_run_per_job(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """One row per job: runs with the same arm id and seed are one computation (its arm id
    hashes the whole resolved config), run again in another folder when two experiments share
    a job (e16's and e18's AE runs and e09's and e10's reference stage run the same arm). Kept:
    the first by path. Counting each would pair one seed several times ("ambiguous pairing").
    Returns the rows and a note ("" when no job had several runs)."""
    if runs.empty or not {"arm", "seed", "path"} <= set(runs.columns):
        return runs, ""
    known = runs["arm"].notna() & runs["seed"].notna()
    order = runs[known].sort_values("path", kind="stable")
    dropped = order[order.duplicated(["arm", "seed"])].index
    if dropped.empty:
        return runs, ""
    jobs = runs.loc[dropped, ["arm", "seed"]].drop_duplicates().shape[0]
    note = f"{len(dropped)} reruns of {jobs} jobs (same arm and seed) counted once"
    return runs.drop(index=dropped), note


def _collapse_inert(
    runset: RunSet, runs: pd.DataFrame, pair_on: tuple[str, ...]
) -> tuple[pd.DataFrame, str]:
    """One run per pairing unit among ``ae=off`` runs that are one computation: runs without AE
    whose arms differ only in the ``ae`` node (same ``ctx_off``; e.g. e17's ``ae=off`` at
    ``ae.every=1`` and ``16``, or an ``ae=off`` run given an ablation) are the same vanilla
    optimizer, bit for bit, so counting each would pair one seed several times. Kept: the arm
    with ``ablation=none``, else the first by id (:func:`analysis.arms.by_preference_off`).
    Returns the rows and a note ("" when nothing was collapsed)."""
    if "ctx_off" not in runs.columns or runs.empty:
        return runs, ""
    off = runs["ae"].map(lambda v: v is False) & runs["ctx_off"].notna()
    if off.sum() < 2:
        return runs, ""
    order = by_preference_off(runs[off].assign(_unit=_keys(runset, runs[off], pair_on)))
    dropped = order[order.duplicated(["ctx_off", "_unit"])].index
    if dropped.empty:
        return runs, ""
    arms = runs.loc[dropped, "arm"].nunique()
    note = f"{len(dropped)} runs of {arms} ae=off arms identical but for the inert ae node dropped"
    return runs.drop(index=dropped), note


def _costs_differ(a: pd.DataFrame, b: pd.DataFrame) -> bool:
    """Whether the arms' forward-equivalents per step differ by more than 10% (an ES arm
    against a gradient arm; ``cost_per_step`` from :func:`analysis.runs.cost_per_step`)."""
    if "cost_per_step" not in a.columns or "cost_per_step" not in b.columns:
        return False
    ca = pd.to_numeric(a["cost_per_step"], errors="coerce").dropna()
    cb = pd.to_numeric(b["cost_per_step"], errors="coerce").dropna()
    if ca.empty or cb.empty:
        return False
    lo, hi = min(ca.min(), cb.min()), max(ca.max(), cb.max())
    return bool(hi > 1.1 * lo)


#: two arms whose mean AE-10 guard factor or AE-6 budget multiplier differ by more than this
#: factor (larger over smaller) are confounded through that law (issue 13, item 4)
CONFOUND_RATIO = 2.0
#: knock-outs whose treatment *is* one of the multipliers (the guard is AE-10's Lyapunov law,
#: the multiplier AE-6's budget law): that multiplier differing is the knock-out, not a confound
OWN_MULTIPLIER = {"no_lyapunov": "guard", "no_budget": "budget"}


def _arm_multiplier(runs: pd.DataFrame, column: str) -> float:
    """Mean over an arm's runs of a per-run AE multiplier (NaN when no run has one)."""
    if column not in runs.columns:
        return NAN
    v = pd.to_numeric(runs[column], errors="coerce").to_numpy(float)
    v = v[np.isfinite(v)]
    return float(v.mean()) if v.size else NAN


def _ratio(x: float, y: float) -> float:
    """Larger over smaller of two non-negative multipliers (inf when one is 0, NaN if unknown)."""
    if not (math.isfinite(x) and math.isfinite(y)):
        return NAN
    lo, hi = min(x, y), max(x, y)
    if hi <= 0:
        return 1.0
    return math.inf if lo <= 0 else hi / lo


def confounding(
    guard_a: float, guard_b: float, budget_a: float, budget_b: float, ablations: set[str]
) -> str:
    """The knock-out confounding note, or "" (docs/analysis.md, "Knock-outs"): a knock-out
    comparison is **confounded through AE-6/AE-10** when the arms' mean AE-10 guard factors
    or their mean AE-6 budget multipliers differ by more than :data:`CONFOUND_RATIO` (larger
    over smaller), except for the multiplier the knock-out removes (:data:`OWN_MULTIPLIER`:
    ``no_lyapunov`` fixes the guard at 1, ``no_budget`` the multiplier)."""
    own = {OWN_MULTIPLIER[a] for a in ablations if a in OWN_MULTIPLIER}
    parts = []
    for name, law, x, y in (
        ("guard", "AE-10", guard_a, guard_b),
        ("budget", "AE-6", budget_a, budget_b),
    ):
        r = _ratio(x, y)
        if name not in own and r > CONFOUND_RATIO:
            parts.append(f"{law} {name} {x:.3g} vs {y:.3g} ({r:.3g}x > {CONFOUND_RATIO:g}x)")
    if not parts:
        return ""
    return "confounded through AE-6/AE-10: " + ", ".join(parts)


def _is_knockout(pred: Prediction) -> bool:
    """Whether the prediction compares law knock-outs (its arms differ in ``ablation``)."""
    return "ablation" in pred.a or "ablation" in pred.b


def _stratum_compare(
    ctx: Context, ds: str, stratum: str, a: pd.DataFrame, b: pd.DataFrame
) -> list[Evidence]:
    """Tests and guards of a compare prediction in one stratum."""
    pred = ctx.pred
    out: list[Evidence] = []
    mode = b["mode"].dropna().iloc[0] if b["mode"].notna().any() else None
    budgets = np.unique(np.concatenate([a["budget"].to_numpy(float), b["budget"].to_numpy(float)]))
    budgets = budgets[np.isfinite(budgets)]
    keys_a, keys_b = _keys(ctx.runset, a, pred.pair_on), _keys(ctx.runset, b, pred.pair_on)
    problem = ""
    if len(budgets) > 1:
        problem = f"compute not matched: budgets {sorted(map(float, budgets))}"
    elif _costs_differ(a, b):  # issue 21: ES generation vs gradient step (docs/es.md)
        costs = sorted({round(float(c), 2) for c in pd.concat([a, b])["cost_per_step"].dropna()})
        problem = (
            f"compute not matched: equal steps but {costs} forward-equivalents per step; "
            "compare on forward_equivalents"
        )
    elif keys_a.duplicated().any() or keys_b.duplicated().any():
        side, keys = ("a", keys_a) if keys_a.duplicated().any() else ("b", keys_b)
        dup = keys[keys.duplicated()].iloc[0]
        problem = (
            f"ambiguous pairing: several runs of arm {side} share ({dup}); add the field that "
            "tells them apart to pair_on or strata"
        )
    mult = {
        "guard_a": _arm_multiplier(a, "guard_mean"),
        "guard_b": _arm_multiplier(b, "guard_mean"),
        "budget_a": _arm_multiplier(a, "budget_mult_mean"),
        "budget_b": _arm_multiplier(b, "budget_mult_mean"),
    }
    confound = ""
    if _is_knockout(pred):
        ablations = set(pd.concat([a, b]).get("ablation", pd.Series(dtype=object)).dropna())
        confound = confounding(**mult, ablations={str(x) for x in ablations})
    for role, items in (("test", pred.tests), ("guard", pred.guards)):
        for item in items:
            ev = _new(ctx, ds, stratum, role, item)
            ev.label_a, ev.label_b = _labels(a), _labels(b)
            ev.n_a, ev.n_b = len(a), len(b)
            ev.guard_a, ev.guard_b = mult["guard_a"], mult["guard_b"]
            ev.budget_a, ev.budget_b = mult["budget_a"], mult["budget_b"]
            ev.confound = confound
            goal = item.direction if isinstance(item, MetricTest) else "worse"
            direction = _direction(goal, item.metric, mode)
            out.append(ev)
            if problem:
                ev.reason = problem
                continue
            if direction is None:
                ev.reason = f"{item.metric}: the task's metric mode is unknown"
                continue
            ev.direction = direction
            censored = _censored_note(item.metric, a, b)
            if censored and role == "test":
                ev.reason = censored
                continue
            if item.metric not in a.columns:
                ev.reason = f"{item.metric}: not measured in these records"
                continue
            va = pd.Series(a[item.metric].to_numpy(float), index=keys_a.to_numpy())
            vb = pd.Series(b[item.metric].to_numpy(float), index=keys_b.to_numpy())
            compare_values(ev, va, vb, direction, item.effect, pred.min_n, pred.alpha, ctx.seed)
    return out


def _noted(evidence: list[Evidence], note: str) -> list[Evidence]:
    """``evidence`` with ``note`` (how the stratum's rows were chosen) added to arm a's label."""
    if note:
        for ev in evidence:
            ev.label_a = f"{ev.label_a} ({note})" if ev.label_a else note
    return evidence


def _spread(values: pd.Series, how: str) -> float:
    v = values.to_numpy(float)
    if not (np.isfinite(v).all() and (v > 0).all()):
        return NAN
    logs = np.log(v)
    return float(logs.std(ddof=1)) if how == "sd_log" else float(logs.max() - logs.min())


def _stratum_spread(
    ctx: Context, ds: str, stratum: str, a: pd.DataFrame, b: pd.DataFrame
) -> list[Evidence]:
    """Tests of a spread prediction in one stratum: the spread of each metric over the factor's
    levels shared by both arms, per pairing unit, compared like ``compare``."""
    pred, rs = ctx.pred, ctx.runset
    out: list[Evidence] = []
    lev_a = field_values(rs, a, pred.factor).map(_show)
    lev_b = field_values(rs, b, pred.factor).map(_show)
    levels = sorted(set(lev_a) & set(lev_b))
    keys_a, keys_b = _keys(rs, a, pred.pair_on), _keys(rs, b, pred.pair_on)
    problem = ""
    if len(levels) < 2:
        problem = f"{pred.factor}: fewer than 2 levels run in both arms ({', '.join(levels)})"
    elif (
        pd.DataFrame({"k": keys_a, "l": lev_a}).duplicated().any()
        or pd.DataFrame({"k": keys_b, "l": lev_b}).duplicated().any()
    ):
        problem = (
            f"ambiguous pairing: a unit of {', '.join(pred.pair_on)} has several runs at one "
            f"level of {pred.factor}; add the field that tells them apart to pair_on or strata"
        )
    for test in pred.tests:
        ev = _new(ctx, ds, stratum, "test", test)
        ev.label_a, ev.label_b = _labels(a), _labels(b)
        ev.metric = f"spread({test.metric})"
        out.append(ev)
        if problem:
            ev.reason = problem
            continue
        direction = test.direction if test.direction in ("increase", "decrease") else None
        if direction is None:  # a smaller spread is better: better = decrease
            direction = "decrease" if test.direction == "better" else "increase"
        ev.direction = direction
        series = []
        for side, keys, lev in ((a, keys_a, lev_a), (b, keys_b, lev_b)):
            frame = pd.DataFrame({"k": keys, "l": lev, "v": side[test.metric].to_numpy(float)})
            frame = frame[frame["l"].isin(levels)]
            full = frame.groupby("k")["l"].transform("nunique") == len(levels)
            spread = frame[full].groupby("k")["v"].agg(lambda v: _spread(v, pred.spread))
            series.append(spread)
        compare_values(
            ev, series[0], series[1], direction, test.effect, pred.min_n, pred.alpha, ctx.seed
        )
    return out


def _coalesce(runset: RunSet, runs: pd.DataFrame, names: tuple[str, ...]) -> pd.Series:
    """The first of ``names`` with a finite value, per row."""
    out = pd.Series(np.nan, index=runs.index)
    for name in names:
        if name in runs.columns:
            out = out.fillna(pd.to_numeric(runs[name], errors="coerce"))
    return out


def _stratum_correlation(ctx: Context, ds: str, stratum: str, runs: pd.DataFrame) -> list[Evidence]:
    """The correlation test of one stratum over its best ``top_fraction`` runs."""
    pred = ctx.pred
    test = pred.tests[0]
    ev = _new(ctx, ds, stratum, "test", test)
    ev.metric = f"corr({'|'.join(pred.x)}, {'|'.join(pred.y)})"
    ev.effect_kind = pred.method
    ev.label_b = _labels(runs)
    x, y = _coalesce(ctx.runset, runs, pred.x), _coalesce(ctx.runset, runs, pred.y)
    rank = pd.to_numeric(runs[pred.rank_by], errors="coerce")
    mode = runs["mode"].dropna().iloc[0] if runs["mode"].notna().any() else None
    higher = METRICS[pred.rank_by].higher_is_better(mode)
    ok = (x.notna() & y.notna() & rank.notna()).to_numpy()
    n_top = math.ceil(pred.top_fraction * int(ok.sum()))
    ev.n_b = n_top
    ev.n_dropped = int((~ok).sum())
    if n_top < max(pred.min_n, MIN_POINTS):
        ev.reason = (
            f"too few runs: the best {pred.top_fraction:g} of {int(ok.sum())} usable runs is "
            f"{n_top} (need {max(pred.min_n, MIN_POINTS)}; min_n {pred.min_n})"
        )
        return [ev]
    order = np.argsort(-rank[ok].to_numpy() if higher else rank[ok].to_numpy(), kind="stable")
    xs, ys = x[ok].to_numpy()[order[:n_top]], y[ok].to_numpy()[order[:n_top]]
    if np.ptp(xs) == 0 or np.ptp(ys) == 0:
        ev.reason = "no variation in x or y among the best runs"
        return [ev]
    sign = -1.0 if test.direction == "decrease" else 1.0
    res = correlation_test(xs, ys, test.threshold, pred.alpha, pred.method, sign)
    ev.test, ev.n_pairs, ev.ci_level, ev.degenerate = res.test, n_top, res.ci_level, res.degenerate
    ev.effect, ev.ci_low, ev.ci_high = res.estimate, res.ci_low, res.ci_high
    ev.p, ev.p_below = res.p_above, res.p_below
    ev.mean_a, ev.mean_b = float(np.mean(xs)), float(np.mean(ys))
    return [ev]


# --------------------------------------------------------------------------- driver


def _strata(ctx: Context, runs: pd.DataFrame) -> list[tuple[str, str, pd.Index]]:
    """``(data source, stratum text, row index)`` per stratum of ``runs``, sorted."""
    if runs.empty:
        return []
    keys = _keys(ctx.runset, runs, ctx.pred.strata)
    out = []
    for (ds, key), g in runs.groupby([runs["data_source"].astype(str), keys], sort=True):
        out.append((ds, key, g.index))
    return out


def _narrow(table: pd.DataFrame, pred: Prediction) -> pd.DataFrame:
    """Only the columns the prediction reads (the runs table is wide: copies of strata of a
    10,000-run table would otherwise dominate the time)."""
    fields = [*pred.runs, *pred.runs_not, *pred.a, *pred.a_not, *pred.b]
    fields += [*pred.strata, *pred.pair_on]
    fields.append(pred.rank_by)
    fields += [t.metric for t in pred.tests] + [g.metric for g in pred.guards]
    fields += [*pred.x, *pred.y, "arm", "label", "data_source", "mode", "budget", "ttt"]
    fields += ["recovery_censored", "switches", "plateau_exited", "status", "drifts", "steps"]
    fields += ["ablation", "guard_mean", "budget_mult_mean", "ae", "ctx_off", "seed", "path"]
    keep = [c for c in dict.fromkeys(fields) if c in table.columns]
    return table[keep]


def _run_hint(pred: Prediction) -> str:
    """The end of every reason that says runs are missing (and which sweep makes them)."""
    return f"run: {pred.sweep}"


def evaluate_prediction(
    pred: Prediction, runset: RunSet, n_boot: int = 2000, seed: int = 0
) -> tuple[list[Evidence], list[str]]:
    """Evidence for one prediction (Holm and outcomes not yet applied) and, when it could not
    be evaluated anywhere, the reason (with the sweep to run)."""
    ctx = Context(pred, runset, n_boot, seed)
    table = apply_policy(_narrow(runset.table, pred))
    matching = select(runset, table, pred.runs)
    if pred.runs_not:
        matching &= ~select(runset, table, pred.runs_not)
    base = table[matching]
    run_hint = _run_hint(pred)
    if base.empty:
        absent = [f for f in pred.runs if field_values(runset, table, f).isna().all()]
        what = f"no run has {', '.join(absent)}" if absent and not table.empty else "no runs"
        return [], [f"{what} matching {_describe_runs(pred)}; {run_hint}"]
    if pred.kind == "correlation":
        evidence = []
        for ds, stratum, idx in _strata(ctx, base):
            rows, rerun = one_run_per_job(base.loc[idx])
            evidence += _noted(_stratum_correlation(ctx, ds, stratum, rows), rerun)
        return evidence, []
    in_a = select(runset, base, pred.a)
    if pred.a_not:  # a named arm's exclusions (best_fixed_schedule: self-tuning optimizers)
        in_a &= ~select(runset, base, pred.a_not)
    in_b = select(runset, base, pred.b)
    a_text = f"{pred.a_named}: {describe(pred.a)}" if pred.a_named else describe(pred.a)
    if (in_a & in_b).any():
        return [], [
            f"arms a ({a_text}) and b ({describe(pred.b)}) overlap: fix the prediction's filters"
        ]
    if not in_a.any() or not in_b.any():
        side, text = ("a", a_text) if not in_a.any() else ("b", describe(pred.b))
        return [], [
            f"no runs of arm {side} ({text}) among {len(base)} matching "
            f"{_describe_runs(pred)}; {run_hint}"
        ]
    evidence: list[Evidence] = []
    only: dict[str, list[str]] = {"a": [], "b": []}
    for ds, stratum, idx in _strata(ctx, base[in_a | in_b]):
        rows, rerun = one_run_per_job(base.loc[idx])
        a, b = rows[in_a.loc[rows.index]], rows[in_b.loc[rows.index]]
        if a.empty or b.empty:
            only["b" if a.empty else "a"].append(f"{ds} {stratum}")
            continue
        best = ""
        if pred.select_a == "best":
            a, best = _best_arm(ctx, a)
        a, inert_a = _collapse_inert(runset, a, pred.pair_on)
        b, inert_b = _collapse_inert(runset, b, pred.pair_on)
        note = "; ".join(n for n in (best, rerun, inert_a, inert_b) if n)
        stratum_of = _stratum_spread if pred.kind == "spread" else _stratum_compare
        evidence += _noted(stratum_of(ctx, ds, stratum, a, b), note)
    if not evidence:
        where = "; ".join(f"only {k} in {', '.join(v)}" for k, v in only.items() if v)
        return [], [f"no stratum has runs of both arms ({where}); {run_hint}"]
    return evidence, []


def evaluate(
    predictions: list[Prediction], runset: RunSet, n_boot: int = 2000, seed: int = 0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(verdicts, evidence)`` for every prediction: Holm over every test's p in the report,
    then outcomes, then one verdict per prediction and stratum."""
    per_pred: list[tuple[Prediction, list[Evidence], list[str]]] = []
    for pred in predictions:
        evidence, missing = evaluate_prediction(pred, runset, n_boot, seed)
        per_pred.append((pred, evidence, missing))
    tests = [e for _, ev, _ in per_pred for e in ev if e.role == "test"]
    adjusted = holm(np.array([e.p if not e.reason else NAN for e in tests], float))
    below = holm(np.array([e.p_below if not e.reason else NAN for e in tests], float))
    for e, p, q in zip(tests, adjusted, below, strict=True):
        e.p_holm, e.p_holm_below = float(p), float(q)
    verdicts: list[Verdict] = []
    evidence_rows: list[dict] = []
    for pred, evidence, missing in per_pred:
        common = {"claim": pred.claim, "experiment": pred.experiment, "sweep": pred.sweep}
        for reason in missing:
            lacking = reason.endswith(_run_hint(pred))
            verdicts.append(
                Verdict(pred.name, "", "", "inconclusive", reason, **common, runs_missing=lacking)
            )
        groups: dict[tuple[str, str], list[Evidence]] = {}
        for e in evidence:
            if e.role == "test":
                test_outcome(e, pred.alpha)
            else:
                guard_outcome(e, pred.alpha)
            groups.setdefault((e.data_source, e.stratum), []).append(e)
            evidence_rows.append(asdict(e))
        for (ds, stratum), evs in groups.items():
            verdict, reason = combine(
                pred, [e for e in evs if e.role == "test"], [e for e in evs if e.role == "guard"]
            )
            first = evs[0]
            mult = {k: getattr(first, k) for k in ("guard_a", "guard_b", "budget_a", "budget_b")}
            if first.confound:
                reason = f"{reason}; {first.confound}" if reason else first.confound
            verdicts.append(
                Verdict(
                    pred.name,
                    ds,
                    stratum,
                    verdict,
                    reason,
                    **common,
                    **mult,
                    confound=first.confound,
                )
            )
    v = pd.DataFrame([asdict(x) for x in verdicts], columns=list(Verdict.__dataclass_fields__))
    e = pd.DataFrame(evidence_rows, columns=list(Evidence.__dataclass_fields__))
    return v, e
