"""Search spaces declared by the arm's own YAMLs (issue 18, item 1): aebench.tuning.search_space
reads ``optimizer.search_space`` and, for AE arms, ``ae.search_space`` from the arm's config."""

from __future__ import annotations

import json

import pytest
from omegaconf import OmegaConf

from aebench.tuning import TuningError, draw_trials, run_stage, search_space
from tests.helpers import compose_config

RULESET = {
    "name": "external",
    "trials": 4,
    "tuning_seeds": 1,
    "tuning_seed_base": 100000,
    "seed": 0,
}
LR = {"optimizer.lr": {"low": 1e-3, "high": 1e-1, "log": True}}


def _arm(opt_space=None, ae_space=None) -> dict:  # noqa: ANN001
    """An arm's config: ``None`` leaves the component's ``search_space`` key out entirely."""
    opt: dict = {"lr": 0.1}
    ae: dict = {"enabled": True}
    if opt_space is not None:
        opt["search_space"] = opt_space
    if ae_space is not None:
        ae["search_space"] = ae_space
    return {"optimizer": opt, "ae": ae}


def test_the_arms_yaml_declares_the_space() -> None:
    scale = {"ae.gauge.scale": {"low": 0.25, "high": 4.0, "log": True}}
    assert search_space(_arm(LR, scale), True) == {**LR, **scale}
    assert search_space(_arm(LR, scale), False) == LR  # AE's space: AE arms only
    assert search_space(_arm(LR, None), True) == LR  # an AE that declares none: the lr only


@pytest.mark.parametrize("optimizer", ["sgd", "sgdm", "adam", "adamw", "adafactor", "prodigy"])
def test_every_gradient_optimizer_and_ae_declare_theirs(optimizer) -> None:  # noqa: ANN001
    cfg, _ = compose_config([f"optimizer={optimizer}", "ae=meta", "ruleset=external"])
    arm = OmegaConf.to_container(cfg, resolve=True)
    assert "search" not in arm["ruleset"]  # the ruleset file holds no space
    space = search_space(arm, True)
    assert set(space) == {"optimizer.lr", "ae.eta_a", "ae.gauge.scale"}
    lo, hi = space["optimizer.lr"]["low"], space["optimizer.lr"]["high"]
    assert lo <= arm["optimizer"]["lr"] <= hi  # the task's tuned lr lies inside


def test_the_gauge_set_point_scale_is_a_config_key() -> None:
    cfg, _ = compose_config(["ae=on", "ae.gauge.scale=2"])
    assert cfg.ae.gauge.scale == 2.0
    from aebench.ae.config import validate

    with pytest.raises(ValueError, match="ae.gauge.scale"):
        validate(compose_config(["ae=on", "ae.gauge.scale=0"])[0].ae)


@pytest.mark.parametrize(
    ("arm", "needle"),
    [
        (_arm(None), "optimizer.search_space={}: ruleset=external tunes each arm over the space"),
        (
            _arm({"ae.eta_a": {"low": 1, "high": 2}}),
            "optimizer.search_space ae.eta_a: the optimizer YAML",
        ),
        (_arm({"optimizer.lr": {"low": 2, "high": 1}}), "optimizer.lr: low=2.0, high=1.0"),
        (_arm({"optimizer.lr": {"low": 0, "high": 1, "log": True}}), "a log range needs low > 0"),
        (_arm({"optimizer.lr": 0.1}), "optimizer.lr=0.1: need {low, high[, log]}"),
    ],
)
def test_bad_declarations_are_one_line(arm, needle) -> None:  # noqa: ANN001
    with pytest.raises(TuningError) as err:
        search_space(arm, True)
    assert needle in str(err.value) and "\n" not in str(err.value)


def test_es_optimizer_yaml_space_is_used() -> None:
    cfg, _ = compose_config(["optimizer=openai_es", "ruleset=external"])
    arm = {"optimizer": OmegaConf.to_container(cfg.optimizer), "ae": {"enabled": False}}
    space = search_space(arm, False)
    assert set(space) == {"optimizer.lr", "optimizer.sigma"}  # conf/optimizer/openai_es.yaml


def test_run_stage_draws_from_the_declared_space(tmp_path) -> None:  # noqa: ANN001
    seen = []

    def runner(overrides, folder):  # noqa: ANN001, ANN202
        seen.append(overrides)
        sigma = float(next(o for o in overrides if o.startswith("optimizer.sigma=")).split("=")[1])
        rec = {"status": "completed", "steps": 5, "metric": {"final": sigma, "mode": "min"}}
        folder.mkdir(parents=True)
        (folder / "result.json").write_text(json.dumps(rec))
        return rec

    space = {**LR, "optimizer.sigma": {"low": 1e-3, "high": 1.0, "log": True}}
    extra = run_stage("es", [], RULESET, False, [0], tmp_path, runner, _arm(space))
    points = draw_trials(space, 4, 0)
    best = min(range(4), key=lambda i: points[i]["optimizer.sigma"])
    assert f"ruleset.trial={best}" in extra and len(seen) == 4
    assert all(any(o.startswith("optimizer.sigma=") for o in c) for c in seen)
