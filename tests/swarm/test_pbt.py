"""PBT and independent runs as pure rules (baselines/pbt.py): truncation, exploit, explore."""

from __future__ import annotations

import math

import pytest

from aebench.swarm.scheduler import Coordinate, Population
from baselines.pbt import IndependentRule, PBTRule, truncation

SPACE = {
    "alpha": Coordinate(centre=math.log(1e-3), spread=math.log(3.0)),
    "beta1": Coordinate(centre=math.log(10.0), spread=0.0, lo=0.0, hi=-math.log(1 - 0.999)),
}


def pbt(size: int = 4, rounds: int = 3, seed: int = 0, **kw) -> PBTRule:  # noqa: ANN003
    return PBTRule(**kw).start(Population(size, (40,) * rounds, "min", SPACE, seed))


def coefs(size: int) -> list[dict[str, float]]:
    return [
        {"alpha": math.log(1e-3) + 0.1 * i, "beta1": math.log(10.0) + 0.01 * i} for i in range(size)
    ]


def test_truncation_quantiles_follow_ray() -> None:
    scores = [0.0, 1 / 3, 2 / 3, 1.0]
    assert truncation(scores, [True] * 4, 0.25) == ([3], [0])
    # ceil(8 * 0.25) = 2 each side; a quantile above M/2 is capped at floor(M/2)
    assert truncation([i / 7 for i in range(8)], [True] * 8, 0.25) == ([6, 7], [0, 1])
    assert truncation(scores, [True] * 4, 0.5) == ([2, 3], [0, 1])
    assert truncation([0.0], [True], 0.25) == ([], [])
    # a dead trajectory is never a donor
    assert truncation([0.0, 0.5, 1.0, 0.2], [False, True, True, True], 0.25) == ([0], [3])


def test_exploit_copies_from_the_top_and_explores_around_the_donor() -> None:
    rule = pbt(resample=0.0, factors=[1.2])
    c = coefs(4)
    d = rule.tell([0.4, 0.1, 0.3, 0.2], c)
    assert d.copies == [(0, 1)]  # the worst takes the best's weights and state
    assert sum(d.budgets) == 40 and max(d.budgets) - min(d.budgets) <= 1
    # explore multiplies every coefficient by 1.2 (beta1: its horizon 1/(1-beta))
    moved = {k: c[1][k] + d.shifts[0][k] for k in c[0]}
    assert moved["alpha"] == pytest.approx(c[1]["alpha"] + math.log(1.2))
    assert moved["beta1"] == pytest.approx(c[1]["beta1"] + math.log(1.2))
    assert d.shifts[1] == d.shifts[2] == d.shifts[3] == {}


def test_without_copying_the_recipient_adopts_only_the_coefficients() -> None:
    rule = pbt(resample=0.0, factors=[0.8], copy_weights=False)
    c = coefs(4)
    d = rule.tell([0.4, 0.1, 0.3, 0.2], c)
    assert d.copies == []
    moved = {k: c[0][k] + d.shifts[0][k] for k in c[0]}  # relative to its own coefficients
    assert moved["alpha"] == pytest.approx(c[1]["alpha"] + math.log(0.8))


def test_resample_draws_from_the_prior_box_and_clamps_to_the_feasible_one() -> None:
    rule = pbt(resample=1.0, size=8, quantile=0.5, rounds=40)
    for _ in range(39):
        c = coefs(8)
        d = rule.tell([float(i) for i in range(8)], c)
        for r, dz in enumerate(d.shifts):
            if not dz:
                continue
            donor = next(dn for rc, dn in d.copies if rc == r)
            a = c[donor]["alpha"] + dz["alpha"]
            lo, hi = SPACE["alpha"].centre - math.log(3), SPACE["alpha"].centre + math.log(3)
            assert lo <= a <= hi
            assert c[donor]["beta1"] + dz["beta1"] == pytest.approx(math.log(10.0))
            assert d.resampled[r] == ["alpha", "beta1"]


def test_pbt_is_deterministic_per_seed_and_revives_diverged_members() -> None:
    results = []
    for seed in (5, 5, 6):
        rule = pbt(seed=seed, size=8, rounds=30)
        results.append(
            [rule.tell([float(i) for i in range(8)], coefs(8)).copies for _ in range(29)]
        )
    assert results[0] == results[1] and results[0] != results[2]
    rule = pbt()
    d = rule.tell([math.nan, 0.1, 0.3, 0.2], coefs(4), alive=[False, True, True, True])
    assert d.copies == [(0, 1)]
    rule = pbt(copy_weights=False)
    d = rule.tell([math.nan, 0.1, 0.3, 0.2], coefs(4), alive=[False, True, True, True])
    assert d.copies == [] and d.shifts[0] == {}  # no weights to gain: stays retired


def test_independent_rule_only_splits_compute_equally() -> None:
    rule = IndependentRule().start(Population(3, (10, 10), "max", SPACE, 0))
    assert rule.ask() == [4, 3, 3]
    d = rule.tell([0.1, 0.9, 0.5], coefs(3))
    assert d.scores == [1.0, 0.0, 0.5]  # mode max: the highest metric is best
    assert d.copies == [] and d.shifts == [] and d.budgets == [3, 4, 3]


def test_pbt_rejects_bad_settings() -> None:
    for kw in ({"quantile": 0.7}, {"factors": []}, {"factors": [1.2, -1.0]}, {"resample": 2}):
        with pytest.raises(ValueError):
            PBTRule(**kw)
