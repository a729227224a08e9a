"""The AE config is validated once on its way from the command line to the controller (issue 16):
:func:`aebench.ae.config.validate` marks the AEConfig it builds, and the callback and the
controller take a marked one as it is; anything else they still validate."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from omegaconf import OmegaConf

import aebench.ae.config as ae_config
from aebench.ae.callback import AEController
from aebench.ae.config import AEConfig
from aebench.ae.controller import AEControl


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The type of every config :func:`aebench.ae.config.validate` is called on."""
    seen: list[str] = []
    real = ae_config.validate

    def counting(cfg: object) -> AEConfig:
        seen.append(type(cfg).__name__)
        return real(cfg)

    monkeypatch.setattr(ae_config, "validate", counting)
    return seen


def _optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1, momentum=0.9)


def test_the_jobs_check_reaches_the_controller_unrepeated(checks: list[str]) -> None:
    from aebench.validation import validate_config
    from tests.helpers import compose_config

    cfg, _ = compose_config(["ae=on"])
    ae = validate_config(cfg)
    assert checks == ["DictConfig"] and isinstance(ae, AEConfig)
    callback = AEController(ae, seed=0)
    control = AEControl(_optimizer(), callback.cfg, seed=0)  # as the callback builds its own
    assert checks == ["DictConfig"] and callback.cfg is ae and control.cfg is ae
    assert validate_config(compose_config(["ae=off"])[0]) is None


def test_a_mapping_is_validated_by_the_callback_alone(checks: list[str]) -> None:
    callback = AEController(OmegaConf.create({"enabled": True, "every": 2}), seed=0)
    AEControl(_optimizer(), callback.cfg, seed=0)
    assert checks == ["DictConfig"] and callback.cfg.every == 2
    with pytest.raises(ValueError, match="ae.every=0: must be an integer >= 1"):
        AEController({"enabled": True, "every": 0})


def test_a_config_made_or_changed_in_code_is_checked_each_time(checks: list[str]) -> None:
    cfg = AEConfig(enabled=True)
    AEControl(_optimizer(), cfg)
    cfg.every = 0  # its owner changed it: the next controller checks it again
    with pytest.raises(ValueError, match="ae.every=0"):
        AEControl(_optimizer(), cfg)
    built = ae_config.validate({"enabled": True})
    with pytest.raises(ValueError, match="ae.every=0"):
        AEControl(_optimizer(), dataclasses.replace(built, every=0))  # a copy is not marked
    assert checks == ["AEConfig", "AEConfig", "dict", "AEConfig"]


def test_a_job_validates_its_ae_config_once(checks: list[str], tmp_path) -> None:  # noqa: ANN001
    from tests.helpers import run_in_process

    _, rec = run_in_process(["ae=on", "task=regression", "steps=4", "scale.evals=1"], tmp_path)
    assert rec["status"] == "completed" and rec["ae"] is True
    assert checks == ["DictConfig"]  # validate_config's; the callback and controller reuse it
