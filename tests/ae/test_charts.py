"""Charts (readings #1): round trips, floors, bounds."""

from __future__ import annotations

import math

import pytest

from aebench.ae.charts import chart_bounds, from_chart, to_chart


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("alpha", 0.03),
        ("beta1", 0.9),
        ("beta2", 0.999),
        ("eps", 1e-8),
        ("weight_decay", 0.01),
        ("sigma", 1e-4),
    ],
)
def test_round_trip(kind, value):
    assert from_chart(kind, to_chart(kind, value, 1e-8), 1e-8) == pytest.approx(value, rel=1e-12)


def test_horizon_chart_is_log_effective_horizon():
    assert to_chart("beta1", 0.9) == pytest.approx(math.log(10.0))
    assert to_chart("beta1", 0.0) == 0.0 and from_chart("beta1", 0.0) == 0.0


def test_zero_floor_reads_and_writes_exact_zero():
    z = to_chart("sigma", 0.0, 1e-6)
    assert z == pytest.approx(math.log(1e-6))
    assert from_chart("sigma", z, 1e-6) == 0.0
    assert from_chart("sigma", z + 1e-3, 1e-6) > 0.0


def test_relative_bounds_are_multiples_of_base():
    lo, hi = chart_bounds("alpha", 1e-2, 1e2, True, 0.1)
    assert math.exp(lo) == pytest.approx(1e-3) and math.exp(hi) == pytest.approx(10.0)
