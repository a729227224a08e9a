"""Per-run metrics on curves with known answers (analysis/metrics.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis.curves import Curves
from analysis.metrics import (
    coefficient_summaries,
    coefficient_summary,
    curve_metrics,
    gamma_stats,
    metric_spec,
    moving_average,
    oscillation,
    record_metrics,
    recovery,
)


def test_moving_average_is_centred_and_clipped_at_the_ends() -> None:
    x = np.arange(6, dtype=float)
    assert moving_average(x, 1).tolist() == pytest.approx([0.5, 1, 2, 3, 4, 4.5])


def test_oscillation_is_the_relative_amplitude_around_the_trend() -> None:
    steps = np.arange(2000)
    trend = np.exp(-steps / 500)  # a smooth decay over two decades
    assert oscillation(trend) < 1e-3
    amp = 0.2  # the loss swings by ~20% with period 4 steps around its trend
    wobbly = trend * np.exp(amp * np.sin(np.pi * steps / 2 + 0.3))
    assert oscillation(wobbly) == pytest.approx(amp / math.sqrt(2), rel=0.05)
    assert oscillation(wobbly * 1000.0) == pytest.approx(oscillation(wobbly))  # scale-free
    assert math.isnan(oscillation(np.ones(5)))  # too short for a trend window


def test_recovery_counts_steps_to_the_phase_own_level() -> None:
    steps = np.arange(300, dtype=float)
    phase = (steps // 100).astype(float)
    loss = np.ones(300)
    loss[100:120] = 3.0  # switch 1: settled at step 120, i.e. after 20 steps
    loss[200:] = 3.0  # switch 2: a new level at once (nothing to recover: analysis/recovery.py)
    rec = recovery(steps, loss, phase)
    assert rec.switches == 2 and rec.censored == 0
    assert rec.times == (20, 0)
    assert rec.levels == (1.0, 3.0)
    assert rec.mean_restricted == pytest.approx(10)


def test_recovery_without_a_switch_is_empty() -> None:
    rec = recovery(np.arange(10.0), np.ones(10), np.zeros(10))
    assert rec.switches == 0 and math.isnan(rec.mean_restricted)


def test_time_to_target_is_censored_for_misses_and_divergence() -> None:
    hit = record_metrics(
        {
            "status": "completed",
            "reached": True,
            "target_step": 30,
            "budget": 100,
            "nonfinite": 0,
            "divergence": 0,
            "lr_cliffs": 2,
        }
    )
    assert hit == {"ttt": 30, "time_to_target": 30, "incidents": 2}
    miss = record_metrics(
        {"status": "completed", "reached": False, "target_step": None, "budget": 100}
    )
    assert math.isnan(miss["ttt"]) and miss["time_to_target"] == 100
    broke = record_metrics(
        {
            "status": "diverged",
            "reached": True,
            "target_step": 10,
            "budget": 100,
            "nonfinite": 1,
            "divergence": 1,
            "lr_cliffs": 0,
        }
    )
    assert math.isnan(broke["ttt"]) and broke["time_to_target"] == 100
    assert broke["incidents"] == 2


def test_gamma_and_coefficient_summaries() -> None:
    steps = np.arange(5.0)
    var, med = gamma_stats(steps, np.array([9.0, 1.0, np.e, np.e**2, np.nan]))
    assert var == pytest.approx(1.0) and med == pytest.approx(np.e)  # log: 0, 1, 2 (step 0 out)
    s = coefficient_summary("beta1", np.array([0.9, 0.99, np.nan]))
    assert (s["beta1:start"], s["beta1:end"], s["beta1:max"]) == (0.9, 0.99, 0.99)
    assert s["beta1:horizon"] == pytest.approx((math.log(10) + math.log(100)) / 2)
    lr = coefficient_summary("lr/pg1", np.array([0.0, 0.1, 1.0]))
    assert lr["lr/pg1:logmean"] == pytest.approx(math.log(0.1) / 2)  # over positive values
    assert metric_spec("lr/pg1:logmean") is not None and metric_spec("lr:nope") is None


def test_curve_metrics_keep_bounded_traces() -> None:
    n = 3001
    steps = np.arange(n, dtype=float) * 10
    cols = {
        "step": steps,
        "train_loss": np.exp(-steps / 1e4),
        "lr": np.full(n, 0.1),
        "val_mse": np.where(steps % 600 == 0, 1.0, np.nan),
    }
    metrics, trace = curve_metrics(Curves(cols), "mse")
    assert metrics["drifts"] is False and metrics["lr:logmean"] == pytest.approx(math.log(0.1))
    assert trace.columns == ("step", "train_loss", "lr") and 50 <= len(trace.grid) <= 100
    assert np.all(np.diff(trace.grid[:, 0]) == trace.grid[1, 0] - trace.grid[0, 0])
    assert trace.val[0].size == 51


def test_recovery_of_a_return_is_from_below() -> None:
    steps = np.arange(200, dtype=float)
    phase = (steps // 100).astype(float)
    ret = np.full(200, 400.0)
    ret[100:130] = 40.0  # the return collapses at the switch and is back at step 130
    rec = recovery(steps, ret, phase, higher_is_better=True)
    assert rec.switches == 1 and rec.times[0] == 30
    assert recovery(steps, ret, phase).times[0] == 30  # the band is symmetric


def test_plateau_exit_from_the_task_column() -> None:
    cols = {"step": np.arange(5.0), "plateau_exit_step": np.array([np.nan] * 3 + [3.0, 3.0])}
    metrics, _ = curve_metrics(Curves(cols), None, budget=40)
    assert metrics["plateau_exit"] == 3 and metrics["plateau_exited"] is True
    cols["plateau_exit_step"] = np.full(5, np.nan)
    metrics, _ = curve_metrics(Curves(cols), None, budget=40)
    assert metrics["plateau_exit"] == 40 and metrics["plateau_exited"] is False


def test_coefficient_summaries_equal_the_column_by_column_ones() -> None:
    """All columns at once (issue 14, item 8) gives each column's own summary, bit for bit and
    in column order, also for the columns that take the one-by-one path (a zero, a NaN, a beta
    at 1)."""
    rng = np.random.default_rng(1)
    n = 101
    columns = {
        "step": np.arange(n, dtype=float) * 10,
        "train_loss": np.exp(-np.arange(n) / 30),
        "lr": 1e-3 * np.exp(rng.standard_normal(n) * 0.1),
        "beta1": 1 - 0.1 * np.exp(rng.standard_normal(n) * 0.1),
        "beta2/pg1": np.r_[np.full(n - 1, 0.999), 1.0],  # reaches 1: no horizon from that row
        "weight_decay": np.zeros(n),  # not positive: no log mean
        "eps": np.r_[np.nan, np.full(n - 1, 1e-8)],  # a blank row
        "sigma": 1e-6 * np.exp(rng.standard_normal(n)),
    }
    curves = Curves(columns)
    out, names = coefficient_summaries(curves)
    expected: dict = {}
    for name in ("lr", "beta1", "beta2/pg1", "weight_decay", "eps", "sigma"):
        expected.update(coefficient_summary(name, columns[name]))
    assert names == ["lr", "beta1", "beta2/pg1", "weight_decay", "eps", "sigma"]
    assert list(out) == list(expected)
    assert all(
        out[k] == expected[k] or (math.isnan(out[k]) and math.isnan(expected[k])) for k in out
    )
