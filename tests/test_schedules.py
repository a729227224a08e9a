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
