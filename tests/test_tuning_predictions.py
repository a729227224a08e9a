"""The arm in the predictions (issue 18, item 4): the shipped AE-vs-baseline predictions name
their AE arm (``ae_arm``: ``on`` or ``meta``) and stratify by ``ruleset``, so a folder holding
ae=off/on/meta runs under self_tuning and external gives one verdict per ruleset and arm.

A synthetic sweep (tests/analysis/synth.py): 12 seeds of regression/AdamW; time to target 40
steps without AE, 20 with ae=on under both rulesets, and ae=meta 10 steps under external (its
tuned trial) but 45 under self_tuning (its committed gains), the tuned arms at different lrs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from analysis.arms import annotate
from analysis.collect import load_runs
from analysis.predictions import default_predictions_dir, load_predictions, validate
from analysis.verdicts import evaluate
from tests.analysis.synth import write_run

STEPS = {
    ("off", "self_tuning"): 40,
    ("on", "self_tuning"): 20,
    ("meta", "self_tuning"): 45,
    ("off", "external"): 40,
    ("on", "external"): 20,
    ("meta", "external"): 10,
}
TRIAL = {"off": 3, "on": 5, "meta": 6}
LR = {"off": 1e-3, "on": 3e-3, "meta": 2e-2}


def _retag(folder: Path, arm: str, ruleset: str) -> None:
    """Make a synthetic record an ``ae=<arm>`` run under ``ruleset`` (tuned: its own trial, lr)."""
    path = folder / "result.json"
    rec = json.loads(path.read_text())
    if arm == "meta":
        rec["overrides"] = [o if not o.startswith("ae=") else "ae=meta" for o in rec["overrides"]]
        rec["arm"] += "-meta"
    if ruleset == "external":
        tuning = {"name": "external", "trial": TRIAL[arm], "budget_trials": 8, "budget_steps": 400}
        rec["config"]["ruleset"] = tuning
        rec["config"]["optimizer"]["lr"] = LR[arm]
        rec["arm"] += "-external"
    path.write_text(json.dumps(rec, indent=1))


@pytest.fixture(scope="module")
def runset(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    root = tmp_path_factory.mktemp("sweep")
    for seed in range(12):
        for (arm, ruleset), steps in STEPS.items():
            folder = write_run(
                root,
                ae=arm != "off",
                seed=seed,
                target_step=steps + seed % 3,
                budget=50,
                name=f"{arm}-{ruleset}-{seed}",
            )
            _retag(folder, arm, ruleset)
    rs = load_runs([root], curves=True)
    annotate(rs)  # the run fields ae_arm and ruleset (as aebench-analyze does)
    return rs


def _verdicts(preds, runset) -> dict[tuple[str, str], str]:  # noqa: ANN001
    v, _ = evaluate(preds, runset, n_boot=500)
    return {(r.prediction, r.stratum.rsplit("ruleset=", 1)[-1]): r.verdict for r in v.itertuples()}


def test_on_and_meta_arms_get_one_verdict_per_ruleset(runset) -> None:  # noqa: ANN001
    names = ("static_speedup", "static_speedup_meta")
    preds = load_predictions([default_predictions_dir() / f"{n}.yaml" for n in names])
    assert _verdicts(preds, runset) == {
        ("static_speedup", "self_tuning"): "supported",  # default AE vs untuned baselines
        ("static_speedup", "external"): "supported",
        ("static_speedup_meta", "self_tuning"): "refuted",  # the committed gains: slower here
        ("static_speedup_meta", "external"): "supported",  # meta-tuned vs tuned, same budget
    }


def test_an_arm_without_ae_arm_mixes_on_and_meta() -> None:
    """Why the predictions name the arm: ``b: {ae: true}`` matches ae=on and ae=meta runs alike,
    so with both in the folder each seed has two b runs (the pairing is ambiguous)."""
    raw = yaml.safe_load((default_predictions_dir() / "static_speedup.yaml").read_text())
    assert raw["b"]["ae_arm"] == "on" and "ruleset" in raw["strata"]
    for name in ("static_speedup_meta", "drift_recovery_meta", "drift_time_to_target_meta"):
        (pred,) = load_predictions([default_predictions_dir() / f"{name}.yaml"])
        assert pred.b["ae_arm"] == ("meta",) and "ruleset" in pred.strata
        assert "ae=off,meta" in pred.sweep


def test_unnamed_ae_arm_is_ambiguous_on_the_same_runs(runset) -> None:  # noqa: ANN001
    raw = yaml.safe_load((default_predictions_dir() / "static_speedup.yaml").read_text())
    raw["b"] = {"ae": True, "ablation": "none"}  # the arm as it was before issue 18
    raw["strata"] = [s for s in raw["strata"] if s != "ruleset"]
    old = validate(raw, "static_speedup_old.yaml", "static_speedup_old")
    v, _ = evaluate([old], runset, n_boot=200)
    assert (v["verdict"] == "inconclusive").all()
    assert v["reason"].str.contains("ambiguous pairing").all(), v["reason"].tolist()


def test_the_record_names_the_ae_config_it_ran(tmp_path: Path) -> None:
    """``ae_arm`` comes from the record (the composed ``ae`` choice), so an arm chosen by an
    experiment's defaults, not on the command line, is named right (not "on" from the flag)."""
    from aebench.runner import JobContext, run_job
    from analysis.arms import annotate
    from tests.helpers import compose_config

    base = ["task=regression", "optimizer=sgdm", "scale=smoke", "steps=4", "trainer.threads=1"]
    cfg, choices = compose_config([*base, "ae=canonical"])
    overrides = list(base)  # as if an experiment's defaults had picked ae=canonical
    record = run_job(cfg, JobContext(tmp_path / "run", choices, overrides, reraise=True))
    assert record.ae_arm == "canonical" and record.ae is True
    rs = load_runs([tmp_path], curves=False)
    annotate(rs)
    assert rs.table["ae_arm"].tolist() == ["canonical"]
