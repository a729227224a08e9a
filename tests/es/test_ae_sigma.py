"""Issue 21 item 3: AE on ES. The step length decoupled from sigma, the ES-native sigma signal
(AE-4's S on ES: ``ESBinding.noise_S``), the controller's family hook, alpha's drive on ES
(docs/es.md, "AE on ES"); AE in closed loop against vanilla ES: ``test_ae_acceptance.py``."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae.bindings import ESBinding
from aebench.ae.config import validate
from aebench.ae.controller import AEControl
from aebench.es_module import curvature_ratio
from baselines.es import OpenAIES

CFG = validate({"enabled": True})


def bowl(w: torch.Tensor) -> torch.Tensor:
    """A fitness whose curvature swamps its slope at the configured sigma (K >> 1)."""
    return -(100.0 * (w.detach() - 0.01).pow(2)).sum()


def one_step(sigma_now: float, center: bool, n: int = 200) -> tuple[float, float]:
    """(step length, curvature ratio K) of one generation drawn at ``sigma_now`` (configured
    sigma 0.1, same seed, so the same directions)."""
    w = torch.nn.Parameter(torch.zeros(n))
    o = OpenAIES([w], lr=0.01, sigma=0.1, population=32, seed=0)
    o.param_groups[0]["sigma"] = sigma_now
    o.ask()
    fit = o.evaluate(lambda: bowl(w))
    c = float(bowl(w))
    o.tell(fit, center=c if center else None)
    o.step()
    return float(w.detach().norm()), curvature_ratio(fit, c)


def test_step_length_does_not_follow_sigma_into_the_slope_regime() -> None:
    """At 1/300 of the configured sigma the pairs are sorted by slope (K < 1) and their rank
    gaps are much wider than at the configured sigma (K >> 1): without the length factor the
    step grows several-fold; with it, it keeps the configured sigma's length."""
    ref, k_ref = one_step(0.1, center=True)
    small_raw, k_small = one_step(0.1 / 300, center=False)
    small, _ = one_step(0.1 / 300, center=True)
    assert k_ref > 5.0 and k_small < 1.0  # the two regimes
    assert small_raw > 3.0 * ref  # the old decoupling: the step grew as sigma fell
    assert small == pytest.approx(ref, rel=0.25)


def test_length_factor_is_exactly_one_at_the_configured_sigma() -> None:
    """Every run without AE keeps its trajectory bit for bit (the factor is not even applied)."""
    assert one_step(0.1, center=True)[0] == one_step(0.1, center=False)[0]
    w = torch.nn.Parameter(torch.zeros(4))
    o = OpenAIES([w], lr=0.1, sigma=0.1, population=4, seed=0)
    o.ask()
    assert o.length_factor(torch.tensor([1.0, 0.0, 2.0, -1.0]), 0.5, torch.ones(2)) == 1.0


def noise_S_after(sigma: float, generations: int = 30) -> float:
    w = torch.nn.Parameter(torch.zeros(200))
    o = OpenAIES([w], lr=1e-3, sigma=sigma, population=32, seed=1)
    b = ESBinding()
    for _ in range(generations):
        o.ask()
        fit = o.evaluate(lambda: bowl(w))
        o.curvature = curvature_ratio(fit, float(bowl(w)))  # as aebench/es_module.py does
        o.tell(fit, center=float(bowl(w)))
        o.step()
        s = b.noise_S(o, CFG)
    return s


def test_es_S_responds_to_sigma_and_changes_sign_at_k_star() -> None:
    """S/S* = 1 - LP(K^2)/K*^2: near +1 while the population sees slope only (small sigma),
    negative, down to the clip, once curvature swamps the slope (large sigma). The gradient
    noise fraction it replaces stays ~1 at every sigma on ES."""
    small, large = noise_S_after(1e-4), noise_S_after(0.3)
    assert 0.5 < small <= 1.0
    assert large < -1.0 and large >= -CFG.signals.clip


def test_es_S_filters_once_per_generation_and_is_neutral_without_information() -> None:
    w = torch.nn.Parameter(torch.zeros(3))
    o = OpenAIES([w], lr=1e-3, sigma=0.1, population=4, seed=0)
    b = ESBinding()
    assert b.noise_S(o, CFG) == 0.0  # no generation yet
    o.ask()
    o.curvature = math.nan  # flat fitness: nothing to read
    assert b.noise_S(o, CFG) == 0.0
    o.ask()
    o.curvature = 2.0
    first = b.noise_S(o, CFG)
    assert first == pytest.approx(1.0 - 4.0)  # LP starts at the first K^2, K* = 1
    o.curvature = 0.0  # a second call in the same generation (another group) reads, not steps
    assert b.noise_S(o, CFG) == first
    o.ask()
    assert b.noise_S(o, CFG) == pytest.approx(1.0 - 4.0 * (1 - 1 / CFG.signals.tc_var))


def test_controller_reads_the_binding_S_on_es_and_the_gradient_S_elsewhere() -> None:
    w = torch.nn.Parameter(torch.zeros(50))
    es = OpenAIES([w], lr=1e-3, sigma=0.3, population=16, seed=0)
    ctl = AEControl(es, {"enabled": True})
    sgd_w = torch.nn.Parameter(torch.zeros(50))
    sgd = AEControl(torch.optim.SGD([sgd_w], lr=0.1), {"enabled": True})
    for _ in range(3):
        es.ask()
        fit = es.evaluate(lambda: bowl(w))
        es.curvature = curvature_ratio(fit, float(bowl(w)))
        es.tell(fit, center=float(bowl(w)))
        row = ctl.before_step(torch.tensor(-float(bowl(w))))
        es.step()
        sgd_w.grad = torch.randn(50)
        srow = sgd.before_step(torch.tensor(1.0))
    assert row["S"] == ctl.binding.noise_S(es, ctl.cfg) and row["S"] < 0.0
    assert srow["S"] == sgd.groups[0].grad.S


def test_es_sigma_is_not_shrunk_and_its_noise_law_ignores_the_loss_variance() -> None:
    """With the step decoupled, es_sigma is no step: AE-5's shrink leaves it alone and AE-4 on
    ES reads no V (k_v = 0; measured on Rosenbrock with alpha fixed: V and the shrink ran sigma
    to its lower wall while S said raise it). Gradient optimizers keep both."""
    w = torch.nn.Parameter(torch.zeros(5))
    es = AEControl(OpenAIES([w], lr=1e-3, sigma=0.1, population=4), {"enabled": True}).groups[0]
    j = es.kinds.index("es_sigma")
    assert es.params.shrink_mask[j] == 0.0 and es.params.shrink_mask[es.kinds.index("alpha")] == 1
    assert es.params.kappa[2] == 0.0 and es.params.kappa[1] == CFG.noise.kappa_u
    sgd = AEControl(torch.optim.SGD([w], lr=0.1), {"enabled": True}).groups[0]
    assert sgd.params.shrink_mask[sgd.kinds.index("sigma")] == 1.0
    assert sgd.params.kappa[2] == CFG.noise.kappa_v


def test_alpha_has_no_progress_drive_on_es_and_keeps_it_elsewhere() -> None:
    """On ES rho reads ~0 whatever the step (consecutive estimates share only their ~M/n
    gradient component), so the progress term that raised alpha had no brake: on ES alpha's
    w_p is 0; its other terms and every gradient family's w_p stay."""
    w = torch.nn.Parameter(torch.zeros(5))
    es = AEControl(OpenAIES([w], lr=1e-3, sigma=0.1, population=4), {"enabled": True}).groups[0]
    a = es.kinds.index("alpha")
    assert es.params.W[a, 0] == 0.0 and es.fparams.W[a][0] == 0.0
    assert es.params.W[a, 1] == CFG.coefs.alpha.w_v and es.params.W[a, 3] == CFG.coefs.alpha.w_c
    sgd = AEControl(torch.optim.SGD([w], lr=0.1), {"enabled": True}).groups[0]
    assert sgd.params.W[sgd.kinds.index("alpha"), 0] == CFG.coefs.alpha.w_p > 0


def test_es_alpha_does_not_rise_on_a_falling_loss_with_an_unreadable_phase() -> None:
    """Closed loop on a steady 1% fall per generation with rho ~ 0 (what AE read on the
    regression task): alpha stays at its configured value instead of climbing."""
    w = torch.nn.Parameter(torch.zeros(2000))
    es = OpenAIES([w], lr=1e-3, sigma=0.1, population=4, seed=0)
    ctl = AEControl(es, {"enabled": True})
    gen = torch.Generator().manual_seed(0)
    for t in range(200):
        es.ask()
        es.curvature = 1.0  # sigma at its set point: only alpha's drive is under test
        w.grad = torch.randn(2000, generator=gen)  # independent estimates: rho ~ 0
        ctl.before_step(torch.tensor(0.99**t))
        es.step()
    assert abs(ctl.groups[0].grad.rho) < 0.1
    assert ctl.coefficients()["alpha"] <= 1e-3 * (1 + 1e-9)
