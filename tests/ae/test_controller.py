"""Controller plumbing: schedules, the momentum-buffer option, sigma noise, families."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae.bindings import add_parameter_noise, binding_for
from aebench.ae.config import AEConfig
from aebench.ae.controller import AEControl
from tests.ae.ae_helpers import only, regression


def test_alpha_is_a_multiplier_on_top_of_a_lambda_schedule():
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.9**t)
    cfg = only("progress", "leak")
    cfg.signals.warmup = 2
    ctl = AEControl(opt, cfg)
    ratios = []
    for t in range(40):
        p.grad = torch.ones(4)
        ctl.before_step(torch.tensor(10 * 0.98**t))
        ratios.append(opt.param_groups[0]["lr"] / (0.1 * 0.9**t))
        opt.step()
        sched.step()
    delta = ctl.groups[0].delta[0]
    assert ratios[-1] == pytest.approx(math.exp(delta), rel=1e-12)  # lr = scheduled * exp(delta)
    assert 1.0 < ratios[-1] < 2.0  # progress raised it, without compounding with the schedule


def test_momentum_buffer_option_uses_no_extra_memory():
    cfg = AEConfig(enabled=True)
    cfg.rho_buffer = "momentum"
    rows, _, ctl = regression("sgdm", cfg, steps=40)
    assert ctl.groups[0].prev == {}
    assert rows[-1]["rho"] != 0.0 and -1.0 <= rows[-1]["rho"] <= 1.0 and rows[-1]["S"] > 0.0
    rows_copy, _, ctl_copy = regression("sgdm", AEConfig(enabled=True), steps=40)
    assert len(ctl_copy.groups[0].prev) == 1  # one gradient copy per parameter
    with pytest.raises(ValueError, match="Adafactor has no momentum buffer"):
        AEControl(torch.optim.Adafactor([torch.nn.Parameter(torch.zeros(2))]), cfg)


def test_noise_form_and_own_generator():
    torch.manual_seed(0)
    p = torch.full((1000,), 2.0)
    before = torch.get_rng_state()
    gen = torch.Generator().manual_seed(3)
    q = p.clone()
    add_parameter_noise([q], 1e-2, 1e-3, gen)
    assert torch.equal(before, torch.get_rng_state())  # the global stream is untouched
    assert (q - p).std().item() == pytest.approx(2.0 * 1e-2, rel=0.1)  # sigma * RMS(p)
    r = p.clone()
    add_parameter_noise([r], 0.0, 1e-3, gen)
    assert torch.equal(r, p)


def test_sigma_noise_is_applied_after_the_step_and_seeded():
    cfg = only()
    cfg.noise.sigma_init = 1e-3
    a = regression("sgdm", cfg, steps=5, seed=0)[1]
    b = regression("sgdm", cfg, steps=5, seed=0)[1]
    vanilla = regression("sgdm", only(), steps=5, seed=0)[1]
    assert torch.equal(a, b) and not torch.equal(a, vanilla)


@pytest.mark.parametrize(
    ("opt", "family"), [("sgdm", "sgd"), ("adamw", "adam"), ("adafactor", "adafactor")]
)
def test_families_run_and_stay_finite(opt, family):
    rows, w, ctl = regression(opt, AEConfig(enabled=True), steps=60)
    assert ctl.binding.family == family
    assert torch.isfinite(w).all()
    assert all(math.isfinite(rows[-1][k]) for k in ("T", "V", "rho", "S", "gamma", "lr"))


def test_unsupported_optimizer_is_named():
    with pytest.raises(ValueError, match="optimizer=RMSprop"):
        binding_for(torch.optim.RMSprop([torch.nn.Parameter(torch.zeros(2))]))


def test_param_groups_are_suffixed():
    w1, w2 = torch.nn.Parameter(torch.zeros(3)), torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([{"params": [w1]}, {"params": [w2], "lr": 0.01}], lr=0.1, momentum=0.9)
    ctl = AEControl(opt, AEConfig(enabled=True))
    w1.grad, w2.grad = torch.ones(3), torch.ones(3)
    row = ctl.before_step(torch.tensor(1.0))
    assert row["lr"] == 0.1 and row["lr/pg1"] == 0.01 and "rho/pg1" in row


@pytest.mark.parametrize("unequal_steps", [False, True])
def test_adam_preconditioner_statistics_match_their_definition(unequal_steps):
    from aebench.ae.bindings import AdamBinding

    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(5, 3)), torch.nn.Parameter(torch.randn(7))]
    opt = torch.optim.AdamW(ps, lr=1e-2)
    for _ in range(3):
        for p in ps:
            p.grad = torch.randn_like(p)
        opt.step()
    if unequal_steps:  # e.g. a parameter that joined later: the per-tensor path
        opt.state[ps[1]]["step"] = torch.tensor(1.0)
    for p in ps:
        p.grad = torch.randn_like(p)
    got = AdamBinding().precond(opt, opt.param_groups[0], ps, [p.grad for p in ps])
    sq = gpg = 0.0
    for p in ps:
        st = opt.state[p]
        bc = 1 - 0.999 ** float(st["step"])
        u = (p.grad / ((st["exp_avg_sq"] / bc).sqrt() + 1e-8)).double()
        sq += float((u * u).sum())
        gpg += float((u * p.grad.double()).sum())
    assert got.tolist() == pytest.approx([sq, gpg], rel=1e-5)
