"""AE-8 gauge: multiplying the loss by c leaves the gamma trajectory nearly unchanged with the
gauge on, and not with it off (SGDm on minibatch linear regression, plain loop).

The law is isolated: gauge alone vs every law off, so that the other (scale-free) laws' own
reactions to the changed dynamics (a tenfold effective step also trips resonance and variance)
do not blur what AE-8 does.
"""

from __future__ import annotations

import math

import pytest

from aebench.ae.config import AEConfig
from tests.ae.ae_helpers import only, regression

STEPS = 300
LR = 0.02


def _cfg(gauge: bool, q_star: float | None = None) -> AEConfig:
    cfg = only("gauge") if gauge else only()
    cfg.gauge.delay, cfg.gauge.warmup = 10, 20  # a short calibration: these runs are short
    if q_star is not None:  # the set point of the unscaled run, given as an absolute target
        cfg.gauge.target = "absolute"
        cfg.gauge.gamma_star = q_star
    return cfg


def _gap(a, b):
    h = STEPS // 2
    pairs = zip(a[h:], b[h:], strict=True)
    return sum(abs(math.log(x["gamma"] / y["gamma"])) for x, y in pairs) / (STEPS - h)


@pytest.mark.parametrize("c", [0.1, 10.0])
def test_gauge_matches_gamma_across_loss_scale(c):
    _, _, ref_ctl = regression("sgdm", _cfg(True), steps=40, lr=LR)
    q_star = ref_ctl.groups[0].gamma_star  # calibrated on the c = 1 run
    assert q_star is not None and q_star > 0
    gap = {}
    for on in (True, False):
        base, _, _ = regression("sgdm", _cfg(on, q_star), STEPS, lr=LR)
        scaled, _, _ = regression("sgdm", _cfg(on, q_star), STEPS, lr=LR, scale=c)
        gap[on] = _gap(base, scaled)
        if on:
            # alpha -> alpha / c relative to the unscaled run under the same set point
            assert scaled[-1]["lr"] == pytest.approx(base[-1]["lr"] / c, rel=0.3)
    # |log c| = 2.3: off, gamma follows the scale; on, it stays near the unscaled trajectory
    assert gap[False] > 0.5 * abs(math.log(c))
    assert gap[True] < 0.1 * abs(math.log(c))


def test_calibrated_gauge_undoes_a_scale_change_during_the_run():
    """Default target (calibrate): a loss scale applied after calibration is answered by alpha."""
    import torch

    from aebench.ae.controller import AEControl

    def run(gauge: bool) -> float:
        g = torch.Generator().manual_seed(0)
        a = torch.randn(10, 1, generator=g)
        w = torch.nn.Parameter(torch.zeros(10, 1))
        opt = torch.optim.SGD([w], lr=LR, momentum=0.9)
        ctl = AEControl(opt, _cfg(gauge))
        for t in range(200):
            x = torch.randn(32, 10, generator=g)
            loss = (0.1 if t >= 60 else 1.0) * ((x @ w - x @ a) ** 2).mean()
            opt.zero_grad()
            loss.backward()
            ctl.before_step(loss.detach())
            opt.step()
        return opt.param_groups[0]["lr"]

    assert run(True) > 5 * LR
    assert run(False) == LR


def test_auto_signal_per_family():
    """``gauge.signal=auto``: relative q on SGD; idle on the scale-invariant Adam and Adafactor."""
    import torch

    from aebench.ae.controller import AEControl

    def ctl(opt_cls, signal="auto", **kw):
        cfg = AEConfig(enabled=True)
        cfg.gauge.signal = signal
        return AEControl(opt_cls([torch.nn.Parameter(torch.zeros(2))], **kw), cfg)

    assert ctl(torch.optim.SGD, lr=0.1).gauge_signal == "relative"
    assert ctl(torch.optim.AdamW).gauge_signal == "none"
    assert ctl(torch.optim.Adafactor).gauge_signal == "none"
    assert ctl(torch.optim.AdamW, signal="step").gauge_signal == "step"


def test_idle_gauge_never_calibrates_or_moves_alpha():
    cfg = only("gauge")
    cfg.gauge.signal = "none"
    rows, _, ctl = regression("adamw", cfg, steps=60, scale=10.0)
    assert ctl.groups[0].gamma_star is None
    assert {r["lr"] for r in rows} == {1e-2}
