"""Rulesets (issue 18): the external-tuning stage's draws, seeds, best trial and records."""

from __future__ import annotations

import json
import math

import pytest

from aebench.record import tuning_fields
from aebench.tuning import (
    TuningError,
    best_trial,
    draw_trials,
    run_stage,
    search_space,
    tuning_seeds,
)
from tests.helpers import compose_config


def _external():
    cfg, _ = compose_config(["ruleset=external"])
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg.ruleset)


def test_default_ruleset_is_self_tuning_and_records_say_so():
    cfg, _ = compose_config([])
    assert cfg.ruleset.name == "self_tuning" and cfg.ruleset.trials == 0
    assert tuning_fields({"ruleset": dict(cfg.ruleset)}) == {
        "ruleset": "self_tuning",
        "trial": None,
        "budget_trials": 0,
        "budget_steps": 0,
    }


def _arm(*overrides):
    cfg, _ = compose_config(["ruleset=external", *overrides])
    from omegaconf import OmegaConf

    return OmegaConf.to_container(cfg, resolve=True)


def test_external_draws_are_deterministic_in_range_and_per_arm():
    r = _external()
    assert r["trials"] == 8
    base = search_space(_arm("optimizer=sgdm"), ae_enabled=False)
    ae = search_space(_arm("optimizer=sgdm", "ae=on"), ae_enabled=True)
    assert set(base) == {"optimizer.lr"} and {"ae.eta_a", "optimizer.lr"} <= set(ae)
    a, b = draw_trials(ae, 8, 0), draw_trials(ae, 8, 0)
    assert a == b and a != draw_trials(ae, 8, 1)
    for p in a:
        for k, v in p.items():
            assert ae[k]["low"] <= v <= ae[k]["high"]
    lrs = sorted(math.log10(p["optimizer.lr"]) for p in a)
    assert lrs[-1] - lrs[0] > 2  # quasi-random: spread over the 4 decades, not clumped


def test_tuning_seeds_disjoint_from_evaluation_seeds():
    r = _external()
    seeds = tuning_seeds(r, list(range(10)))
    assert not set(seeds) & set(range(10))
    with pytest.raises(TuningError, match="tuning_seed_base=3"):
        tuning_seeds({**r, "tuning_seed_base": 3}, list(range(10)))


def test_best_trial_by_metric_mode_and_divergence_is_worst():
    def rec(v, status="completed"):
        return {"status": status, "metric": {"final": v}}

    runs = {0: [rec(0.5)], 1: [rec(0.1)], 2: [rec(0.01, "diverged")], 3: [rec(0.9)]}
    assert best_trial(runs, "min") == 1
    assert best_trial(runs, "max") == 3
    with pytest.raises(TuningError, match="mode='median'"):
        best_trial(runs, "median")


def test_best_trial_by_time_to_target_counts_a_miss_at_the_budget():
    """``ruleset.select=time_to_target`` ranks by the prediction's metric, not the final value:
    the trial that is most accurate at the end can be the slowest to the target."""

    def rec(final, step, status="completed"):
        target = {"reached": step is not None, "step": step}
        return {"status": status, "metric": {"final": final}, "budget": 1000, "target": target}

    runs = {
        0: [rec(0.010, 900), rec(0.010, 950)],  # most accurate, slow
        1: [rec(0.013, 300), rec(0.013, 400)],  # fastest to the target
        2: [rec(0.020, 100), rec(0.020, None)],  # one miss counts 1000: mean 550
        3: [rec(0.001, 50, "diverged"), rec(0.001, 50)],
    }
    assert best_trial(runs, "min") == 0
    assert best_trial(runs, "min", "time_to_target") == 1
    with pytest.raises(TuningError, match="ruleset.select='auc': allowed final, time_to_target"):
        best_trial(runs, "min", "auc")


def test_run_stage_chooses_records_budget_and_resumes(tmp_path):
    r = {**_external(), "trials": 4, "tuning_seeds": 2}
    calls = []

    def runner(overrides, folder):  # a fake job: the metric is |log10(lr) + 2|
        calls.append(overrides)
        lr = float(next(o for o in overrides if o.startswith("optimizer.lr=")).split("=")[1])
        rec = {
            "status": "completed",
            "steps": 10,
            "metric": {"final": abs(math.log10(lr) + 2), "mode": "min"},
        }
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(rec))
        return rec

    arm = _arm("optimizer=sgdm")
    extra = run_stage("arm1", ["task=regression"], r, False, [0, 1, 2], tmp_path, runner, arm)
    assert len(calls) == 8 and all("task=regression" in c for c in calls)
    assert all(any(o.startswith("seed=1000") for o in c) for c in calls)
    points = draw_trials(search_space(arm, False), 4, 0)
    best = min(range(4), key=lambda i: abs(math.log10(points[i]["optimizer.lr"]) + 2))
    assert f"ruleset.trial={best}" in extra
    assert "ruleset.budget_trials=8" in extra and "ruleset.budget_steps=80" in extra
    assert "ruleset.select=final" in extra
    again = run_stage("arm1", ["task=regression"], r, False, [0, 1, 2], tmp_path, runner, arm)
    assert again == extra and len(calls) == 8  # resumed: nothing reran
    assert run_stage("arm2", [], {"name": "self_tuning"}, False, [0], tmp_path, runner) == []


@pytest.mark.slow
def test_evidence_tuning_stage_splits_sweep_per_arm(tmp_path):
    """aebench-evidence under ruleset=external: each arm tuned, then swept with its choice."""
    from orchestration.evidence import Composer, parse_args, plan
    from orchestration.tuning_stage import staged_plans

    out = tmp_path / "out"
    calls = []

    def runner(overrides, folder):
        calls.append(overrides)
        lr = float(next(o for o in overrides if o.startswith("optimizer.lr=")).split("=")[1])
        return {"status": "completed", "steps": 40, "metric": {"final": lr, "mode": "min"}}

    composer = Composer()
    try:
        base = ["--experiments", "e01_static_regression", "--scale", "smoke", "--out", str(out)]
        extra = ["--", "optimizer=sgdm", "seed=0,1"]
        args = parse_args([*base, *extra])
        p = plan(composer, "e01_static_regression", args, out)
        assert staged_plans(composer, p, out, 1, print, runner) == [p] and not calls
        args = parse_args([*base, *extra, "ruleset=external", "ruleset.trials=2"])
        p = plan(composer, "e01_static_regression", args, out)
        plans = staged_plans(composer, p, out, 1, print, runner)
    finally:
        composer.close()
    assert len(plans) == 2 and len(calls) == 4  # ae off and on, 2 trials x 1 tuning seed each
    assert all(any(o.startswith("seed=100000") for o in c) for c in calls)
    for sub in plans:
        assert "seed=0,1" in sub.command and "ruleset.budget_trials=2" in sub.command
        assert len(sub.jobs) == 2 and all(
            "ruleset.budget_steps=80" in j.overrides for j in sub.jobs
        )
    assert (out.parent / "out-tuning" / "tuning").is_dir()
    # e01 feeds time-to-target predictions only: its trials are ranked by that metric
    assert all("ruleset.select=time_to_target" in sub.command for sub in plans)


def test_an_experiments_trials_are_ranked_by_its_predictions_metric():
    from orchestration.tuning_stage import prediction_selection

    assert prediction_selection("e01_static_regression") == "time_to_target"
    assert prediction_selection("e07_induced_oscillation") == "final"  # oscillation: no ranking
    assert prediction_selection("e06_cartpole_reward_drift") == "final"  # two metrics
    assert prediction_selection("no_such_experiment") == "final"


def _rewrite(folder, ruleset=None, ae_choice=None, trial=None):
    p = folder / "result.json"
    rec = json.loads(p.read_text())
    if ruleset:
        rec["config"]["ruleset"] = {"name": ruleset, "trial": trial, "budget_trials": 8}
        rec["arm"] = rec["arm"] + f"-{ruleset}{trial}"  # another resolved config: another arm
    if ae_choice:
        rec["overrides"] = [
            o if not o.startswith("ae=") else f"ae={ae_choice}" for o in rec["overrides"]
        ]
        rec["arm"] = rec["arm"] + f"-{ae_choice}"
    p.write_text(json.dumps(rec))


def test_analysis_names_ae_arm_and_pairs_within_a_ruleset(tmp_path):
    """ae=meta is a run field predictions can name; arms pair only within one ruleset."""
    from analysis.arms import annotate
    from analysis.collect import load_runs
    from tests.analysis.synth import write_run

    runs = {
        "off_self": write_run(tmp_path, ae=False, seed=0, name="a"),
        "meta_self": write_run(tmp_path, ae=True, seed=0, name="b"),
        "off_ext": write_run(tmp_path, ae=False, seed=0, name="c"),
        "meta_ext": write_run(tmp_path, ae=True, seed=0, name="d"),
    }
    _rewrite(runs["meta_self"], ae_choice="meta")
    _rewrite(runs["off_ext"], ruleset="external", trial=3)
    _rewrite(runs["meta_ext"], ruleset="external", trial=5, ae_choice="meta")
    rs = load_runs([tmp_path], curves=False)
    arms = annotate(rs).set_index("arm")
    t = rs.table.set_index(rs.table["arm"])
    arm = {k: json.loads((f / "result.json").read_text())["arm"] for k, f in runs.items()}
    assert t.loc[arm["meta_self"], "ae_arm"] == "meta" and t.loc[arm["off_self"], "ae_arm"] == "off"
    assert t.loc[arm["off_ext"], "ruleset"] == "external"
    assert t.loc[arm["off_self"], "ruleset"] == "self_tuning"
    ctx = arms["ctx_off"]
    assert ctx[arm["off_self"]] == ctx[arm["meta_self"]]
    assert ctx[arm["off_ext"]] == ctx[arm["meta_ext"]]  # different trials, same ruleset: paired
    assert ctx[arm["off_self"]] != ctx[arm["off_ext"]]  # never across rulesets
    assert "ruleset=external" in arms.loc[arm["off_ext"], "label"]
