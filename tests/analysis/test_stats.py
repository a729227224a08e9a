"""Known-answer tests of the statistics core (hand calculations, or scipy where stated)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.stats import (
    as_censored,
    expected_running_time,
    fraction_reached,
    holm,
    iqm,
    paired_comparison,
    performance_profile,
    performance_ratios,
    probability_of_improvement,
    stratified_bootstrap_iqm,
    summarize,
)

INF = math.inf

# ----------------------------------------------------------------------------- summarize / iqm


def test_t_interval_of_one_to_five_by_hand() -> None:
    s = summarize([1, 2, 3, 4, 5])
    half = 2.7764451 * math.sqrt(2.5) / math.sqrt(5)  # t_{4, 0.975} * s / sqrt(n)
    assert s.n == 5 and s.n_dropped == 0 and s.method == "t"
    assert s.mean == 3 and s.median == 3 and s.iqm == 3
    assert s.ci_low == pytest.approx(3 - half, abs=1e-6)
    assert s.ci_high == pytest.approx(3 + half, abs=1e-6)


def test_t_interval_other_confidence_by_hand() -> None:
    s = summarize([2.0, 4.0], confidence=0.90)
    half = 6.3137515 * math.sqrt(2.0) / math.sqrt(2)  # t_{1, 0.95} = 6.3138
    assert (s.ci_low, s.ci_high) == pytest.approx((3 - half, 3 + half), abs=1e-6)


def test_iqm_trims_a_quarter_each_side() -> None:
    assert iqm([0, 1, 2, 3, 4, 5, 6, 100]) == pytest.approx(3.5)  # mean of 2, 3, 4, 5
    assert iqm([1000, 2, 3, 4, -50]) == pytest.approx(3.0)  # floor(1.25)=1 cut: mean of 2, 3, 4
    assert math.isnan(iqm([]))
    with pytest.raises(ValueError, match="NaN"):
        iqm([1.0, float("nan")])


def test_summarize_drops_and_counts_non_finite() -> None:
    s = summarize([1.0, float("nan"), 2.0, INF, None, 3.0, -INF])
    assert (s.n, s.n_dropped) == (3, 4)
    assert s.mean == 2.0 and s.median == 2.0
    assert np.isfinite([s.ci_low, s.ci_high]).all()


def test_summarize_zero_and_one_value() -> None:
    empty = summarize([float("nan")])
    assert (empty.n, empty.n_dropped) == (0, 1)
    assert all(math.isnan(v) for v in (empty.mean, empty.ci_low, empty.median, empty.iqm))
    one = summarize([7.0], ci="bca")
    assert one.n == 1 and one.mean == 7.0 and one.median == 7.0 and one.iqm == 7.0
    assert math.isnan(one.ci_low) and math.isnan(one.ci_high)


def test_bootstrap_percentile_matches_scipy_and_is_deterministic() -> None:
    x = np.array([0.3, 1.2, 2.2, 2.9, 3.1, 4.8, 5.5, 9.0])
    s = summarize(x, ci="percentile", n_boot=500, seed=3)
    ref = stats.bootstrap(
        (x,), np.mean, n_resamples=500, method="percentile", rng=np.random.default_rng(3)
    ).confidence_interval
    assert (s.ci_low, s.ci_high) == pytest.approx((ref.low, ref.high))
    assert s.ci_low < s.mean < s.ci_high
    assert summarize(x, ci="percentile", n_boot=500, seed=3) == s
    assert summarize(x, ci="percentile", n_boot=500, seed=4).ci_low != s.ci_low


def test_bootstrap_bca_brackets_mean_and_constant_sample_is_a_point() -> None:
    x = [0.3, 1.2, 2.2, 2.9, 3.1, 4.8, 5.5, 9.0]
    s = summarize(x, ci="bca", n_boot=500)
    assert s.method == "bca" and s.ci_low < s.mean < s.ci_high
    flat = summarize([2.0, 2.0, 2.0], ci="bca")
    assert (flat.ci_low, flat.ci_high) == (2.0, 2.0)
    with pytest.raises(ValueError):
        summarize(x, ci="normal")  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- comparisons

A = [1.0, 2.0, 3.0, 4.0]
B = [2.0, 4.0, 3.0, 6.0]  # paired differences b - a = [1, 2, 0, 2]
SEEDS = [0, 1, 2, 3]


def test_paired_comparison_by_hand() -> None:
    c = paired_comparison(A, B, SEEDS, SEEDS, higher_is_better=True)
    sd = math.sqrt(2.75 / 3)  # sum of squared deviations of d from 1.25 is 2.75
    half = 3.1824463 * sd / 2  # t_{3, 0.975} * sd / sqrt(4)
    assert c.test == "paired-t" and c.paired and c.n_pairs == 4
    assert c.diff == pytest.approx(1.25)
    assert (c.ci_low, c.ci_high) == pytest.approx((1.25 - half, 1.25 + half), abs=1e-6)
    assert c.effect_size == pytest.approx(1.25 / sd) and c.effect_size_kind == "d_z"
    t = 1.25 / (sd / 2)
    assert c.p == pytest.approx(2 * stats.t.sf(t, df=3))
    assert c.p_wilcoxon == pytest.approx(stats.wilcoxon([1, 2, 0, 2]).pvalue)
    # 16 (a_i, b_j) pairs: b better in 1 + 3 + 2 + 4 = 10, tied in 3 (2, 3, 4) -> 11.5 / 16
    assert c.prob_improvement == pytest.approx(11.5 / 16)


def test_lower_is_better_flips_direction_not_p() -> None:
    up = paired_comparison(A, B, SEEDS, SEEDS, higher_is_better=True)
    down = paired_comparison(A, B, SEEDS, SEEDS, higher_is_better=False)
    assert down.diff == pytest.approx(-1.25)
    assert (down.ci_low, down.ci_high) == pytest.approx((-up.ci_high, -up.ci_low))
    assert down.effect_size == pytest.approx(-up.effect_size)
    assert down.p == pytest.approx(up.p) and down.p_wilcoxon == pytest.approx(up.p_wilcoxon)
    assert down.prob_improvement == pytest.approx(1 - up.prob_improvement)


def test_pairing_follows_seeds_not_positions() -> None:
    aligned = paired_comparison(A, B, SEEDS, SEEDS, higher_is_better=True)
    shuffled = paired_comparison(A, B[::-1], SEEDS, SEEDS[::-1], higher_is_better=True)
    assert shuffled == aligned
    by_position = paired_comparison(A, B[::-1], SEEDS, SEEDS, higher_is_better=True)
    assert by_position.diff == aligned.diff and by_position.p != pytest.approx(aligned.p)


def test_only_shared_seeds_are_paired() -> None:
    c = paired_comparison([1, 2, 3], [5, 7, 9], [0, 1, 2], [1, 2, 3], higher_is_better=True)
    assert c.test == "paired-t" and c.n_pairs == 2
    assert c.diff == pytest.approx(3.5)  # seeds 1, 2: (5 - 2 + 7 - 3) / 2


def test_unpaired_fallback_when_seeds_do_not_match() -> None:
    a, b = [1.0, 2.0, 3.0, 4.0], [3.5, 5.0, 6.0]
    for seeds_b in ([10, 11, 12], [0, 11, 12]):  # no shared seed; one shared seed
        c = paired_comparison(a, b, SEEDS, seeds_b, higher_is_better=True)
        assert c.test == "mann-whitney-u" and not c.paired and c.n_pairs == 0
        assert (c.n_a, c.n_b) == (4, 3)
        assert c.diff == pytest.approx(np.mean(b) - np.mean(a))
        assert c.p == pytest.approx(stats.mannwhitneyu(b, a).pvalue)
        assert math.isnan(c.p_wilcoxon) and c.effect_size_kind == "d"
        assert c.prob_improvement == pytest.approx(11 / 12)  # only 3.5 < 4.0 of 12 pairs
        assert c.ci_low < c.diff < c.ci_high
    welch = stats.ttest_ind(b, a, equal_var=False).confidence_interval()
    assert (c.ci_low, c.ci_high) == pytest.approx((welch.low, welch.high))
    assert paired_comparison(a, b, None, None, higher_is_better=True).test == "mann-whitney-u"


def test_comparison_drops_non_finite_pairs_and_counts_them() -> None:
    a = [1.0, 2.0, float("nan"), 4.0]
    b = [2.0, 4.0, 3.0, INF]
    c = paired_comparison(a, b, SEEDS, SEEDS, higher_is_better=True)
    assert c.n_dropped == 2 and c.n_pairs == 2 and c.diff == pytest.approx(1.5)
    none = paired_comparison([float("nan")], [1.0], [0], [0], higher_is_better=True)
    assert none.test == "none" and math.isnan(none.p) and none.n_dropped == 1


def test_all_zero_differences_have_no_p_value() -> None:
    c = paired_comparison(A, A, SEEDS, SEEDS, higher_is_better=True)
    assert c.diff == 0 and math.isnan(c.p) and math.isnan(c.p_wilcoxon)
    assert c.prob_improvement == 0.5


def test_repeated_seed_is_an_error() -> None:
    with pytest.raises(ValueError, match="repeated seeds"):
        paired_comparison([1, 2], [1, 2], [0, 0], [0, 1], higher_is_better=True)


def test_probability_of_improvement_edges() -> None:
    assert probability_of_improvement([1, 2, 3], [4, 5]) == 1.0
    assert probability_of_improvement([1, 2, 3], [1, 2, 3]) == 0.5
    assert probability_of_improvement([1, 2, 3], [4, 5], higher_is_better=False) == 0.0
    assert probability_of_improvement([1, 2], [2, 3]) == pytest.approx(3.5 / 4)


# ----------------------------------------------------------------------------- holm


def test_holm_textbook_example() -> None:
    adj = holm([0.01, 0.04, 0.03, 0.005])
    np.testing.assert_allclose(adj, [0.03, 0.06, 0.06, 0.02])


def test_holm_monotone_capped_and_nan_passthrough() -> None:
    np.testing.assert_allclose(holm([0.5, 0.6]), [1.0, 1.0])
    adj = holm([0.01, float("nan"), 0.04])  # m = 2: NaN does not count
    assert adj[0] == pytest.approx(0.02) and math.isnan(adj[1]) and adj[2] == pytest.approx(0.04)
    assert holm([]).size == 0
    with pytest.raises(ValueError):
        holm([1.5])


# ----------------------------------------------------------------------------- time-to-target


def test_fraction_reached_and_censoring() -> None:
    times = as_censored([100, None, 300, float("nan")])
    np.testing.assert_array_equal(times, [100, INF, 300, INF])
    assert fraction_reached(times) == 0.5
    with pytest.raises(ValueError, match="as_censored"):
        fraction_reached([100, float("nan")])


def test_expected_running_time_by_hand() -> None:
    # two hits (100 + 300 steps) and two misses at the full budget of 1000: 2400 / 2
    assert expected_running_time([100, INF, 300, INF], 1000) == pytest.approx(1200)
    assert expected_running_time([100, 300], 1000) == pytest.approx(200)  # all hit: the mean
    assert expected_running_time([INF, INF], 1000) == INF
    assert expected_running_time([50, INF], [100, 400]) == pytest.approx(450)
    with pytest.raises(ValueError, match="budget"):
        expected_running_time([2000], 1000)


def test_performance_profile_with_miss_and_r_max() -> None:
    table = pd.DataFrame(
        {
            "task": ["t1", "t1", "t2", "t2"],
            "arm": ["A", "B", "A", "B"],
            "time": [100.0, 300.0, INF, 50.0],
        }
    )
    ratios = performance_ratios(table, r_max=4.0)
    assert ratios.loc["t1", "A"] == 1 and ratios.loc["t1", "B"] == 3
    assert ratios.loc["t2", "A"] == INF and ratios.loc["t2", "B"] == 1
    taus = [1.0, 2.0, 3.0, 4.0]
    prof = performance_profile(table, taus, r_max=4.0)
    np.testing.assert_allclose(prof.loc["A"], [0.5, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(prof.loc["B"], [0.5, 0.5, 1.0, 1.0])
    cut = performance_profile(table, taus, r_max=2.5)  # B's ratio 3 on t1 is now a failure
    np.testing.assert_allclose(cut.loc["B"], [0.5, 0.5, 0.5, 0.5])
    assert list(prof.columns) == taus and prof.index.name == "arm"


def test_performance_profile_unsolved_task_and_absent_arm() -> None:
    table = pd.DataFrame(
        {"task": ["t1", "t1", "t2", "t3"], "arm": ["A", "B", "A", "A"],
         "time": [10.0, 10.0, INF, 5.0]}
    )  # fmt: skip
    prof = performance_profile(table, [1.0, 4.0])
    np.testing.assert_allclose(prof.loc["A"], [2 / 3, 2 / 3])  # t2: nobody solved it
    np.testing.assert_allclose(prof.loc["B"], [1 / 3, 1 / 3])  # absent on t2, t3 = missed
    with pytest.raises(ValueError, match="aggregate"):
        performance_profile(pd.concat([table, table]), [1.0])


# ----------------------------------------------------------------------------- across tasks


def test_stratified_bootstrap_iqm_deterministic_and_brackets_point() -> None:
    rng = np.random.default_rng(1)
    scores = {"t1": rng.normal(0.6, 0.1, 5), "t2": rng.normal(0.3, 0.2, 7), "t3": [0.9, 1.0]}
    point, low, high = stratified_bootstrap_iqm(scores, n_boot=1000, seed=5)
    assert point == pytest.approx(iqm(np.concatenate([np.ravel(v) for v in scores.values()])))
    assert low < point < high
    assert stratified_bootstrap_iqm(scores, n_boot=1000, seed=5) == (point, low, high)
    assert stratified_bootstrap_iqm(scores, n_boot=1000, seed=6) != (point, low, high)


def test_stratified_bootstrap_resamples_within_tasks() -> None:
    # Each task is constant, so resampling within tasks always gives 4 zeros and 4 ones:
    # IQM 0.5 exactly. A pooled (unstratified) bootstrap would vary.
    point, low, high = stratified_bootstrap_iqm({"a": [0.0] * 4, "b": [1.0] * 4}, n_boot=300)
    assert (point, low, high) == (0.5, 0.5, 0.5)


def test_stratified_bootstrap_rejects_non_finite_and_empty() -> None:
    with pytest.raises(ValueError, match="non-finite"):
        stratified_bootstrap_iqm({"a": [0.1, float("nan")]})
    with pytest.raises(ValueError, match="no runs"):
        stratified_bootstrap_iqm({"a": [0.1], "b": []})


def test_paired_comparison_can_skip_the_wilcoxon_test() -> None:
    full = paired_comparison(A, B, SEEDS, SEEDS, higher_is_better=True)
    fast = paired_comparison(A, B, SEEDS, SEEDS, higher_is_better=True, wilcoxon=False)
    assert math.isnan(fast.p_wilcoxon) and not math.isnan(full.p_wilcoxon)
    assert (fast.diff, fast.ci_low, fast.p) == (full.diff, full.ci_low, full.p)


# ----------------------------------------------------------------------------- fast paths
# (issue 14, item 8: each gives numpy's or scipy's own value, bit for bit)


def _poi_ci_by_pairs(a, b, higher, confidence, n_boot, seed):  # noqa: ANN001, ANN202
    """rliable's stratified bootstrap of P(b better than a) over every resampled (a, b) pair,
    the na x nb way: the reference the cumulative-count computation must equal exactly."""
    x, y = np.asarray(a, float), np.asarray(b, float)
    sign = 1.0 if higher else -1.0
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, x.size, size=(n_boot, x.size))
    ib = rng.integers(0, y.size, size=(n_boot, y.size))
    xs, ys = sign * x[ia], sign * y[ib]  # replicate x draw
    wins = (ys[:, None, :] > xs[:, :, None]) + 0.5 * (ys[:, None, :] == xs[:, :, None])
    reps = wins.reshape(n_boot, -1).mean(axis=1)
    q = (1 - confidence) / 2
    return np.quantile(reps, [q, 1 - q]).tolist()


@pytest.mark.parametrize("sizes", [(5, 5), (7, 4), (12, 12)])
def test_probability_of_improvement_ci_equals_the_pairwise_bootstrap(sizes) -> None:  # noqa: ANN001
    from analysis.stats import probability_of_improvement_ci

    rng = np.random.default_rng(sum(sizes))
    na, nb = sizes
    cases = [
        (rng.standard_normal(na), rng.standard_normal(nb) + 0.5),
        (np.round(rng.standard_normal(na)), np.round(rng.standard_normal(nb))),  # ties
        (np.r_[rng.standard_normal(na - 1), INF], np.r_[-INF, rng.standard_normal(nb - 1)]),
    ]
    for a, b in cases:
        for higher in (True, False):
            for seed in (0, 3):  # the cached draws depend on the seed
                _, lo, hi = probability_of_improvement_ci(a, b, higher, 0.9, 300, seed)
                assert [lo, hi] == _poi_ci_by_pairs(a, b, higher, 0.9, 300, seed)


def test_iqm_and_t_interval_equal_scipy_bit_for_bit() -> None:
    from analysis.stats import t_interval

    rng = np.random.default_rng(7)
    for n in range(1, 60):
        x = np.round(rng.standard_normal(n) * 10, 1 if n % 2 else 3)
        x[rng.random(n) < 0.1] = rng.choice([INF, -INF, 0.0, -0.0])
        assert iqm(x) == stats.trim_mean(x, proportiontocut=0.25, axis=None)
        y = rng.standard_normal(n + 1)
        half = stats.t.ppf(0.975, df=n) * y.std(ddof=1) / np.sqrt(n + 1)
        assert t_interval(y) == (y.mean() - half, y.mean() + half)
