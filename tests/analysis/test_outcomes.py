"""The outcome policy for runs that did not complete (analysis/outcomes.py), metric by metric:
each test has a diverged and a failed run in the sample (issue 14, item 1)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.outcomes import apply_policy, failed_runs
from analysis.predictions import validate
from analysis.stats import km_restricted_mean
from analysis.tables import normalised_scores, summary_table, time_to_target_table
from analysis.verdicts import evaluate
from tests.analysis.synth import table_runset


def _table(n: int = 6) -> pd.DataFrame:
    """Arm ``x`` with n completed runs, one diverged (with a huge last finite value) and one
    failed run; arm ``y`` completed."""
    rows = []
    for s in range(n):
        for arm in ("x", "y"):
            rows.append(
                {"arm": arm, "seed": s, "status": "completed", "final": 1.0 + s, "best": 0.5 + s}
            )
    rows.append({"arm": "x", "seed": n, "status": "diverged", "final": 2.4e21, "best": 0.1})
    rows.append({"arm": "x", "seed": n + 1, "status": "failed", "final": 0.01, "best": 0.01})
    t = pd.DataFrame(rows)
    t["auc"] = t["final"]
    t["mode"], t["budget"], t["task"], t["data_source"] = "min", 100.0, "t", "synthetic"
    t["label"], t["steps"] = t["arm"], np.where(t["status"] == "diverged", 30.0, 100.0)
    t["ttt"] = np.where(t["status"] == "completed", 40.0, np.nan)
    t.loc[t["status"] == "diverged", "ttt"] = 20.0  # touched the target before diverging
    t["time_to_target"] = t["ttt"].fillna(100.0)
    t["recovery"] = np.where(t["status"] == "diverged", 30.0, 200.0)  # cut short: not credited
    t["recovery_level"], t["drifts"] = 0.0, True
    t["method"], t["problem"] = t["arm"], "t"
    return t


def test_value_metrics_give_a_diverged_run_the_worst_rank_and_exclude_failed() -> None:
    t = _table()
    out = apply_policy(t)
    assert "failed" not in set(out["status"])
    div = out[out["status"] == "diverged"].iloc[0]
    assert div["final"] == np.inf and div["best"] == np.inf and div["auc"] == np.inf
    assert div["recovery"] == np.inf and div["recovery_level"] == -np.inf
    maxed = apply_policy(t.assign(mode="max"))
    assert maxed.loc[maxed["status"] == "diverged", "final"].iloc[0] == -np.inf
    assert (t["final"] == 2.4e21).any()  # the input is not modified
    assert list(failed_runs(t)["seed"]) == [7]


def test_time_to_target_censors_a_diverged_run_and_ert_charges_steps_used() -> None:
    t = _table()
    out = apply_policy(t)
    div = out[out["status"] == "diverged"].iloc[0]
    assert np.isnan(div["ttt"]) and div["time_to_target"] == 100.0  # a miss at the budget
    ttt = time_to_target_table(t).set_index("arm")
    # arm x: 6 successes at 40, one diverged run that used 30 steps, the failed run excluded
    assert ttt.loc["x", "runs"] == 7 and ttt.loc["x", "reached"] == 6
    assert ttt.loc["x", "ert"] == pytest.approx((6 * 40 + 30) / 6)
    assert ttt.loc["x", "censored_share"] == pytest.approx(1 / 7)
    assert 0 <= ttt.loc["x", "rmst_low"] <= ttt.loc["x", "rmst"] <= ttt.loc["x", "rmst_high"]
    assert ttt.loc["x", "rmst"] == pytest.approx((6 * 40 + 100) / 7)
    assert ttt.loc["x", "ert_low"] >= 0


def test_kaplan_meier_restricted_mean_is_the_mean_restricted_time_at_a_common_budget() -> None:
    km = km_restricted_mean([10, 20, np.inf, 30, np.inf], 100.0, 100.0)
    assert km.rmst == pytest.approx(52.0) and km.censored_share == 0.4
    assert 0 <= km.ci_low < 52 < km.ci_high <= 100
    never = km_restricted_mean([np.inf] * 5, 100.0, 100.0)
    assert never.rmst == never.ci_low == never.ci_high == 100.0


def test_iqm_scores_a_diverged_run_below_the_worst_finished_and_keeps_its_floor() -> None:
    t = apply_policy(_table())
    scores = normalised_scores(t)
    status = t["status"].to_numpy()
    assert scores[status == "diverged"].iloc[0] == -1.0
    finished = scores[status == "completed"]
    assert finished.min() == 0.0 and finished.max() == 1.0
    # the diverged run's 2.4e21 no longer sets the floor: the median finished score is mid-range
    assert 0.3 < finished.median() < 0.7


def test_summary_counts_diverged_and_ranks_them_in_the_median() -> None:
    s = summary_table(_table()).set_index(["arm", "metric"])
    row = s.loc[("x", "final")]
    assert row["n_diverged"] == 1 and row["n"] == 6 and row["mean"] == pytest.approx(3.5)
    assert row["median"] == pytest.approx(4.0)  # 1..6 and the worst rank
    assert row["ci_high"] < 1e6  # never the 2.4e21 of the last finite value


def test_plateau_exit_counts_a_diverged_run_that_never_exited_at_its_budget() -> None:
    from analysis.collect import _censor_plateau_exits

    t = pd.DataFrame(
        {
            "task": "plateau",
            "data_source": "s",
            "status": ["completed", "diverged", "failed"],
            "plateau_exit": [40.0, np.nan, np.nan],
            "plateau_exited": [True, False, False],
            "budget": 100.0,
        }
    )
    _censor_plateau_exits(t)
    assert list(t["plateau_exit"].iloc[:2]) == [40.0, 100.0]
    assert np.isnan(t["plateau_exit"].iloc[2])


BASE = {
    "claim": "b beats a",
    "sweep": "aebench -m task=t ae=off,on seed='range(10)'",
    "runs": {"task": "t"},
    "a": {"ae": False},
    "b": {"ae": True},
    "metric": "final",
    "direction": "better",
    "threshold": 0.0,
    "alpha": 0.05,
}


def _verdict(rows: list[dict], **changes: object) -> tuple[str, pd.Series]:
    p = validate({**BASE, **changes}, "test.yaml", "p")
    v, e = evaluate([p], table_runset(rows))
    return v["verdict"].iloc[0], e.iloc[0]


def test_a_verdict_keeps_diverged_runs_as_failures_and_drops_failed_ones() -> None:
    rng = np.random.default_rng(0)
    rows = []
    for s in range(10):
        base = 10 + rng.normal()
        rows.append({"ae": False, "seed": s, "final": base})
        # b is better where it finishes but diverges on the 4 seeds where a is worst
        status = "diverged" if s < 4 else "completed"
        rows.append({"ae": True, "seed": s, "final": base - 0.5, "status": status})
    rows.append({"ae": True, "seed": 10, "final": 0.0, "status": "failed"})
    rows.append({"ae": False, "seed": 10, "final": 20.0})
    verdict, ev = _verdict(rows)
    assert ev["n_pairs"] == 10 and ev["n_diverged"] == 4  # diverged kept, failed pair out
    assert verdict != "supported"


def test_best_fixed_schedule_never_picks_an_arm_for_its_finished_runs_alone() -> None:
    rows = []
    for s in range(6):
        rows.append({"ae": False, "seed": s, "final": 5.0 + 0.1 * s, "schedule": "constant"})
        status = "diverged" if s == 0 else "completed"
        rows.append({"ae": False, "seed": s, "final": 4.0, "schedule": "cosine", "status": status})
        rows.append({"ae": True, "seed": s, "final": 3.0 + 0.1 * s, "schedule": "constant"})
    rows.append({"ae": False, "seed": 9, "final": 0.0, "schedule": "step", "status": "failed"})
    for r in rows:
        r["arm"] = f"{r['ae']}-{r['schedule']}"
        r["label"], r["swarm"], r["lr"] = r["arm"], "off", 0.1
    p = validate(
        {**BASE, "a": "best_fixed_schedule", "b": {"ae": True, "schedule": "constant"}},
        "t.yaml",
        "p",
    )
    _, e = evaluate([p], table_runset(rows))
    assert "False-constant" in e["label_a"].iloc[0]  # cosine's mean ignoring its diverged run is 4


def test_probability_of_improvement_has_a_stratified_bootstrap_interval() -> None:
    from analysis.stats import probability_of_improvement, probability_of_improvement_ci

    a, b = [1.0, 2, 3, 4, 5], [2.0, 3, 4, 5, 6]
    point, lo, hi = probability_of_improvement_ci(a, b)
    assert point == probability_of_improvement(a, b) == pytest.approx(0.68)
    assert 0 <= lo < point < hi <= 1
    # a diverged run (worst rank) is the lowest-ranked value of its arm, not dropped
    point, _, _ = probability_of_improvement_ci(a, [2.0, 3, 4, 5, np.inf], higher_is_better=False)
    assert point == pytest.approx(0.32)


def test_step_count_intervals_never_go_negative() -> None:
    t = _table().assign(time_to_target=lambda f: np.where(f["seed"] == 0, 1000.0, 1.0))
    s = summary_table(t).set_index(["arm", "metric"])
    assert s.loc[("y", "time_to_target"), "ci_low"] == 0.0  # the t interval would be negative
