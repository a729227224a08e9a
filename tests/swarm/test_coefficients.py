"""Reading and shifting a trajectory's coefficients in AE's charts, with and without AE."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae.config import AEConfig
from aebench.ae.controller import AEControl
from aebench.swarm.coefficients import Coefficients
from aebench.swarm.scheduler import consensus_shifts, softmax_weights, weighted_mean
from baselines.schedules import constant, cosine


class Problem:
    """Minibatch linear regression with AdamW, a schedule and (optionally) AE."""

    def __init__(
        self,
        seed: int = 0,
        ae: bool = True,
        lr: float = 1e-2,
        schedule=constant,  # noqa: ANN001
        weight_decay: float = 0.01,
    ) -> None:
        self.g = torch.Generator().manual_seed(seed)
        self.a = torch.randn(8, 1, generator=self.g)
        self.w = torch.nn.Parameter(torch.zeros(8, 1))
        self.opt = torch.optim.AdamW([self.w], lr=lr, weight_decay=weight_decay)
        self.sched = schedule(self.opt, total_steps=400)
        self.ctl = AEControl(self.opt, AEConfig(enabled=True), seed=seed) if ae else None
        self.coefs = Coefficients(self.opt, self.sched, self.ctl)

    def step(self, n: int = 1) -> None:
        for _ in range(n):
            x = torch.randn(32, 8, generator=self.g)
            y = x @ self.a + 0.3 * torch.randn(32, 1, generator=self.g)
            loss = ((x @ self.w - y) ** 2).mean()
            self.opt.zero_grad()
            loss.backward()
            if self.ctl is not None:
                self.ctl.before_step(loss.detach())
            self.opt.step()
            if self.ctl is not None:
                self.ctl.after_step()
            self.sched.step()


def test_genotype_keys_and_charts_without_ae() -> None:
    p = Problem(ae=False, weight_decay=0.0)
    assert set(p.coefs.keys) == {"alpha", "beta1", "beta2", "eps"}  # wd 0 stays off
    z = p.coefs.read()
    assert z["alpha"] == pytest.approx(math.log(1e-2))
    assert z["beta1"] == pytest.approx(math.log(10.0))  # horizon 1/(1-0.9)


def test_shift_without_ae_moves_the_value_and_the_schedule() -> None:
    p = Problem(ae=False)
    p.coefs.shift({"alpha": math.log(2.0), "beta1": math.log(2.0)})
    g = p.opt.param_groups[0]
    assert g["lr"] == pytest.approx(2e-2) and p.sched.base_lrs[0] == pytest.approx(2e-2)
    assert g["betas"][0] == pytest.approx(0.95)  # horizon 10 -> 20
    p.step(5)
    assert g["lr"] == pytest.approx(2e-2)  # LambdaLR keeps the shifted level


def test_shift_with_ae_is_exact_now_and_keeps_aes_offset() -> None:
    p = Problem()
    p.step(60)
    gs = p.ctl.groups[0]
    j = gs.kinds.index("alpha")
    assert gs.delta[j] != 0.0  # AE has moved lr off its base
    before = p.coefs.read()
    delta_before = list(gs.delta)
    dz = {"alpha": 0.3, "beta1": -0.2, "beta2": 0.1, "eps": 0.5, "weight_decay": -0.4}
    p.coefs.shift(dz)
    after = p.coefs.read()
    for key, d in dz.items():
        assert after[key] == pytest.approx(before[key] + d, abs=1e-12), key
    for k, kind in enumerate(gs.kinds):  # the genotype moved; AE's offsets are kept
        if kind in ("alpha", "eps"):
            assert gs.delta[k] == pytest.approx(delta_before[k], abs=1e-12)
    # the optimizer uses the shifted coefficient at the next step, and AE does not re-base it
    lr_next = p.opt.param_groups[0]["lr"]
    assert math.log(lr_next) == pytest.approx(after["alpha"], abs=1e-12)


@pytest.mark.parametrize("ae", [False, True])
@pytest.mark.parametrize("schedule", [constant, cosine])
def test_a_shift_lasts_under_ae_and_a_schedule(schedule, ae: bool) -> None:  # noqa: ANN001
    a, b = Problem(seed=3, schedule=schedule, ae=ae), Problem(seed=3, schedule=schedule, ae=ae)
    a.step(40)
    b.step(40)
    assert a.coefs.read() == b.coefs.read()
    b.coefs.shift({"alpha": math.log(2.0)})
    a.step(100)
    b.step(100)
    gap = b.coefs.read()["alpha"] - a.coefs.read()["alpha"]
    # the schedule's level and AE's base (its prior, where the leak pulls) moved by log 2 for
    # good; what differs beyond that is AE's own offset, regulated in closed loop around it
    assert b.sched.base_lrs[0] / a.sched.base_lrs[0] == pytest.approx(2.0)
    offsets = 0.0
    if ae:
        offsets = b.ctl.groups[0].delta[0] - a.ctl.groups[0].delta[0]
        assert offsets != 0.0
    assert gap - offsets == pytest.approx(math.log(2.0), abs=1e-9)


def test_consensus_through_real_optimizers_moves_by_exactly_kappa() -> None:
    probs = [Problem(seed=s, lr=lr) for s, lr in ((0, 1e-2), (1, 3e-3), (2, 3e-2))]
    for i, p in enumerate(probs):
        p.step(30 + 20 * i)  # different AE states, offsets non-zero
    coefs = [p.coefs.read() for p in probs]
    weights = softmax_weights([0.0, 0.5, 1.0], 5.0)
    kappa = 0.05
    bar = weighted_mean(coefs, weights)
    for p, dz in zip(probs, consensus_shifts(coefs, weights, kappa), strict=True):
        p.coefs.shift(dz)
    for p, c in zip(probs, coefs, strict=True):
        now = p.coefs.read()
        for k in c:
            assert now[k] == pytest.approx((1 - kappa) * c[k] + kappa * bar[k], abs=1e-12)
