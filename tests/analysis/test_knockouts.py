"""Knock-out confounding through the shared AE-10 guard and AE-6 budget (issue 13, item 4).

Each AE record carries ``extra.ae.guard_mean`` and ``extra.ae.budget_mult_mean`` (one entry per
param group, aebench/ae/controller.py ``summary``); the knock-out verdicts show both arms' mean
values and say "confounded through AE-6/AE-10" when they differ by more than 2x.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import cli
from analysis.collect import load_runs
from analysis.predictions import validate
from analysis.report import markdown_report
from analysis.verdicts import confounding, evaluate
from tests.analysis.synth import table_runset, write_run

KNOCKOUT = {
    "claim": "Removing the noise law degrades the final loss",
    "sweep": "aebench -m experiment=e18_law_knockouts",
    "runs": {"ae": True},
    "a": {"ablation": "none"},
    "b": {"ablation": "no_noise"},
    "metric": "final",
    "effect": "relative",
    "direction": "worse",
    "threshold": 0.02,
    "alpha": 0.05,
}


def knockout(**changes: object):  # noqa: ANN201
    return validate({**KNOCKOUT, **changes}, "knockout.yaml", "knockout_noise")


def rows(ablation_b: str, guards: tuple[float, float], budgets: tuple[float, float]) -> list[dict]:
    """10 seeds per arm, b clearly worse (final x1.5); per-run multipliers around the arm's."""
    rng = np.random.default_rng(0)
    out = []
    for s in range(10):
        base = math.exp(rng.normal(0, 0.3))
        for ablation, g, b, f in (
            ("none", guards[0], budgets[0], 1.0),
            (ablation_b, guards[1], budgets[1], 1.5),
        ):
            out.append(
                {
                    "ae": True,
                    "ablation": ablation,
                    "seed": s,
                    "final": base * f * math.exp(rng.normal(0, 0.02)),
                    "guard_mean": g * math.exp(rng.normal(0, 0.05)),
                    "budget_mult_mean": b * math.exp(rng.normal(0, 0.05)),
                }
            )
    return out


def test_records_carry_the_mean_multipliers_over_param_groups(tmp_path) -> None:  # noqa: ANN001
    ae = {"guard_mean": [0.1, 0.3, None], "budget_mult_mean": [0.9, 0.7, None]}
    write_run(tmp_path, ae=True, seed=0, extra={"ae": ae})
    write_run(tmp_path, ae=False, seed=0)
    table = load_runs([tmp_path]).table.set_index("ae")
    assert table.loc[True, "guard_mean"] == pytest.approx(0.2)
    assert table.loc[True, "budget_mult_mean"] == pytest.approx(0.8)
    assert math.isnan(float(table.loc[False, "guard_mean"]))


def test_a_guard_five_times_higher_in_the_knockout_is_confounded() -> None:
    v, e = evaluate([knockout()], table_runset(rows("no_noise", (0.1, 0.5), (0.9, 0.9))))
    r = v.iloc[0]
    assert r.verdict == "supported"  # the verdict stands; the note says what it may run through
    assert r.guard_a == pytest.approx(0.1, rel=0.1) and r.guard_b == pytest.approx(0.5, rel=0.1)
    assert r.budget_a == pytest.approx(0.9, rel=0.1) and r.budget_b == pytest.approx(0.9, rel=0.1)
    assert "confounded through AE-6/AE-10" in r.reason and "AE-10 guard" in r.reason
    assert "AE-6 budget" not in r.confound
    assert (e["confound"] == r.confound).all()


def test_multipliers_within_2x_are_not_confounded() -> None:
    v, _ = evaluate([knockout()], table_runset(rows("no_noise", (0.1, 0.15), (0.9, 0.6))))
    r = v.iloc[0]
    assert r.confound == "" and "confounded" not in r.reason
    assert r.guard_b == pytest.approx(0.15, rel=0.1)


def test_the_multiplier_a_knockout_removes_is_its_treatment_not_a_confound() -> None:
    # no_budget fixes the multiplier at 1: a 3x budget difference is the knock-out itself
    pred = knockout(b={"ablation": "no_budget"})
    v, _ = evaluate([pred], table_runset(rows("no_budget", (0.1, 0.12), (0.33, 1.0))))
    assert v.iloc[0].confound == ""
    # ... but a guard that moves 4x under the budget knock-out is a confound
    v, _ = evaluate([pred], table_runset(rows("no_budget", (0.1, 0.4), (0.33, 1.0))))
    assert "AE-10 guard" in v.iloc[0].confound and "AE-6" not in v.iloc[0].confound.split(":")[1]


def test_the_rule_is_larger_over_smaller_above_2() -> None:
    assert confounding(0.1, 0.21, 1, 1, set()) != ""
    assert confounding(0.21, 0.1, 1, 1, set()) != ""  # symmetric
    assert confounding(0.1, 0.2, 1, 1, set()) == ""  # exactly 2x is not more than 2x
    assert confounding(0.1, 0.1, 0.2, 0.9, set()).startswith("confounded through AE-6/AE-10")
    assert confounding(math.nan, 0.5, 1, 1, set()) == ""  # an arm without AE: nothing to say
    assert confounding(0.1, 0.5, 1, 1, {"no_lyapunov"}) == ""


def test_a_non_knockout_prediction_shows_multipliers_without_a_confound_mark() -> None:
    data = rows("no_noise", (0.1, 0.5), (0.9, 0.9))
    for r in data:  # the same runs read as two AE variants, not a knock-out
        r["optimizer"] = "adamw" if r["ablation"] == "none" else "sgdm"
        r["ablation"] = "none"
    pred = knockout(a={"optimizer": "adamw"}, b={"optimizer": "sgdm"}, strata=["task"])
    v, _ = evaluate([pred], table_runset(data))
    assert v.iloc[0].confound == "" and v.iloc[0].guard_b == pytest.approx(0.5, rel=0.1)


def test_the_report_shows_both_arms_multipliers_beside_the_verdict(tmp_path) -> None:  # noqa: ANN001
    for s in range(6):
        for ablation, g, final in (("none", 0.1, 1.0), ("no_noise", 0.5, 1.5 + 0.01 * s)):
            write_run(
                tmp_path / "runs",
                ae=True,
                ablation=ablation,
                seed=s,
                final=final,
                extra={"ae": {"guard_mean": [g], "budget_mult_mean": [0.9]}},
            )
    args = cli.parse_args([str(tmp_path / "runs"), "--out", str(tmp_path / "out"), "--quiet"])
    res = cli.analyse(args, [knockout(strata=["task"])], load_runs([tmp_path / "runs"]))
    full, _ = markdown_report(res)
    assert "AE-10 guard, AE-6 budget (a / b)" in full
    line = next(x for x in full.splitlines() if x.startswith("| knockout_noise"))
    assert "guard 0.1 / 0.5, budget 0.9 / 0.9" in line
    assert "confounded through AE-6/AE-10" in line
