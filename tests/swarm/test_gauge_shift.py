"""A swarm/PBT shift of the lr survives AE's gauge (issue 13): the gauge's target moves with the
base, so a shifted trajectory keeps its shifted lr instead of being pulled back to the set point
calibrated before the shift."""

from __future__ import annotations

import math

import torch

from aebench.ae.config import AEConfig
from aebench.ae.controller import AEControl
from aebench.swarm.coefficients import Coefficients
from baselines.schedules import constant


def _run(shift: float, steps: int = 600, at: int = 300) -> list[float]:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(10, 1, generator=g)
    w = torch.nn.Parameter(torch.zeros(10, 1))
    opt = torch.optim.SGD([w], lr=0.02, momentum=0.9)
    sched = constant(opt, steps)
    ctl = AEControl(opt, AEConfig(enabled=True))
    coefs = Coefficients(opt, sched, ctl)
    applied = []
    for t in range(steps):
        if t == at and shift:
            coefs.shift({"alpha": shift})
        x = torch.randn(32, 10, generator=g)
        loss = ((x @ w - x @ a - 0.1 * torch.randn(32, 1, generator=g)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        ctl.before_step(loss.detach())
        applied.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert ctl.groups[0].gamma_star is not None
    return applied


def test_lr_shift_survives_the_gauge():
    ref, shifted = _run(0.0), _run(math.log(2.0))
    ratio = [b / a for a, b in zip(ref[-50:], shifted[-50:], strict=True)]
    mean = math.exp(sum(map(math.log, ratio)) / len(ratio))
    assert 1.6 < mean < 2.5


def test_plain_sgd_momentum_is_not_in_the_swarm_genotype():
    w = torch.nn.Parameter(torch.zeros(3))
    opt = torch.optim.SGD([w], lr=0.1, momentum=0.0)
    coefs = Coefficients(opt, None, None)
    assert "beta1" not in coefs.keys and "alpha" in coefs.keys
