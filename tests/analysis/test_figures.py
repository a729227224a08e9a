"""The report's figures: bands, and the forest plot's layout (analysis/figures.py,
analysis/verdict_figure.py)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis.figures import band
from analysis.verdict_figure import _layout, verdict_figure


def test_band_is_the_mean_and_t_interval_at_each_step() -> None:
    steps = [np.array([0.0, 10.0, 20.0]), np.array([0.0, 10.0]), np.array([0.0, 10.0])]
    values = [np.array([1.0, 2.0, 5.0]), np.array([3.0, 4.0]), np.array([2.0, np.nan])]
    b = band(steps, values)
    assert b.step.tolist() == [0.0, 10.0, 20.0]
    assert b.n.tolist() == [3, 2, 1]  # the NaN is left out
    assert b.mean.tolist() == pytest.approx([2.0, 3.0, 5.0])
    half = stats.t.ppf(0.975, 2) * 1.0 / math.sqrt(3)  # sd of 1, 3, 2 is 1
    assert b.low[0] == pytest.approx(2.0 - half) and b.high[0] == pytest.approx(2.0 + half)
    assert math.isnan(b.low[2])  # one run: no band at that step
    geo = band([np.array([0.0, 0.0])], [np.array([1.0, 100.0])], log=True)
    assert geo.mean.tolist() == pytest.approx([10.0])  # geometric mean


def _rows(
    strata: list[tuple[str, str]], metrics: tuple[str, ...] = ("final", "auc")
) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"data_source": ds, "stratum": st, "metric": m, "role": "test", "prediction": "p"}
            for ds, st in strata
            for m in metrics
        ]
    )


def test_the_forest_plot_names_each_stratum_once_and_what_all_share_in_the_title() -> None:
    rows = _rows([("synthetic", "task=a opt=x scale=cpu"), ("synthetic", "task=b opt=x scale=cpu")])
    ys, headers, lines, shared = _layout(rows)
    assert ys == [-1, -2, -4, -5] and lines == 6  # a header line above each stratum's rows
    assert headers == [(0, "task=a"), (-3, "task=b")]
    assert shared == "synthetic opt=x scale=cpu"


def test_the_forest_plot_keeps_every_field_when_nothing_is_shared_by_all() -> None:
    one = _layout(_rows([("synthetic", "task=a scale=cpu")]))
    assert one[1] == [(0, "synthetic: task=a scale=cpu")] and one[3] == ""
    mixed = _layout(_rows([("real", "task=a scale=cpu"), ("synthetic", "task=b scale=cpu")]))
    assert [h for _, h in mixed[1]] == ["real: task=a scale=cpu", "synthetic: task=b scale=cpu"]
    assert mixed[3] == ""


def test_a_forest_plot_draws_bounded_unbounded_and_missing_estimates(tmp_path: Path) -> None:
    rows = _rows([("synthetic", "task=a"), ("synthetic", "task=b")], ("final",))
    rows = pd.concat([rows, rows.iloc[:1]], ignore_index=True)
    rows = rows.assign(
        effect=[0.2, np.nan, 0.1],
        ci_low=[0.1, np.nan, -np.inf],
        ci_high=[0.3, np.nan, 0.4],
        threshold=[0.0, 0.0, 0.05],
        outcome=["supported", "inconclusive", "refuted"],
        effect_kind="difference",
    )
    path = verdict_figure(rows, "p", tmp_path)
    assert path == tmp_path / "verdict_p.png" and path.stat().st_size > 5_000
    assert verdict_figure(rows, "absent", tmp_path) is None
