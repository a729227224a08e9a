"""Correlation predictions tested at their threshold (analysis/threshold.py correlation_test).

``kind: correlation`` claims that the oriented correlation of ``x`` and ``y`` over the best runs
exceeds a threshold: supported when the one-sided Fisher-z test of ``H0: rho <= t`` rejects,
refuted when the mirror does, inconclusive otherwise, as for the paired predictions.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.threshold import MIN_POINTS, correlation_test
from tests.analysis.test_verdicts import pred, verdict_of

ALPHA = 0.05
REPS = 2000
SLACK = 2 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)


def corr_pred(threshold: float, direction: str = "decrease", method: str = "spearman"):  # noqa: ANN201
    return pred(
        kind="correlation",
        x="lr:logmean",
        y=["beta1:horizon"],
        direction=direction,
        threshold=threshold,
        method=method,
        a=None,
        b=None,
        metric=None,
        top_fraction=1.0,
        min_n=8,
        runs=None,
    )


def corr_rows(x: np.ndarray, y: np.ndarray) -> list[dict]:
    return [
        {"ae": True, "seed": i, "arm": f"a{i}", "lr:logmean": x[i], "final": 1.0 + i,
         "beta1:horizon": y[i]}
        for i in range(x.size)
    ]  # fmt: skip


def bivariate(rng: np.random.Generator, n: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    x = rng.standard_normal(n)
    return x, rho * x + math.sqrt(1 - rho * rho) * rng.standard_normal(n)


def spearman_rho(rho_s: float) -> float:
    """The normal correlation whose population Spearman correlation is ``rho_s``."""
    return 2 * math.sin(math.pi * rho_s / 6)


def test_a_clear_correlation_beyond_a_nonzero_threshold_is_supported() -> None:
    rng = np.random.default_rng(0)
    x, y = bivariate(rng, 40, -0.95)
    verdict, reason = verdict_of(corr_pred(0.5), corr_rows(x, y))
    assert verdict == "supported" and "spearman" in reason and "H0 effect <= 0.5" in reason


def test_a_weak_correlation_is_refuted_against_a_high_threshold() -> None:
    # the old rule tested "no correlation" only: a real but weak correlation could not refute
    rng = np.random.default_rng(1)
    x, y = bivariate(rng, 60, -0.2)
    verdict, reason = verdict_of(corr_pred(0.8), corr_rows(x, y))
    assert verdict == "refuted" and "H0 effect >= 0.8" in reason


def test_a_correlation_near_its_threshold_is_inconclusive() -> None:
    rng = np.random.default_rng(2)
    x, y = bivariate(rng, 12, -0.5)
    res = correlation_test(x, y, 0.5, ALPHA, "spearman", sign=-1.0)
    assert res.ci_low < 0.5 < res.ci_high
    assert verdict_of(corr_pred(0.5), corr_rows(x, y))[0] == "inconclusive"


def test_the_interval_is_the_inversion_of_the_tests() -> None:
    rng = np.random.default_rng(3)
    x, y = bivariate(rng, 15, 0.4)
    for method in ("spearman", "pearson"):
        res = correlation_test(x, y, 0.0, ALPHA, method)
        assert res.ci_low < res.estimate < res.ci_high and res.ci_level == pytest.approx(0.9)
        at_low = correlation_test(x, y, res.ci_low, ALPHA, method)
        at_high = correlation_test(x, y, res.ci_high, ALPHA, method)
        assert at_low.p_above == pytest.approx(ALPHA, abs=1e-6)
        assert at_high.p_below == pytest.approx(ALPHA, abs=1e-6)


def test_orientation_flips_the_sign_and_swaps_the_sides() -> None:
    rng = np.random.default_rng(4)
    x, y = bivariate(rng, 20, -0.6)
    down = correlation_test(x, y, 0.1, ALPHA, "spearman", sign=-1.0)
    mirrored = correlation_test(x, -y, 0.1, ALPHA, "spearman", sign=1.0)
    assert down.estimate == pytest.approx(mirrored.estimate) and down.estimate > 0
    assert down.p_above == pytest.approx(mirrored.p_above)
    up = correlation_test(x, y, -0.1, ALPHA, "spearman", sign=1.0)  # the same claim, unoriented
    assert up.p_below == pytest.approx(down.p_above)


def test_a_perfect_rank_order_is_degenerate_and_cannot_refute_alone() -> None:
    x = np.arange(10.0)
    res = correlation_test(x, -x, 0.5, ALPHA, "spearman", sign=1.0)  # r = -1, claim r > 0.5
    assert res.degenerate and res.p_below < ALPHA
    verdict, reason = verdict_of(corr_pred(-0.5, direction="increase"), corr_rows(x, -x))
    assert verdict == "inconclusive" and "degenerate" in reason


def test_fewer_than_the_minimum_of_points_are_not_tested() -> None:
    rng = np.random.default_rng(5)
    x, y = bivariate(rng, MIN_POINTS - 1, -0.99)
    p = corr_pred(0.0)
    p = p.__class__(**{**p.__dict__, "min_n": 3})
    verdict, reason = verdict_of(p, corr_rows(x, y))
    assert verdict == "inconclusive" and f"need {MIN_POINTS}" in reason


@pytest.mark.slow
@pytest.mark.parametrize(
    ("method", "threshold"), [("spearman", 0.0), ("spearman", 0.5), ("pearson", 0.5)]
)
def test_truth_at_the_threshold_is_supported_or_refuted_at_most_alpha_at_n_10(
    method: str, threshold: float
) -> None:
    rng = np.random.default_rng(6)
    rho = spearman_rho(threshold) if method == "spearman" else threshold
    supported = refuted = 0
    for _ in range(REPS):
        x, y = bivariate(rng, 10, rho)
        res = correlation_test(x, y, threshold, ALPHA, method)
        supported += res.p_above <= ALPHA
        refuted += res.p_below <= ALPHA and not res.degenerate
    assert supported / REPS <= ALPHA + SLACK
    assert refuted / REPS <= ALPHA + SLACK
