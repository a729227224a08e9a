"""AEConfig: law names, validation messages, Hydra structured-config compatibility."""

from __future__ import annotations

import pytest
from omegaconf import OmegaConf

from aebench.ae.config import AEConfig, check_law_names, coerce, law_names, validate

REQUIRED = {
    "progress",
    "variance",
    "reward",
    "phase",
    "leak",
    "barrier",
    "noise",
    "resonance",
    "budget",
    "coupling",
    "gauge",
    "lyapunov",
}


def test_law_names_cover_every_removable_law():
    assert set(law_names()) >= REQUIRED


def test_unknown_law_lists_valid_names():
    with pytest.raises(ValueError, match="nosuch.*valid: progress, variance"):
        check_law_names(["gauge", "nosuch"])
    with pytest.raises(ValueError, match="ae.laws.nosuch"):
        coerce({"laws": {"nosuch": False}})


@pytest.mark.parametrize(
    ("path", "value", "match"),
    [
        ("eta_a", -1.0, r"ae.eta_a=-1.0: must be a finite number >= 0"),
        ("rho_buffer", "both", r"ae.rho_buffer='both': allowed: copy, momentum"),
        ("coefs.beta1.hi", 1.0, r"ae.coefs.beta1.lo/hi"),
        ("gauge.target", "x", r"ae.gauge.target='x': allowed: calibrate, absolute"),
        ("signals.tc_var", 0.5, r"ae.signals.tc_var=0.5: must be a time constant >= 1"),
    ],
)
def test_validate_names_key_value_and_allowed(path, value, match):
    cfg = AEConfig()
    *parents, leaf = path.split(".")
    obj = cfg
    for name in parents:
        obj = getattr(obj, name)
    setattr(obj, leaf, value)
    with pytest.raises(ValueError, match=match):
        validate(cfg)


def test_structured_config_roundtrip():
    node = OmegaConf.structured(AEConfig)
    node.laws.gauge = False
    node.coefs.alpha.w_p = 2.0
    cfg = coerce(node)
    assert isinstance(cfg, AEConfig)
    assert cfg.laws.gauge is False and cfg.coefs.alpha.w_p == 2.0
    assert validate(cfg) is cfg
