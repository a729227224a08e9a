"""Issue 13 defects of the gauge (AE-8) and its neighbours, each in a plain loop.

* the gauge reads the lr in effect: under ``LambdaLR(1.0)`` (a scheduler that changes nothing)
  the run equals the run without a scheduler (the old gauge read the scheduled lr before AE
  re-applied its offset and integrated open loop);
* the set point is taken after the transient (delay, then a window) and follows the schedule;
* a x10 loss-scale step mid-run is answered within 200 steps; a stall raises sigma;
* a coefficient configured off (momentum 0) stays off.
"""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae.config import AEConfig
from aebench.ae.controller import AEControl


def _loop(
    steps: int,
    cfg: AEConfig,
    sched=None,
    scale=lambda t: 1.0,
    momentum: float = 0.9,  # noqa: ANN001
    lr: float = 0.02,
    noise: float = 0.1,
):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(10, 1, generator=g)
    w = torch.nn.Parameter(torch.zeros(10, 1))
    opt = torch.optim.SGD([w], lr=lr, momentum=momentum)
    sch = sched(opt) if sched else None
    ctl = AEControl(opt, cfg)
    rows = []
    for t in range(steps):
        x = torch.randn(32, 10, generator=g)
        y = x @ a + noise * torch.randn(32, 1, generator=g)
        loss = scale(t) * ((x @ w - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        row = ctl.before_step(loss.detach())
        row["applied"] = opt.param_groups[0]["lr"]
        rows.append(row)
        opt.step()
        if sch:
            sch.step()
    return rows, ctl, opt


def test_gauge_loop_is_closed_under_a_lambda_schedule():
    plain, _, _ = _loop(600, AEConfig(enabled=True))
    lam, _, _ = _loop(
        600,
        AEConfig(enabled=True),
        sched=lambda o: torch.optim.lr_scheduler.LambdaLR(o, lambda t: 1.0),
    )
    for a, b in zip(plain, lam, strict=True):
        assert b["applied"] == pytest.approx(a["applied"], rel=1e-9)
        assert b["gamma"] == pytest.approx(a["gamma"], rel=1e-9)


def test_gamma_is_logged_before_the_write():
    """The logged gamma is alpha-in-effect x ||P g|| of this step (what the gauge saw)."""
    rows, ctl, _ = _loop(300, AEConfig(enabled=True))
    gs = ctl.groups[0]
    assert rows[-1]["gamma"] == gs.gauge.gamma
    # before this update, alpha in effect = the previous step's applied lr
    assert rows[-1]["gamma"] / gs.pnorm == pytest.approx(rows[-2]["applied"], rel=1e-9)


def test_set_point_taken_after_the_delay_over_the_window():
    cfg = AEConfig(enabled=True)
    cfg.gauge.delay, cfg.gauge.warmup = 50, 40
    xs = []
    g = torch.Generator().manual_seed(0)
    w = torch.nn.Parameter(torch.zeros(10, 1))
    a = torch.randn(10, 1, generator=g)
    opt = torch.optim.SGD([w], lr=0.02, momentum=0.9)
    ctl = AEControl(opt, cfg)
    for _ in range(120):
        x = torch.randn(32, 10, generator=g)
        loss = ((x @ w - x @ a) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        ctl.before_step(loss.detach())
        xs.append((ctl.groups[0].gauge.x, ctl.groups[0].gamma_star))
        opt.step()
    assert all(s is None for _, s in xs[:89])
    window = [x for x, _ in xs[50:90]]  # base lr constant: x in reference units
    assert xs[89][1] == pytest.approx(math.exp(sum(map(math.log, window)) / 40), rel=1e-9)


def test_target_follows_the_schedule_factor():
    """Under a step schedule (x0.5 at step 400) the target halves with the lr, so the gauge does
    not fight the schedule: AE's multiplier (applied / scheduled) does not jump up."""
    from baselines import schedules

    rows, _, _ = _loop(
        600,
        AEConfig(enabled=True),
        sched=lambda o: schedules.step(o, 800, milestones=[0.5], gamma=0.5),
    )
    assert rows[450]["gamma_star"] == pytest.approx(0.5 * rows[350]["gamma_star"], rel=1e-9)


def test_loss_scale_step_answered_by_the_gauge():
    """x10 loss scale at step 400: gamma back within 20% of its set point within 200 steps (a
    10x offset without the gauge)."""

    def run(gauge: bool):
        cfg = AEConfig(enabled=True)
        cfg.laws.gauge = gauge
        rows, ctl, _ = _loop(700, cfg, scale=lambda t: 10.0 if t >= 400 else 1.0)
        return rows, ctl

    _, ctl = run(True)
    target = ctl.groups[0].gamma_star
    xs = _q_trace(True)
    assert abs(math.log(xs[599] / target)) < math.log(1.2)
    off = _q_trace(False)
    assert off[419] / off[399] > 5.0  # the step made a ~10x offset (measured without the drive)


def _q_trace(gauge: bool) -> list[float]:
    cfg = AEConfig(enabled=True)
    cfg.laws.gauge = gauge
    if not gauge:  # measure q anyway: a gauge that never acts (eta 0)
        cfg.laws.gauge, cfg.gauge.eta_gamma = True, 0.0
    g = torch.Generator().manual_seed(0)
    a = torch.randn(10, 1, generator=g)
    w = torch.nn.Parameter(torch.zeros(10, 1))
    opt = torch.optim.SGD([w], lr=0.02, momentum=0.9)
    ctl = AEControl(opt, cfg)
    xs = []
    for t in range(600):
        x = torch.randn(32, 10, generator=g)
        y = x @ a + 0.1 * torch.randn(32, 1, generator=g)
        loss = (10.0 if t >= 400 else 1.0) * ((x @ w - y) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        ctl.before_step(loss.detach())
        gs = ctl.groups[0]
        xs.append(gs.gauge.x)
        opt.step()
    # a 20-step geometric mean smooths q's per-step noise
    out = []
    for i in range(len(xs)):
        win = xs[max(0, i - 19) : i + 1]
        out.append(math.exp(sum(math.log(v) for v in win) / len(win)))
    return out


def test_stall_raises_sigma():
    """A loss that stops moving (a plateau: T = 0) raises sigma from its floor (AE-4)."""
    from tests.ae.ae_helpers import scripted

    g = torch.Generator().manual_seed(0)
    grads = [torch.randn(4, generator=g) for _ in range(300)]
    rows, _ = scripted(AEConfig(enabled=True), [1.0] * 300, grads)
    assert rows[10]["sigma"] == 0.0
    assert rows[-1]["sigma"] > 1e-5


def test_momentum_zero_stays_zero():
    rows, ctl, opt = _loop(300, AEConfig(enabled=True), momentum=0.0, lr=0.05)
    assert "beta1" not in ctl.groups[0].kinds
    assert opt.param_groups[0]["momentum"] == 0.0
    cfg = AEConfig(enabled=True)
    cfg.coefs.beta1.adapt_at_off = True
    _, ctl, opt = _loop(300, cfg, momentum=0.0, lr=0.05)
    assert "beta1" in ctl.groups[0].kinds


def test_record_summary_fields():
    _, ctl, _ = _loop(300, AEConfig(enabled=True))
    s = ctl.summary()
    assert s["gauge_set_point"] == [ctl.groups[0].gamma_star] and s["gauge_set_point"][0] > 0
    assert 0 < s["guard_mean"][0] <= 1 and 0 < s["budget_mult_mean"][0] <= 1
    cfg = AEConfig(enabled=True)
    cfg.gauge.target, cfg.gauge.gamma_star = "absolute", s["gauge_set_point"][0]
    _, ctl2, _ = _loop(10, cfg)
    assert ctl2.summary()["gauge_set_point"] == s["gauge_set_point"]


def test_set_point_from_a_run_record(tmp_path):
    import json

    _, ctl, _ = _loop(300, AEConfig(enabled=True))
    point = ctl.summary()["gauge_set_point"]
    (tmp_path / "seed0").mkdir()
    (tmp_path / "seed0" / "result.json").write_text(json.dumps({"extra": {"ae": ctl.summary()}}))
    cfg = AEConfig(enabled=True)
    cfg.gauge.target, cfg.gauge.from_run = "from_run", str(tmp_path / "seed{seed}")
    _, ctl2, _ = _loop(5, cfg)
    assert ctl2.summary()["gauge_set_point"] == point
    cfg.gauge.from_run = str(tmp_path / "missing")
    with pytest.raises(ValueError, match="ae.gauge.from_run"):
        _loop(1, cfg)
