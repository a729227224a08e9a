"""The population rules on plain numbers: scores, weights, budgets, consensus, AE-Swarm's tell."""

from __future__ import annotations

import math
import random

import pytest

from aebench.swarm.scheduler import (
    AESwarmRule,
    Coordinate,
    Population,
    PopulationRule,
    allocate_budgets,
    consensus_shifts,
    equal_split,
    min_budget,
    normalise_scores,
    prior_positions,
    round_totals,
    softmax_weights,
    weighted_mean,
)

NAN, INF = math.nan, math.inf


def random_metrics(rng: random.Random, m: int) -> list[float]:
    """Metrics with the odd NaN / inf / huge value, as diverged trajectories report."""
    out = []
    for _ in range(m):
        r = rng.random()
        if r < 0.15:
            out.append(NAN)
        elif r < 0.25:
            out.append(rng.choice([INF, -INF]))
        elif r < 0.3:
            out.append(1e30)
        else:
            out.append(rng.lognormvariate(0, 2))
    return out


def test_budgets_always_sum_to_the_total_and_respect_the_floor() -> None:
    rng = random.Random(1234)
    for _ in range(1500):
        m = rng.randint(1, 12)
        total = rng.randint(m, 2000)
        b_min = min_budget(rng.random(), total, m)
        metrics = random_metrics(rng, m)
        alive = [rng.random() > 0.2 for _ in range(m)]
        scores = normalise_scores(
            metrics, rng.choice(["min", "max"]), rng.choice(["rank", "zscore"]), alive
        )
        weights = softmax_weights(scores, rng.choice([0.0, 0.5, 5.0, 50.0, 1e4]))
        budgets = allocate_budgets(weights, total, b_min)
        assert sum(budgets) == total
        assert all(isinstance(b, int) and b >= b_min for b in budgets)
        if any(w > 0 for w in weights):
            for b, w in zip(budgets, weights, strict=True):
                if w == 0:
                    assert b == b_min  # diverged / non-finite: exactly the minimum


def test_budgets_follow_the_weights_up_to_rounding() -> None:
    assert allocate_budgets([0.5, 0.3, 0.2], 100, 10) == [50, 30, 20]
    # floor lifts the small ones; the surplus comes off the one most above its share
    assert allocate_budgets([0.9, 0.05, 0.05], 100, 20) == [60, 20, 20]
    # rounding deficit: 33+33+33 = 99, the step goes to the one furthest below its share
    assert allocate_budgets([1 / 3, 1 / 3, 1 / 3], 100, 1) == [34, 33, 33]
    with pytest.raises(ValueError):
        allocate_budgets([0.5, 0.5], 10, 6)


def test_scores_are_ranks_oriented_by_the_metric_mode() -> None:
    assert normalise_scores([3.0, 1.0, 2.0], "min") == [1.0, 0.0, 0.5]
    assert normalise_scores([3.0, 1.0, 2.0], "max") == [0.0, 1.0, 0.5]
    # ties share their mean rank; NaN, inf and dead trajectories are +inf (worst, weight 0)
    assert normalise_scores([1.0, 1.0, 5.0, NAN], "min") == [0.25, 0.25, 1.0, INF]
    assert normalise_scores([1.0, 2.0, 0.5], "min", alive=[True, True, False]) == [0.0, 1.0, INF]
    assert normalise_scores([INF, 2.0], "min") == [INF, 0.0]
    assert normalise_scores([NAN, NAN], "min") == [INF, INF]


def test_scores_are_scale_free_so_beta_means_the_same_on_every_task() -> None:
    metrics = [0.3, 0.1, 0.2, 0.4]
    for method in ("rank", "zscore"):
        a = normalise_scores(metrics, "min", method)
        b = normalise_scores([1e6 * m + 7 for m in metrics], "min", method)
        assert a == pytest.approx(b)
    z = normalise_scores(metrics, "min", "zscore")
    assert sum(z) == pytest.approx(0.0) and sum(v * v for v in z) / 4 == pytest.approx(1.0)


def test_softmax_weights() -> None:
    w = softmax_weights([0.0, 1.0, INF], beta=2.0)
    assert w[2] == 0.0 and sum(w) == pytest.approx(1.0)
    assert w[0] / w[1] == pytest.approx(math.exp(2.0))
    assert softmax_weights([0.0, 1.0], beta=0.0) == [0.5, 0.5]
    assert softmax_weights([INF, INF], beta=5.0) == [0.5, 0.5]
    # a huge beta underflows the others to 0 but never gives NaN
    assert softmax_weights([0.0, 1.0, 0.5], beta=1e6) == [1.0, 0.0, 0.0]


def test_consensus_moves_each_coefficient_toward_the_weighted_mean_by_exactly_kappa() -> None:
    rng = random.Random(7)
    for _ in range(200):
        m = rng.randint(2, 8)
        coefs = [{"alpha": rng.uniform(-10, 0), "beta1": rng.uniform(0, 7)} for _ in range(m)]
        weights = softmax_weights([rng.random() for _ in range(m)], 5.0)
        kappa = rng.random()
        bar = weighted_mean(coefs, weights)
        for k in ("alpha", "beta1"):
            assert bar[k] == pytest.approx(
                sum(w * c[k] for w, c in zip(weights, coefs, strict=True))
            )
        shifts = consensus_shifts(coefs, weights, kappa)
        for c, s in zip(coefs, shifts, strict=True):
            for k in c:
                moved = c[k] + s[k]
                assert moved == pytest.approx((1 - kappa) * c[k] + kappa * bar[k], abs=1e-12)
                # the distance to the mean shrinks by exactly the factor (1 - kappa)
                assert abs(moved - bar[k]) == pytest.approx(
                    (1 - kappa) * abs(c[k] - bar[k]), abs=1e-12
                )


def test_consensus_leaves_dead_trajectories_out() -> None:
    coefs = [{"alpha": 0.0}, {"alpha": 1.0}, {"alpha": 100.0}]
    shifts = consensus_shifts(coefs, [0.5, 0.5, 0.0], 0.1, alive=[True, True, False])
    assert shifts[0]["alpha"] == pytest.approx(0.05) and shifts[1]["alpha"] == pytest.approx(-0.05)
    assert shifts[2] == {}
    # equal coefficients: no shift at all (no rounding noise)
    assert consensus_shifts([{"a": 0.3}, {"a": 0.3}], [0.7, 0.3], 0.05) == [{"a": 0.0}, {"a": 0.0}]


def test_round_totals_and_equal_splits_are_exact_and_fair() -> None:
    assert round_totals(40, 8) == [5] * 8
    assert round_totals(43, 8) == [6, 6, 6, 5, 5, 5, 5, 5] and sum(round_totals(43, 8)) == 43
    assert equal_split(5, 4) == [2, 1, 1, 1] and equal_split(5, 4, offset=3) == [1, 1, 1, 2]
    rule = PopulationRule().start(Population(4, (5,) * 8, "min", {}, 0))
    spent = [0] * 4
    for _ in range(8):
        b = rule.ask()
        assert sum(b) == 5
        spent = [s + x for s, x in zip(spent, b, strict=True)]
        rule.tell([1.0] * 4, [{}] * 4)
    assert spent == [10, 10, 10, 10]  # the remainder rotates: nobody is favoured
    assert rule.done and rule.ask() == []


def test_prior_positions_centre_then_latin_hypercube() -> None:
    rows = prior_positions(5, ["alpha", "gains"], random.Random(3))
    assert rows[0] == {"alpha": 0.0, "gains": 0.0}
    for dim in ("alpha", "gains"):
        u = sorted(r[dim] for r in rows[1:])
        # one point in each quarter of [-1, 1]
        assert [math.floor((x + 1) / 0.5) for x in u] == [0, 1, 2, 3]
    assert prior_positions(1, ["alpha"], random.Random(0)) == [{"alpha": 0.0}]


def swarm_rule(rounds: int = 3, **kw: float) -> AESwarmRule:
    space = {"alpha": Coordinate(0.0, 1.0)}
    return AESwarmRule(**kw).start(Population(4, (100,) * rounds, "min", space, 0))


def test_aeswarm_tell_reallocates_and_nudges_coefficients_only() -> None:
    rule = swarm_rule(beta=5.0, kappa=0.05, min_share=0.4)
    assert rule.ask() == [25, 25, 25, 25] and rule.b_min() == 10
    coefs = [{"alpha": float(i)} for i in range(4)]
    d = rule.tell([0.1, 0.2, 0.3, 0.4], coefs)
    assert d.copies == [] and d.dither is None  # never copies weights
    assert d.scores == pytest.approx([0, 1 / 3, 2 / 3, 1])
    assert d.weights[0] > d.weights[1] > d.weights[2] > d.weights[3]
    assert sum(d.budgets) == 100 and min(d.budgets) == 10 and d.budgets[0] > 25
    assert rule.ask() == d.budgets
    bar = sum(w * c["alpha"] for w, c in zip(d.weights, coefs, strict=True))
    for c, s in zip(coefs, d.shifts, strict=True):
        assert c["alpha"] + s["alpha"] == pytest.approx(0.95 * c["alpha"] + 0.05 * bar)


def test_a_diverged_trajectory_gets_the_minimum_and_the_population_goes_on() -> None:
    rule = swarm_rule(rounds=2, beta=0.1, min_share=0.4)  # soft: only divergence gives b_min
    coefs = [{"alpha": 0.0}] * 4
    d = rule.tell([0.3, NAN, 0.2, 0.25], coefs, alive=[True, False, True, True])
    assert d.weights[1] == 0.0 and d.budgets[1] == rule.b_min() == 10
    assert sum(d.budgets) == 100 and all(b > 10 for i, b in enumerate(d.budgets) if i != 1)
    assert d.shifts[1] == {}
    d = rule.tell([0.3, 0.01, 0.2, 0.25], coefs, alive=[True, False, True, True])
    assert d.budgets == [] and d.shifts == []  # the last round takes no action
    assert rule.done


def test_dither_picks_the_worst_live_trajectory() -> None:
    rule = swarm_rule(dither=1e-3)
    d = rule.tell([0.1, 0.5, NAN, 0.3], [{"alpha": 0.0}] * 4, alive=[True, True, False, True])
    assert d.dither == 1
