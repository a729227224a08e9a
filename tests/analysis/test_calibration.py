"""Calibration of the verdict tests by simulation with known truth (issue 14, item 7).

Each check repeats a synthetic paired experiment ``REPS`` times through the verdict path
(:func:`analysis.verdicts.compare_values` and :func:`analysis.verdicts.test_outcome`, the
outcome policy of :mod:`analysis.outcomes` for diverged runs): heavy tails (lognormal sigma 1,
t with 3 degrees of freedom), ~30% censoring, an arm that diverges on its worst runs, the truth
exactly at the threshold, n = 5 and n = 10. Rates are Monte Carlo estimates; a bound "at most
5%" is checked as ``rate <= 0.05 + 2 * se`` with ``se = sqrt(0.05 * 0.95 / REPS)`` (the exact
tests' size is at most alpha by construction; the slack only absorbs simulation noise).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from analysis.threshold import threshold_test
from analysis.verdicts import Evidence, compare_values
from analysis.verdicts import test_outcome as decide

REPS = 1000
ALPHA = 0.05
SLACK = 2 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)


def _outcome(a: np.ndarray, b: np.ndarray, direction: str, effect: str, t: float) -> str:
    """One prediction test's outcome, as a single-test family (Holm is the identity)."""
    ev = Evidence("p", "s", "", "test", "m", effect, direction, t)
    keys = np.arange(a.size)
    compare_values(ev, pd.Series(a, keys), pd.Series(b, keys), direction, effect, 5, ALPHA, 0)
    ev.p_holm, ev.p_holm_below = ev.p, ev.p_below
    decide(ev, ALPHA)
    return ev.outcome


def _rates(sample, n: int, direction: str, effect: str, t: float) -> dict[str, float]:  # noqa: ANN001
    rng = np.random.default_rng(n)
    out = [_outcome(*sample(rng, n), direction, effect, t) for _ in range(REPS)]
    return {k: out.count(k) / REPS for k in ("supported", "refuted", "inconclusive")}


def lognormal_at_relative_threshold(rng: np.random.Generator, n: int):  # noqa: ANN201
    """Loss-like: b's geometric mean exactly 20% below a's (threshold 0.2), lognormal sigma 1
    noise per run on top of a shared seed effect."""
    seed = rng.normal(0, 1, n)
    a = np.exp(seed + rng.normal(0, 1, n))
    b = 0.8 * np.exp(seed + rng.normal(0, 1, n))
    return a, b


def t3_at_difference_threshold(rng: np.random.Generator, n: int):  # noqa: ANN201
    """b lower than a by exactly 0.5 (threshold 0.5), t3 noise per run."""
    seed = rng.normal(10, 1, n)
    return seed + rng.standard_t(3, n), seed - 0.5 + rng.standard_t(3, n)


def censored_null(rng: np.random.Generator, n: int):  # noqa: ANN201
    """Time to target, both arms the same law, ~30% of runs censored at the budget (their
    restricted time is the budget): no effect, threshold 0."""
    budget = 100.0
    scale = budget / -math.log(0.3)  # P(T > budget) = 0.3 for an exponential time
    a = np.minimum(rng.exponential(scale, n), budget)
    b = np.minimum(rng.exponential(scale, n), budget)
    return a, b


def diverges_on_worst(rng: np.random.Generator, n: int):  # noqa: ANN201
    """b has a's law but diverges on its worst 30% of runs (worst rank under the policy): the
    old rule dropped those pairs and credited b with only its good runs."""
    seed = rng.normal(10, 1, n)
    a = seed + rng.normal(0, 0.5, n)
    b = seed + rng.normal(0, 0.5, n)
    worst = np.argsort(b)[-max(1, round(0.3 * n)) :]
    b[worst] = np.inf
    return a, b


@pytest.mark.slow
@pytest.mark.parametrize("n", [5, 10])
@pytest.mark.parametrize(
    "case",
    [
        (lognormal_at_relative_threshold, "decrease", "relative", 0.2),
        (t3_at_difference_threshold, "decrease", "difference", 0.5),
        (censored_null, "decrease", "difference", 0.0),
    ],
    ids=["lognormal", "t3", "censored"],
)
def test_truth_at_the_threshold_is_neither_supported_nor_refuted_beyond_alpha(case, n) -> None:  # noqa: ANN001
    sample, direction, effect, t = case
    rates = _rates(sample, n, direction, effect, t)
    assert rates["supported"] <= ALPHA + SLACK, rates
    assert rates["refuted"] <= ALPHA + SLACK, rates


@pytest.mark.slow
@pytest.mark.parametrize("n", [5, 10])
def test_an_arm_diverging_on_its_worst_runs_is_never_declared_better(n: int) -> None:
    rates = _rates(diverges_on_worst, n, "decrease", "difference", 0.0)
    assert rates["supported"] <= ALPHA + SLACK, rates


@pytest.mark.slow
@pytest.mark.parametrize("n", [5, 10])
@pytest.mark.parametrize("noise", ["normal", "t3"])
def test_interval_covers_its_estimand_at_its_stated_level(n: int, noise: str) -> None:
    """The Walsh interval covers the pseudo-median (= the mean of a symmetric difference) at
    its stated exact level (0.9375 at n = 5, ~0.95 at n = 10: the discrete levels nearest
    above 0.9 and 0.95) within 3 points."""
    rng = np.random.default_rng(11 + n)
    alpha = 0.05 if n == 5 else 0.025
    truth, hits, levels = 0.7, 0, set()
    for _ in range(REPS):
        e = rng.normal(0, 1, n) if noise == "normal" else rng.standard_t(3, n)
        res = threshold_test(truth + e, 0.0, alpha)
        hits += res.ci_low <= truth <= res.ci_high
        levels.add(round(res.ci_level, 6))
    (level,) = levels
    assert 0.93 <= level <= 0.97
    assert abs(hits / REPS - level) <= 0.03, (hits / REPS, level)


@pytest.mark.slow
def test_a_one_sd_effect_is_found_with_power_0_8_at_n_10() -> None:
    """A paired effect of one standard deviation of the paired difference (d_z = 1)."""
    rng = np.random.default_rng(5)
    found = 0
    for _ in range(REPS):
        a = rng.normal(10, 1, 10)
        b = a - (1.0 + rng.normal(0, 1, 10))
        found += _outcome(a, b, "decrease", "difference", 0.0) == "supported"
    assert found / REPS >= 0.8


def test_five_constant_pairs_give_the_exact_sign_test_p_not_zero() -> None:
    res = threshold_test(np.full(5, 100.0), 0.0, ALPHA)
    assert res.p_above == pytest.approx(1 / 32) and res.degenerate
    assert res.ci_low == res.ci_high == 100.0
    ev = Evidence("p", "s", "", "test", "m", "difference", "decrease", 100.0)
    keys = np.arange(5)
    a, b = pd.Series(np.full(5, 200.0), keys), pd.Series(np.full(5, 100.0), keys)
    compare_values(ev, a, b, "decrease", "difference", 5, ALPHA, 0)
    ev.p_holm, ev.p_holm_below = ev.p, ev.p_below
    decide(ev, ALPHA)
    assert ev.outcome == "inconclusive"  # exactly at the threshold: a zero-width interval


def test_fewer_than_five_pairs_are_not_tested() -> None:
    ev = Evidence("p", "s", "", "test", "m", "difference", "decrease", 0.0)
    keys = np.arange(4)
    s = pd.Series(np.arange(4.0), keys)
    compare_values(ev, s + 1, s, "decrease", "difference", 2, ALPHA, 0)
    assert "too few pairs" in ev.reason and math.isnan(ev.p)


def test_a_relative_effect_with_zeros_uses_the_linear_form_of_the_claim() -> None:
    """``b <= (1 - t) a`` tested as ``(1 - t) a - b > 0`` when a value is 0 (no log)."""
    ev = Evidence("p", "s", "", "test", "m", "relative", "decrease", 0.2)
    keys = np.arange(8)
    a = pd.Series(np.array([10.0, 12, 9, 11, 10, 13, 8, 10]), keys)
    b = pd.Series(np.array([0.0, 1, 0, 2, 1, 0, 1, 2]), keys)
    compare_values(ev, a, b, "decrease", "relative", 5, ALPHA, 0)
    assert ev.effect_kind.startswith("relative as") and ev.p == pytest.approx(1 / 256)
    assert ev.ci_low > 0


def test_the_exact_null_by_convolution_equals_the_enumeration_beyond_12_pairs() -> None:
    from scipy import stats

    from analysis.threshold import _all_flips, _exact_sides, signed_rank_sides

    rng = np.random.default_rng(7)
    for n in (13, 15):
        d = np.round(rng.normal(0.3, 1, n), 1)  # ties in |d|
        d[d == 0] = 0.05
        r = stats.rankdata(np.abs(d))
        null = _all_flips(n) @ r
        observed = float((np.sign(d) * r).sum())
        above, below = _exact_sides(r, d > 0)
        assert above == pytest.approx((null >= observed - 1e-9).mean(), abs=1e-12)
        assert below == pytest.approx((null >= -observed - 1e-9).mean(), abs=1e-12)
        assert signed_rank_sides(d, 0.0) == (above, below)
    # large n: p-values stay in [0, 1] and the test says it is exact
    res = threshold_test(rng.normal(size=100), 0.0, 0.05)
    assert 0 <= res.p_above <= 1 and 0 <= res.p_below <= 1 and "exact" in res.test
