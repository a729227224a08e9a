"""aebench.meta: the functional AE inner loop and meta-training of the gains (issue 18, AE-9)."""

from __future__ import annotations

import json
import math

import pytest
import torch

from aebench.ae.config import AEConfig
from aebench.meta.gains import GainSet, all_gains
from aebench.meta.inner import OptSpec, init_state, inner_step
from aebench.meta.problems import _Point, make_problem
from aebench.meta.train import HELDOUT_SEED_BASE, MetaSettings, evaluate, meta_train


def _quadratic_cfg() -> AEConfig:
    cfg = AEConfig()
    cfg.signals.warmup = 2  # AE updates from the third step on
    cfg.gauge.warmup = 2  # the set point q* is fixed before any gain can move theta
    cfg.gauge.delay = 0
    cfg.laws.lyapunov = False  # the guard is a discrete rule (detached): keep it out of gradcheck
    cfg.eta_a = 0.2  # large enough that the gains move theta visibly within 7 steps
    cfg.signals.tc_trend = cfg.signals.tc_var = cfg.signals.tc_rho = 3.0
    return cfg


def _quadratic_final(phi: torch.Tensor, opt: str, steps: int = 7) -> torch.Tensor:
    """Validation loss of a 3-D quadratic after ``steps`` AE steps, as a function of phi."""
    cfg = _quadratic_cfg()
    spec = OptSpec(opt, lr=0.1 if opt == "sgdm" else 0.05)
    gs = GainSet.from_config(cfg, spec.kinds)
    gains = all_gains(cfg, spec.kinds, gs.values(phi))
    a = torch.tensor([1.0, 3.0, 0.5], dtype=torch.float64)
    shift = torch.tensor([[0.3, -0.2, 0.1], [-0.1, 0.2, 0.05]], dtype=torch.float64)

    def loss_fn(f, theta, t):  # a minibatch-like shifting target: T, V, rho all move
        x = f(theta, theta["x"])
        return 0.5 * (a * (x - shift[t % 2]) ** 2).sum()

    st = init_state({"x": torch.tensor([1.0, -1.0, 2.0], dtype=torch.float64)}, spec, cfg)
    for _ in range(steps):
        st, _ = inner_step(st, _Point(), loss_fn, gains, spec, cfg)
    return 0.5 * (a * st["theta"]["x"] ** 2).sum()


def _phi0(opt: str) -> torch.Tensor:
    cfg = _quadratic_cfg()
    return GainSet.from_config(cfg, OptSpec(opt, 0.1).kinds).phi0.clone()


@pytest.mark.parametrize("opt", ["sgdm", "adam"])
def test_closed_loop_gradcheck(opt):
    """The analytic meta-gradient matches finite differences through the closed loop.

    The signals T, V, rho, S are computed from the loss and gradient at theta_t, which depends on
    the earlier gains: finite differences see that path, so the analytic gradient only matches
    because it flows through the signals too (with the signals detached this check fails).
    """
    phi = _phi0(opt).requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda p: _quadratic_final(p, opt), (phi,), eps=1e-6, atol=1e-6, rtol=1e-4
    )
    (g,) = torch.autograd.grad(_quadratic_final(phi, opt), phi)
    assert g.abs().max() > 1e-6  # the gains do move the outcome


def test_signal_path_is_in_the_gradient():
    """Detaching the signals changes the meta-gradient: the loop is closed, not scripted."""
    import aebench.meta.inner as inner

    phi = _phi0("sgdm").requires_grad_(True)
    (closed,) = torch.autograd.grad(_quadratic_final(phi, "sgdm"), phi)
    orig = inner.loss_signal_step

    def detached(*args, **kw):
        return tuple(x.detach() for x in orig(*args, **kw))

    inner.loss_signal_step = detached
    try:
        (opened,) = torch.autograd.grad(_quadratic_final(phi, "sgdm"), phi)
    finally:
        inner.loss_signal_step = orig
    assert not torch.allclose(closed, opened, rtol=1e-3, atol=1e-9)


@pytest.mark.parametrize("opt", ["sgdm", "adam"])
def test_vanilla_functional_optimizer_matches_torch(opt):
    """With AE off, the functional SGDm / Adam steps are torch.optim's SGD(momentum) / Adam."""
    cfg = AEConfig()
    prob = make_problem("regression", opt, 3)
    st = init_state(prob.params, prob.spec, cfg)
    for _ in range(5):
        st, _ = inner_step(
            st, prob.model, prob.loss_fn, {}, prob.spec, cfg, create_graph=False, ae=False
        )
    ref = {k: v.clone().requires_grad_(True) for k, v in prob.params.items()}
    o = (
        torch.optim.SGD(list(ref.values()), lr=prob.spec.lr, momentum=0.9)
        if opt == "sgdm"
        else torch.optim.Adam(list(ref.values()), lr=prob.spec.lr, eps=1e-8)
    )

    def f(p, x):
        return torch.func.functional_call(prob.model, p, (x,))

    for t in range(5):
        o.zero_grad()
        prob.loss_fn(f, ref, t).backward()
        o.step()
    for k in ref:
        torch.testing.assert_close(st["theta"][k], ref[k].detach(), rtol=1e-6, atol=1e-9)


def test_meta_training_deterministic():
    s = MetaSettings(K=5, horizon=30, outer_steps=6, problems=["rosenbrock"], optimizers=["sgdm"])
    _, phi1, h1 = meta_train(s)
    _, phi2, h2 = meta_train(MetaSettings(**s.__dict__))
    assert torch.equal(phi1, phi2)
    assert [r["outer_loss"] for r in h1] == [r["outer_loss"] for r in h2]
    assert not torch.equal(phi1, GainSet.from_config(AEConfig(), ["alpha", "beta1"]).phi0)


@pytest.mark.slow
def test_meta_training_lowers_heldout_validation_loss():
    """On regression with AE-Adam, the learned gains beat the defaults on held-out seeds."""
    s = MetaSettings(
        K=20, horizon=200, outer_steps=60, problems=["regression"], optimizers=["adam"]
    )
    gs, phi, hist = meta_train(s)
    seeds = [HELDOUT_SEED_BASE + i for i in range(3)]
    before = evaluate(None, s.problems, s.optimizers, s.horizon, seeds)["regression/adam"]
    after = evaluate(gs.values(phi), s.problems, s.optimizers, s.horizon, seeds)["regression/adam"]
    assert after < 0.97 * before, (before, after)


def test_settings_bad_input_names_key():
    with pytest.raises(ValueError, match="horizon=5"):
        meta_train(MetaSettings(K=10, horizon=5))
    with pytest.raises(ValueError, match="optimizers=sgdm,lion: lion is not one of sgdm, adam"):
        meta_train(MetaSettings(optimizers=["sgdm", "lion"]))
    with pytest.raises(ValueError, match="problems=mnist"):
        meta_train(MetaSettings(problems=["mnist"]))


def test_committed_gains_compose_as_ae_meta():
    """``ae=meta`` on a fresh clone: Hydra composes ae=on plus the committed learned gains."""
    from aebench.paths import config_dir
    from tests.helpers import compose_config

    data = json.loads((config_dir() / "ae" / "meta_gains.json").read_text())
    cfg, _ = compose_config(["ae=meta"])
    on, _ = compose_config(["ae=on"])
    assert cfg.ae.enabled is True
    for key, value in data["gains"].items():
        node = cfg.ae
        for part in key.split("."):
            node = node[part]
        assert math.isclose(float(node), value, rel_tol=1e-9), key
    assert cfg.ae.eta_a == on.ae.eta_a  # everything not learned is ae=on's
    assert "aebench-meta" in (config_dir() / "ae" / "meta.yaml").read_text().splitlines()[2]
