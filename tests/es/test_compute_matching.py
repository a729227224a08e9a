"""The analysis refuses "matched" on steps alone when arms differ in cost per step (issue 21)."""

from __future__ import annotations

import pandas as pd

from analysis.runs import cost_per_step
from analysis.verdicts import _costs_differ


def test_cost_per_step_from_records() -> None:
    assert cost_per_step({"steps": 40, "fitness_evaluations": 40 * 33}) == 33.0
    assert cost_per_step({"steps": 40, "fitness_evaluations": 0}) == 3.0  # gradient step
    assert cost_per_step({"steps": 0, "fitness_evaluations": 0}) is None


def test_es_against_gradient_at_equal_steps_is_not_matched() -> None:
    es = pd.DataFrame({"cost_per_step": [33.0, 33.0]})
    sgd = pd.DataFrame({"cost_per_step": [3.0, 3.0]})
    assert _costs_differ(es, sgd)
    assert not _costs_differ(es, es.copy())
    assert not _costs_differ(sgd, pd.DataFrame({"x": [1]}))  # old tables: no column, no refusal
