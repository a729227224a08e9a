"""The recovery metric (analysis/recovery.py) on synthetic curves with known recovery times."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.recovery import noise_std, recovery, running_median, settling

PHASE = 1000  # steps per phase


def drift_curve(
    shape: str, times: list[int], levels: list[float], noise: float, seed: int, every: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A loss over ``len(times) + 1`` phases of PHASE steps: phase 0 flat at levels[0]; at each
    switch k the loss jumps up by 1 (plus the new phase's level) and is back on the new level
    after ``times[k-1]`` steps: ``step`` stays up then drops, ``linear`` ramps down to it,
    ``exp`` decays with the time constant that puts it inside the 10% band at that time."""
    steps = np.arange(0, PHASE * (len(times) + 1), every, dtype=float)
    phase = steps // PHASE
    x = np.empty_like(steps)
    for i, st in enumerate(steps):
        k = int(phase[i])
        t = st - k * PHASE
        base = levels[k]
        if k == 0:
            x[i] = base
            continue
        r = times[k - 1]
        if shape == "step":
            excess = 1.0 if t < r else 0.0
        elif shape == "linear":  # inside the 10% band at 0.9 r: rescale so it is at r
            excess = max(0.0, 1.0 - 0.9 * t / r)
        else:
            excess = math.exp(-t * math.log(10.0) / r) * 1.05  # 10% of the depth 1.05 at t = r
        x[i] = base + excess
    rng = np.random.default_rng(seed)
    return steps, x + noise * rng.standard_normal(x.size), phase


# Logged every 5 steps, a slow exponential's crossing of the band is read to about
# sigma_m / |slope| (10-15% at 300 steps with this noise: module doc), so that case runs at every=1
@pytest.mark.parametrize(
    ("shape", "every"), [("step", 1), ("linear", 1), ("exp", 1), ("step", 5), ("linear", 5)]
)
@pytest.mark.parametrize("seed", [3, 4])
def test_known_recovery_times_are_read_back_within_10_percent(
    shape: str, every: int, seed: int
) -> None:
    true = [50, 100, 300]
    steps, x, phase = drift_curve(
        shape, true, [1.0, 2.0, 0.5, 1.5], noise=0.03, seed=seed, every=every
    )
    rec = recovery(steps, x, phase)
    assert rec.switches == 3 and rec.censored == 0
    # within 10%; logged every 5 steps, a 50-step recovery is 10 rows: allow 2 rows there
    for got, want in zip(rec.times, true, strict=True):
        assert got == pytest.approx(want, rel=0.10, abs=2 * every - 2), (shape, every, rec.times)
    assert rec.levels == pytest.approx([2.0, 0.5, 1.5], abs=0.02)


def test_recovery_is_robust_to_noise_and_outliers() -> None:
    steps, x, phase = drift_curve("step", [50, 100, 300], [1.0] * 4, noise=0.2, seed=0)
    x[phase == 1][600:605] += 5.0  # a burst of outliers late in a phase changes nothing
    spikes = np.random.default_rng(1).choice(x.size, 20, replace=False)
    x[spikes] += 10.0
    rec = recovery(steps, x, phase)
    assert rec.censored == 0
    assert rec.times == pytest.approx([50, 100, 300], rel=0.10)


def test_recovery_does_not_depend_on_the_phase_order() -> None:
    """The old reference (the previous phase's level) scored which phase follows which; the own
    asymptote reads the same recovery whichever order the levels come in."""
    a = recovery(*drift_curve("step", [80, 80, 80], [1.0, 3.0, 0.2, 1.0], 0.05, seed=2))
    b = recovery(*drift_curve("step", [80, 80, 80], [1.0, 0.2, 3.0, 1.0], 0.05, seed=2))
    assert a.censored == b.censored == 0
    assert a.times == pytest.approx([80, 80, 80], rel=0.1)
    assert b.times == pytest.approx(a.times, rel=0.1)


def test_an_undisturbed_run_reads_zero_and_a_collapse_shows_in_the_level() -> None:
    steps = np.arange(0, 400, dtype=float)
    phase = steps // 100
    rng = np.random.default_rng(0)
    calm = 500.0 + rng.normal(0, 5, steps.size)
    flat = recovery(steps, calm, phase)
    assert flat.censored == 0 and flat.times == (0.0, 0.0, 0.0)
    collapsed = calm.copy()
    collapsed[100:] = 37.0 + rng.normal(0, 5, 300)  # collapses at the first switch, stays down
    rec = recovery(steps, collapsed, phase)
    assert rec.times[0] <= 5 and rec.levels[0] == pytest.approx(37, abs=3)
    assert flat.mean_level == pytest.approx(500, abs=3)


def test_a_phase_still_moving_at_its_end_is_censored() -> None:
    steps = np.arange(0, 200, dtype=float)
    phase = steps // 100
    x = np.ones(200)
    x[100:] = np.linspace(3.0, 1.0, 100)  # still falling at the end of the phase
    rec = recovery(steps, x, phase)
    assert rec.censored == 1 and math.isinf(rec.times[0])
    assert rec.mean_restricted == pytest.approx(100.0)  # restricted at the phase's length


def test_a_run_stopped_inside_a_phase_is_censored_at_the_step_it_stopped() -> None:
    steps = np.arange(0, 230, dtype=float)  # phases of 100 steps; stopped (diverged) at 229
    phase = steps // 100
    x = np.ones(230)
    x[100:120] = 3.0
    x[200:] = 1.0  # settled in its 30 rows, but too short to have an asymptote of its own
    rec = recovery(steps, x, phase)
    assert rec.times[0] == pytest.approx(20, abs=2)
    assert math.isinf(rec.times[1]) and rec.censored == 1
    assert rec.mean_restricted == pytest.approx((rec.times[0] + 30) / 2)


def test_a_reference_level_replaces_the_own_asymptote() -> None:
    steps, x, phase = drift_curve("step", [100], [1.0, 2.0], 0.02, seed=0)
    own = recovery(steps, x, phase)
    assert own.times[0] == pytest.approx(100, rel=0.1)
    # the same phase in a stationary control run sits at 1.5: this run never gets there
    ref = recovery(steps, x, phase, references=[1.5])
    assert ref.censored == 1
    assert recovery(steps, x, phase, references=[2.0]).times[0] == pytest.approx(100, rel=0.1)


def test_helpers() -> None:
    x = np.array([0.0, 10.0, 0.0, 0.0, 5.0])
    assert running_median(x, 1).tolist() == [0.0, 0.0, 0.0, 0.0, 5.0]
    rng = np.random.default_rng(0)
    trend_and_noise = np.linspace(0, 50, 5000) + rng.normal(0, 2.0, 5000)
    assert noise_std(trend_and_noise) == pytest.approx(2.0, rel=0.05)
    assert settling(np.arange(5.0), np.ones(5)) == (0.0, 1.0)


def test_the_level_score_is_scale_free_and_oriented() -> None:
    steps = np.arange(0, 300, dtype=float)
    phase = steps // 100
    ret = np.full(300, 400.0)
    ret[100:] = 40.0
    up = recovery(steps, ret, phase, higher_is_better=True)
    assert up.level_score == pytest.approx((math.log(40) + math.log(40)) / 2)
    assert recovery(steps, ret * 10, phase, higher_is_better=True).level_score == pytest.approx(
        up.level_score + math.log(10)
    )
    assert recovery(steps, ret, phase).level_score == pytest.approx(-up.level_score)
    assert math.isnan(recovery(steps, ret - 100, phase).level_score)  # a non-positive level


def test_median_and_the_running_median_of_three_equal_numpy_bit_for_bit() -> None:
    """The fast paths (issue 14, item 8) give numpy's own values, the sign of zero included."""
    from analysis.recovery import median

    rng = np.random.default_rng(0)
    for n in range(1, 40):
        x = np.round(rng.standard_normal(n), 1)
        x[rng.random(n) < 0.3] = rng.choice([0.0, -0.0, np.inf, -np.inf])
        zeros = np.where(rng.random(n) < 0.5, -0.0, 0.0)
        for v in (x, zeros, np.where(rng.random(n) < 0.1, np.nan, x)):
            expected, got = np.median(v), median(v)
            if math.isnan(expected):
                assert math.isnan(got)
            else:
                assert got == expected and math.copysign(1, got) == math.copysign(1, expected)
        if n >= 3:
            expected = np.median(np.lib.stride_tricks.sliding_window_view(x, 3), axis=1)
            got = running_median(x, 1)[1:-1]
            assert np.array_equal(got, expected) and np.array_equal(
                np.signbit(got), np.signbit(expected)
            )
