"""``ae.every = k``: one coefficient update per k steps, integrating k steps of the laws."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae.config import AEConfig, all_off
from aebench.ae.controller import AEControl
from tests.ae.ae_helpers import only, regression


def _lrs(rows: list[dict]) -> list[float]:
    return [r["lr"] for r in rows]


def test_coefficients_change_only_on_update_steps():
    k = 5
    rows, _, _ = regression("adamw", AEConfig(enabled=True, every=k), steps=120)
    lrs = _lrs(rows)
    changed = [t for t in range(1, len(lrs)) if lrs[t] != lrs[t - 1]]
    assert changed, "the controller never moved lr"
    assert all(t % k == 0 for t in changed)


def test_update_integrates_k_steps_of_the_drive():
    # a constant drive (phase term with rho = 1 from identical gradients, nothing else on):
    # after n steps log alpha has moved by the same amount whatever the cadence
    moved = {}
    for k in (1, 4):
        cfg = only("phase", cfg=AEConfig(enabled=True, every=k))
        cfg.signals.warmup = 0
        cfg.signals.tc_rho = 1.0
        p = torch.nn.Parameter(torch.zeros(4))
        opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
        ctl = AEControl(opt, cfg)
        for _ in range(41):
            p.grad = torch.ones(4)
            ctl.before_step(torch.tensor(1.0))
        moved[k] = math.log(opt.param_groups[0]["lr"] / 0.1)
    assert moved[1] > 0.0
    # k = 4 misses the first update's drive (no previous gradient yet) and the steps in between
    assert moved[4] == pytest.approx(moved[1], rel=0.15)


def test_noise_of_k_steps_is_added_at_once():
    for k, expect_noised in ((1, 6), (3, 2)):
        cfg = only("noise", cfg=AEConfig(enabled=True, every=k))
        cfg.noise.sigma_init = 1e-4
        p = torch.nn.Parameter(torch.ones(100))
        opt = torch.optim.SGD([p], lr=0.1)  # zero gradients: only the noise moves p
        ctl = AEControl(opt, cfg)
        noised = 0
        for _ in range(6):
            p.grad = torch.zeros(100)
            before = p.detach().clone()
            ctl.before_step(torch.tensor(1.0))
            opt.step()
            ctl.after_step()
            noised += int(not torch.equal(before, p.detach()))
        assert noised == expect_noised


def test_all_off_with_cadence_is_still_vanilla():
    rows_v, w_v, _ = regression("adamw", None, steps=30)
    rows_a, w_a, _ = regression("adamw", all_off(AEConfig(enabled=True, every=3)), steps=30)
    assert [r["loss"] for r in rows_v] == [r["loss"] for r in rows_a]
    assert torch.equal(w_v, w_a)


def test_every_is_validated():
    with pytest.raises(ValueError, match=r"ae.every=0: must be an integer >= 1"):
        AEControl(
            torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1),
            AEConfig(enabled=True, every=0),
        )
