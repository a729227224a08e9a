"""Ablation mask: a law that is off ignores its gains (bit-identical), and with every law and
drive term off the optimizer runs exactly as vanilla (no writes, no noise, no RNG draws)."""

from __future__ import annotations

import pytest
import torch

from aebench.ae.config import AEConfig, law_names
from aebench.ae.controller import AEControl
from tests.ae.ae_helpers import regression

# per law: settings of its own gains/parameters that visibly change the run when the law is on
PERTURB: dict[str, dict[str, object]] = {
    "progress": {"coefs.alpha.w_p": 3.0, "coefs.beta1.w_p": 1.0, "drive.tau_p": 0.002},
    "variance": {"coefs.alpha.w_v": 5.0, "coefs.beta2.w_v": -3.0, "drive.tau_v": 0.1},
    "reward": {"coefs.alpha.w_r": 3.0, "drive.tau_r": 0.002},
    "phase": {"coefs.alpha.w_c": 2.0, "coefs.beta1.w_c": 2.0},
    "leak": {"coefs.alpha.leak": 5.0, "coefs.beta1.leak": 5.0},
    "barrier": {"barrier.mu": 5.0, "barrier.width": 0.3},
    "noise": {"noise.kappa_s": 50.0, "noise.kappa_u": 5.0, "noise.eta_sigma": 0.5},
    "resonance": {"resonance.w_m": 3.0, "resonance.kappa": 0.5, "resonance.v_max": 0.01},
    "budget": {"budget.B": 1e-7, "budget.eta_lambda": 1e4, "budget.clip": 1.0},
    "coupling": {"coupling.alpha_from_beta1": -5.0, "coupling.beta1_from_alpha": 3.0},
    "gauge": {
        "gauge.signal": "relative",
        "gauge.eta_gamma": 0.2,
        "gauge.soft_clip": 0.5,
        "gauge.delay": 0,
        "gauge.warmup": 10,
    },
    "lyapunov": {
        "lyapunov.tol": 0.0,
        "lyapunov.window": 2.0,
        "lyapunov.shrink": 0.5,
        "lyapunov.g_min": 0.01,
    },
}


def _key(rows: list[dict]) -> list[dict]:
    """Rows with every float as its repr, so that NaN == NaN and -0.0 != 0.0 (bitwise view)."""
    return [{k: repr(v) for k, v in r.items()} for r in rows]


def _set(cfg: AEConfig, path: str, value: object) -> None:
    *parents, leaf = path.split(".")
    obj = cfg
    for name in parents:
        obj = getattr(obj, name)
    setattr(obj, leaf, value)


def _run(law: str, on: bool, perturbed: bool, opt: str):
    cfg = AEConfig(enabled=True)
    cfg.signals.warmup = 5
    setattr(cfg.laws, law, on)
    if perturbed:
        for path, value in PERTURB[law].items():
            _set(cfg, path, value)
    # the guard only acts once the energy rises: run into the noise floor where it fluctuates
    steps = 150 if law == "lyapunov" else 60
    rows, w, _ = regression(opt, cfg, steps=steps, reward=True)
    return rows, w


def test_every_removable_law_has_a_perturbation():
    assert set(PERTURB) == set(law_names())


@pytest.mark.parametrize("opt", ["sgdm", "adamw"])
@pytest.mark.parametrize("law", sorted(PERTURB))
def test_law_off_ignores_its_gains(law, opt):
    off_a, w_off_a = _run(law, False, False, opt)
    off_b, w_off_b = _run(law, False, True, opt)
    on_a, w_on_a = _run(law, True, False, opt)
    on_b, w_on_b = _run(law, True, True, opt)
    assert not (torch.equal(w_on_a, w_on_b) and _key(on_a) == _key(on_b))  # gains matter when on
    assert torch.equal(w_off_a, w_off_b)
    assert _key(off_a) == _key(off_b)


def _vanilla(opt_name: str, with_ae: bool, steps: int = 30):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    if opt_name == "sgdm":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=1e-4)
    elif opt_name == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    else:
        opt = torch.optim.Adafactor(model.parameters(), lr=1e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.99**t)
    cfg = AEConfig(enabled=True)
    for name in law_names():
        setattr(cfg.laws, name, False)
    ctl = AEControl(opt, cfg, seed=0) if with_ae else None
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 6, generator=g)
        loss = ((model(x) - x[:, :1]) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        if ctl:
            rng = torch.get_rng_state()
            ctl.before_step(loss.detach())
        opt.step()
        if ctl:
            ctl.after_step()
            assert torch.equal(rng, torch.get_rng_state())  # no draw from the global generator
        sched.step()
    groups = [{k: v for k, v in grp.items() if k != "params"} for grp in opt.param_groups]
    return [p.detach().clone() for p in model.parameters()], groups


@pytest.mark.parametrize("opt", ["sgdm", "adamw", "adafactor"])
def test_all_laws_off_is_vanilla_bit_identical(opt):
    ref, ref_groups = _vanilla(opt, False)
    got, groups = _vanilla(opt, True)
    assert all(torch.equal(a, b) for a, b in zip(ref, got, strict=True))
    assert groups == ref_groups
