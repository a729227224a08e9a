"""LR schedule shapes over a budget (the factor each applies to the configured lr)."""

from __future__ import annotations

import pytest
import torch

from baselines import schedules


def lrs(make, total: int = 100, lr: float = 1.0, **kw) -> list[float]:  # noqa: ANN001
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=lr)
    sched = make(opt, total, **kw)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_constant() -> None:
    assert lrs(schedules.constant, lr=0.3) == [0.3] * 100


def test_cosine_warmup_peak_and_floor() -> None:
    got = lrs(schedules.cosine, warmup_frac=0.1, min_lr_frac=0.1)
    assert got[0] == pytest.approx(0.1) and got[9] == pytest.approx(1.0)
    assert all(a <= b for a, b in zip(got[:10], got[1:10], strict=False))
    assert all(a >= b for a, b in zip(got[10:], got[11:], strict=False))
    assert got[-1] == pytest.approx(0.1, abs=1e-3)


def test_step_drops_at_milestones() -> None:
    got = lrs(schedules.step, milestones=[0.5, 0.75], gamma=0.1)
    assert got[49] == pytest.approx(1.0) and got[50] == pytest.approx(0.1)
    assert got[74] == pytest.approx(0.1) and got[75] == pytest.approx(0.01)


def test_onecycle_peaks_at_lr() -> None:
    got = lrs(schedules.onecycle, lr=0.5, pct_start=0.3)
    peak = max(range(100), key=got.__getitem__)
    assert 25 <= peak <= 32 and got[peak] == pytest.approx(0.5, rel=1e-3)
    assert got[0] == pytest.approx(0.5 / 25) and got[-1] < 1e-3


# ----------------------------------------------------------------------------- composing with AE
SHAPES = {
    "constant": {},
    "cosine": {"warmup_frac": 0.1},
    "step": {"milestones": [0.3, 0.6], "gamma": 0.5},
    "onecycle": {"pct_start": 0.3},
}


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_schedule_sets_lr_from_its_factor_whatever_was_written(name) -> None:  # noqa: ANN001
    """A layer that writes lr between steps (AE's offset) is not compounded: after each
    ``sched.step()`` the lr is the schedule's own value (torch's chainable MultiStepLR multiplied
    the written lr at each milestone)."""
    clean = lrs(getattr(schedules, name), **SHAPES[name])
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = getattr(schedules, name)(opt, 100, **SHAPES[name])
    for t in range(100):
        assert opt.param_groups[0]["lr"] == pytest.approx(clean[t], rel=1e-12)
        opt.param_groups[0]["lr"] *= 1.5  # an offset written on top of the schedule
        opt.step()
        sched.step()


def _ae_ratio(name: str, steps: int = 400) -> list[float]:
    """Plain-loop SGDm on a stationary noisy linear regression with AE on under the schedule:
    the lr AE applies divided by the schedule's lr, per step."""
    from aebench.ae.config import AEConfig
    from aebench.ae.controller import AEControl

    g = torch.Generator().manual_seed(0)
    a = torch.randn(10, 1, generator=g)
    w = torch.nn.Parameter(torch.zeros(10, 1))
    opt = torch.optim.SGD([w], lr=0.02, momentum=0.9)
    sched = getattr(schedules, name)(opt, steps, **SHAPES[name])
    ctl = AEControl(opt, AEConfig(enabled=True))
    ratios = []
    for _ in range(steps):
        x = torch.randn(32, 10, generator=g)
        loss = ((x @ w - x @ a - 0.1 * torch.randn(32, 1, generator=g)) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        scheduled = opt.param_groups[0]["lr"]
        ctl.before_step(loss.detach())
        ratios.append(opt.param_groups[0]["lr"] / scheduled)
        opt.step()
        sched.step()
    return ratios


@pytest.mark.parametrize("name", ["step", "cosine", "onecycle"])
def test_ae_offset_does_not_depend_on_the_schedule_shape(name) -> None:  # noqa: ANN001
    """AE's multiplier on top of the schedule (applied / scheduled lr) moves smoothly through
    the schedule's changes (no jump at a milestone: the chainable MultiStepLR compounded it,
    1.35 -> 1.82 at one milestone) and stays near the multiplier it has under constant."""
    import math

    const = _ae_ratio("constant")
    got = _ae_ratio(name)
    jumps = [abs(math.log(b / a)) for a, b in zip(got, got[1:], strict=False)]
    assert max(jumps) < 0.05
    assert all(abs(math.log(x / y)) < 0.3 for x, y in zip(got, const, strict=True))
