"""Verdicts on synthetic runs with known true effects (analysis/verdicts.py).

The statistical checks repeat a synthetic experiment many times in memory: the t interval of a
mean covers the truth ~95% of the time, a null effect is ``supported`` at most ~alpha of the
time, a large effect is ``supported`` (nearly) always.
"""

from __future__ import annotations

import numpy as np
import pytest

from analysis.predictions import validate
from analysis.stats import summarize
from analysis.verdicts import evaluate
from tests.analysis.synth import table_runset

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


def pred(**changes: object):  # noqa: ANN201
    raw = {**BASE, **changes}
    return validate({k: v for k, v in raw.items() if v is not None}, "test.yaml", "p")


def two_arms(rng: np.random.Generator, n: int, effect: float, **extra: object) -> list[dict]:
    """n seeds per arm; seed effects shared (pairing helps); b lower by ``effect`` (better)."""
    seed_effect = rng.normal(0, 1.0, n)
    rows = []
    for s in range(n):
        base = 10 + seed_effect[s]
        rows.append({"ae": False, "seed": s, "final": base + rng.normal(0, 0.5), **extra})
        rows.append({"ae": True, "seed": s, "final": base - effect + rng.normal(0, 0.5), **extra})
    return rows


def verdict_of(prediction, rows: list[dict]) -> tuple[str, str]:  # noqa: ANN001
    v, _ = evaluate([prediction], table_runset(rows), n_boot=400)
    assert len(v) == 1
    return v["verdict"].iloc[0], v["reason"].iloc[0]


def test_t_interval_covers_the_true_mean_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(0)
    true, hits, reps = 3.0, 0, 2000
    for _ in range(reps):
        s = summarize(rng.normal(true, 2.0, 8))
        hits += s.ci_low <= true <= s.ci_high
    assert 0.935 <= hits / reps <= 0.965


def test_null_effect_is_supported_no_more_often_than_alpha() -> None:
    rng = np.random.default_rng(1)
    reps = 300
    for p in (pred(), pred(effect="relative")):
        supported = sum(verdict_of(p, two_arms(rng, 8, 0.0))[0] == "supported" for _ in range(reps))
        # expected alpha/2 = 2.5% (one tail of a two-sided 95% CI); binomial sd ~0.9%
        assert supported / reps <= 0.05


def test_large_true_effect_is_supported() -> None:
    rng = np.random.default_rng(2)
    verdicts = [verdict_of(pred(), two_arms(rng, 8, 2.0))[0] for _ in range(50)]
    assert verdicts.count("supported") >= 48
    verdict, reason = verdict_of(pred(), two_arms(rng, 8, 2.0))
    assert verdict == "supported" and "p_holm" in reason


def test_effect_in_the_wrong_direction_is_refuted() -> None:
    rng = np.random.default_rng(3)
    verdict, reason = verdict_of(pred(), two_arms(rng, 10, -2.0))
    assert verdict == "refuted" and "H0 effect >= 0" in reason


def test_relative_threshold_halves() -> None:
    rng = np.random.default_rng(4)
    halves = pred(metric="recovery", effect="relative", direction="decrease", threshold=0.5)
    rows = [
        {"ae": ae, "seed": s, "recovery": (100 if not ae else 30) * rng.uniform(0.9, 1.1)}
        for s in range(10)
        for ae in (False, True)
    ]
    assert verdict_of(halves, rows)[0] == "supported"  # true reduction 70%
    rows = [
        {"ae": ae, "seed": s, "recovery": (100 if not ae else 80) * rng.uniform(0.9, 1.1)}
        for s in range(10)
        for ae in (False, True)
    ]
    verdict, reason = verdict_of(halves, rows)  # true reduction 20%: credibly below 50%
    assert verdict == "refuted" and "relative" in reason


def test_missing_runs_are_inconclusive_and_name_the_sweep() -> None:
    rng = np.random.default_rng(5)
    rows = [r for r in two_arms(rng, 6, 1.0) if not r["ae"]]
    verdict, reason = verdict_of(pred(), rows)
    assert verdict == "inconclusive" and "no runs of arm b" in reason
    assert "aebench -m task=t ae=off,on" in reason
    verdict, reason = verdict_of(pred(runs={"task": "plateau"}), two_arms(rng, 6, 1.0))
    assert verdict == "inconclusive" and "no runs matching task=plateau" in reason
    assert "run: aebench" in reason


def test_too_few_seeds_ambiguous_pairs_and_unmatched_budgets_are_inconclusive() -> None:
    rng = np.random.default_rng(6)
    verdict, reason = verdict_of(pred(), two_arms(rng, 3, 5.0))
    assert verdict == "inconclusive" and "too few pairs" in reason
    rows = two_arms(rng, 6, 1.0) + [
        {**r, "arm": "other-lr", "label": "other lr"} for r in two_arms(rng, 6, 1.0) if r["ae"]
    ]
    verdict, reason = verdict_of(pred(), rows)
    assert verdict == "inconclusive" and "ambiguous pairing" in reason
    rows = two_arms(rng, 6, 3.0)
    for r in rows:
        r["budget"] = 200.0 if r["ae"] else 100.0
    verdict, reason = verdict_of(pred(), rows)
    assert verdict == "inconclusive" and "compute not matched" in reason


def test_ae_off_runs_differing_only_in_the_inert_ae_node_pair_once() -> None:
    """e17's ae=off runs at ae.every=1 and 16 are one vanilla computation (same ctx_off): one of
    them pairs with the AE run of a seed; runs that differ elsewhere, or AE runs, stay apart."""
    rng = np.random.default_rng(16)
    rows = two_arms(rng, 8, 3.0, ctx_off="same")
    twins = [{**r, "arm": "off-every16", "label": "off every16"} for r in rows if not r["ae"]]
    v, evidence = evaluate([pred()], table_runset(rows + twins), n_boot=400)
    assert v["verdict"].iloc[0] == "supported", v["reason"].iloc[0]
    assert evidence["n_a"].iloc[0] == 8 and "inert ae node" in evidence["label_a"].iloc[0]
    other = [{**t, "ctx_off": "other-lr"} for t in twins]
    assert "ambiguous pairing" in verdict_of(pred(), rows + other)[1]
    ae_twins = [{**r, "arm": "ae-every16", "label": "ae every16"} for r in rows if r["ae"]]
    assert "ambiguous pairing" in verdict_of(pred(), rows + ae_twins)[1]


def test_reruns_of_one_job_in_other_folders_count_once() -> None:
    """Two experiments sharing a job (same arm id and seed) each run it in their own folder:
    the copies are one computation, paired once (the first by path); a different arm at the
    same seed stays ambiguous."""
    rng = np.random.default_rng(17)
    rows = [{**r, "path": f"e16/{i}"} for i, r in enumerate(two_arms(rng, 8, 3.0))]
    again = [{**r, "path": f"e18/{r['path']}", "final": r["final"] + 9} for r in rows if r["ae"]]
    v, evidence = evaluate([pred()], table_runset(rows + again), n_boot=400)
    assert v["verdict"].iloc[0] == "supported", v["reason"].iloc[0]
    assert evidence["n_b"].iloc[0] == 8
    assert "8 reruns of 8 jobs (same arm and seed) counted once" in evidence["label_a"].iloc[0]
    alone, _ = evaluate([pred()], table_runset(rows), n_boot=400)
    assert v["reason"].iloc[0] == alone["reason"].iloc[0]  # the e16 copies were kept
    other = [{**r, "arm": "other-lr"} for r in again]
    assert "ambiguous pairing" in verdict_of(pred(), rows + other)[1]


def test_all_censored_time_to_target_is_inconclusive() -> None:
    rows = [
        {"ae": ae, "seed": s, "time_to_target": 100.0, "ttt": np.nan}
        for s in range(6)
        for ae in (False, True)
    ]
    verdict, reason = verdict_of(pred(metric="time_to_target"), rows)
    assert verdict == "inconclusive" and "no run reached the target" in reason


def test_guard_violation_refutes_and_undetermined_guard_withholds_support() -> None:
    rng = np.random.default_rng(7)
    guarded = pred(guards=[{"metric": "incidents", "margin": 0}])
    rows = two_arms(rng, 8, 3.0)
    for r in rows:
        r["incidents"] = 5.0 + rng.normal(0, 0.1) if r["ae"] else 0.0
    verdict, reason = verdict_of(guarded, rows)
    assert verdict == "refuted" and "guard incidents" in reason and "beyond margin" in reason
    # zero incidents in both arms: the interval [0, 0] is degenerate and the exact test cannot
    # show "no worse than margin 0" (issue 14: this used to count as a holding guard)
    for r in rows:
        r["incidents"] = 0.0
    verdict, reason = verdict_of(guarded, rows)
    assert verdict == "inconclusive" and "degenerate" in reason
    guarded = pred(guards=[{"metric": "incidents", "margin": 1.0}])
    assert verdict_of(guarded, rows)[0] == "supported"  # shown within a positive margin
    guarded = pred(guards=[{"metric": "incidents", "margin": 0}])
    for r in rows:
        r["incidents"] = float(rng.integers(0, 3))
    verdict, reason = verdict_of(guarded, rows)
    assert verdict == "inconclusive" and "not shown either way" in reason


def test_any_of_several_metrics_and_best_reference_arm() -> None:
    rng = np.random.default_rng(8)
    knock = pred(
        metric=["final", {"name": "incidents", "effect": "difference"}],
        direction="worse",
        combine="any",
        a={"ae": True},
        b={"ae": False},
    )
    rows = two_arms(rng, 8, 2.0)  # b (ae=False) has the worse final: supported via final
    for r in rows:
        r["incidents"] = 0.0
    assert verdict_of(knock, rows)[0] == "supported"
    best = pred(select_a="best", a={"ae": False}, metric="final", threshold=0.0)
    rows = two_arms(rng, 8, 1.0)
    strong = [
        {**r, "arm": "strong-off", "label": "strong", "final": r["final"] - 3}
        for r in rows
        if not r["ae"]
    ]
    verdict, reason = verdict_of(best, rows + strong)
    assert verdict == "refuted"  # against the best reference, b is credibly worse
    _, ev = evaluate([best], table_runset(rows + strong), n_boot=400)
    assert "best of 2 arms" in ev["label_a"].iloc[0] and "strong" in ev["label_a"].iloc[0]


def test_spread_across_a_factor() -> None:
    rng = np.random.default_rng(9)
    spread = pred(
        kind="spread",
        factor="config.task.loss_scale",
        metric="best",
        effect="relative",
        direction="decrease",
        threshold=0.5,
        a={"ablation": "no_gauge"},
        b={"ablation": "none"},
        runs=None,
    )
    rows, configs = [], {}
    for ablation, sens in (("no_gauge", 1.0), ("none", 0.1)):
        for scale in (0.1, 1.0, 10.0):
            arm = f"{ablation}-{scale}"
            configs[arm] = {"task": {"loss_scale": scale}}
            for s in range(8):
                value = np.exp(sens * np.log10(scale) + rng.normal(0, 0.02))
                rows.append(
                    {
                        "ae": True,
                        "ablation": ablation,
                        "seed": s,
                        "arm": arm,
                        "label": arm,
                        "best": value,
                    }
                )
    v, ev = evaluate([spread], table_runset(rows, configs), n_boot=400)
    assert v["verdict"].iloc[0] == "supported"
    assert ev["effect"].iloc[0] == pytest.approx(0.9, abs=0.05)  # spread 10x smaller


def test_correlation_of_the_best_runs() -> None:
    rng = np.random.default_rng(10)
    corr = pred(
        kind="correlation",
        x="lr:logmean",
        y=["beta1:horizon"],
        direction="decrease",
        a=None,
        b=None,
        metric=None,
        top_fraction=0.5,
        min_n=8,
        runs=None,
    )
    x = rng.normal(0, 1, 40)
    rows = [
        {
            "ae": True,
            "seed": i,
            "arm": f"a{i}",
            "lr:logmean": x[i],
            "final": rng.uniform(),
            "beta1:horizon": -x[i] + rng.normal(0, 0.3),
        }
        for i in range(40)
    ]
    verdict, reason = verdict_of(corr, rows)
    assert verdict == "supported" and "spearman" in reason
    for r in rows:
        r["beta1:horizon"] = rng.normal()
    assert verdict_of(corr, rows)[0] != "supported"


def test_holm_runs_over_every_prediction_test() -> None:
    rng = np.random.default_rng(11)
    rows = two_arms(rng, 8, 0.6)
    single, _ = evaluate([pred()], table_runset(rows), n_boot=400)
    preds = [pred(metric="final")] + [pred(metric="final") for _ in range(5)]
    preds = [p.__class__(**{**p.__dict__, "name": f"p{i}"}) for i, p in enumerate(preds)]
    _, ev = evaluate(preds, table_runset(rows), n_boot=400)
    assert np.allclose(ev["p_holm"], np.minimum(1, ev["p"] * 6))
    assert len(single) == 1


def test_strata_with_one_arm_only_are_named_not_judged() -> None:
    rng = np.random.default_rng(12)
    rows = [{**r, "task": "t1" if r["ae"] else "t2"} for r in two_arms(rng, 6, 1.0)]
    verdict, reason = verdict_of(pred(runs=None), rows)
    assert verdict == "inconclusive"
    assert "no stratum has runs of both arms (only a in synthetic task=t2" in reason
    assert "only b in synthetic task=t1" in reason and "run: aebench" in reason


def test_diverged_runs_read_as_diverged_in_k_of_n_not_minus_inf() -> None:
    # b diverges on 6 of 10 seeds (worst rank, +inf final): the estimate is infinite
    rows = []
    for s in range(10):
        rows.append({"ae": False, "seed": s, "final": 1.0 + 0.01 * s})
        diverged = s < 6
        rows.append(
            {
                "ae": True,
                "seed": s,
                "final": None if diverged else 1.1 + 0.01 * s,
                "status": "diverged" if diverged else "completed",
            }
        )
    verdict, reason = verdict_of(pred(), rows)
    assert verdict == "refuted"
    assert "diverged in b 6/10, a 0/10 pairs" in reason
    assert "final: difference -inf" not in reason and " -inf [" not in reason


def test_runs_not_leaves_another_experiments_runs_out() -> None:
    """A second vanilla run of each seed from another experiment (e13's stress at 10x the lr
    beside e02's) makes the pairing ambiguous; ``runs_not`` on its experiment leaves it out."""
    rng = np.random.default_rng(11)
    rows = two_arms(rng, 8, 2.0, experiment="e02", arm_lr=0.001)
    rows += [
        {"ae": False, "seed": s, "final": 30.0, "experiment": "e13", "arm_lr": 0.01}
        for s in range(8)
    ]
    plain = pred(strata=["task"])
    verdict, reason = verdict_of(plain, rows)
    assert verdict == "inconclusive" and "ambiguous pairing" in reason
    verdict, reason = verdict_of(pred(strata=["task"], runs_not={"experiment": "e13"}), rows)
    assert verdict == "supported", reason
    # every field of runs_not must match for a run to be left out
    both = pred(strata=["task"], runs_not={"experiment": "e13", "ae": True})
    assert "ambiguous pairing" in verdict_of(both, rows)[1]


def test_a_reason_names_the_runs_left_out() -> None:
    rows = two_arms(np.random.default_rng(12), 6, 1.0, experiment="e13")
    verdict, reason = verdict_of(pred(runs_not={"experiment": "e13"}), rows)
    assert verdict == "inconclusive"
    assert "matching task=t not experiment=e13" in reason
