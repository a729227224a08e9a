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
        gs = ctl.groups[0]
        alpha_eff = gs.gauge.gamma / gs.pnorm  # the lr in effect the gauge measured with
        xs.append((gs.gauge.x * 0.02 / alpha_eff, gs.gamma_star))
        opt.step()
    assert all(s is None for _, s in xs[:89])
    # calibrate_on=base: x at the configured lr (AE's own offset divided out), reference units
    window = [x for x, _ in xs[50:90]]
    assert xs[89][1] == pytest.approx(math.exp(sum(map(math.log, window)) / 40), rel=1e-9)


def test_target_follows_the_schedule_factor():
    """Under a step schedule (x0.5 at step 400) the target halves with the lr, so the gauge does
    not fight the schedule: AE's multiplier (applied / scheduled) does not jump up."""
    from baselines import schedules

    cfg = AEConfig(enabled=True)
    cfg.laws.resonance = False  # the target also follows AE-5's (soft) shrink: left out here
    rows, _, _ = _loop(
        600, cfg, sched=lambda o: schedules.step(o, 800, milestones=[0.5], gamma=0.5)
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


def _scripted_gauge(cfg: AEConfig, pattern) -> tuple[list[float], AEControl]:  # noqa: ANN001
    """Constant loss 1 and gradient +-g (``pattern(t)`` gives the sign): q = alpha ||g||^2 / l
    is constant, so the gauge sees only what the other laws do to alpha. Returns lr per step."""
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    ctl = AEControl(opt, cfg)
    lrs = []
    for t in range(len(pattern)):
        p.grad = pattern[t] * torch.tensor([1.0, 0.5, -0.5, 0.25])
        ctl.before_step(torch.tensor(1.0))
        lrs.append(opt.param_groups[0]["lr"])
    return lrs, ctl


@pytest.mark.parametrize("follow", [True, False])
def test_gauge_and_the_resonance_shrink(follow):
    """AE-5 shrinks alpha on a phase flip at a q on target. With ``gauge.follow_shrink`` the
    gauge (AE-8), calibrated before, does not restore it within 50 updates (the target follows
    the shrink and relaxes at the gauge's own rate: ~26% back after 50 updates); by default
    (fixed target) it restores it at its own rate (~60% after 50 updates)."""
    from tests.ae.ae_helpers import only

    cfg = only("gauge", "resonance")
    cfg.gauge.follow_shrink = follow
    cfg.resonance.w_m = 0.0  # the shrink alone (AE-5's phase term would move alpha by itself)
    cfg.gauge.delay, cfg.gauge.warmup = 10, 20
    # aligned (rho -> 1) until the gauge is calibrated, alternating (rho -> -1: phase flip),
    # aligned again
    pattern = [1.0] * 80 + [(-1.0) ** t for t in range(20)] + [1.0] * 60
    lrs, ctl = _scripted_gauge(cfg, pattern)
    assert ctl.groups[0].gamma_star is not None
    before = lrs[79]
    assert before == pytest.approx(0.1, rel=1e-6)  # nothing moved alpha before the flip
    low_i = min(range(80, 160), key=lambda i: lrs[i])
    shrunk = math.log(before / lrs[low_i])
    assert shrunk > 0.3  # the shrink fired (several updates at 1/(1 + kappa))
    assert ctl.groups[0].shrinks > 0
    restored = math.log(lrs[low_i + 50] / lrs[low_i])
    if follow:
        assert restored < 0.4 * shrunk
    else:
        assert restored > 0.5 * shrunk


def test_set_point_excludes_the_offset_other_laws_put_on_alpha():
    """calibrate_on=base: the set point is the signal of the configured lr, so a drive that
    moved alpha during the delay (here AE-5's phase term on aligned gradients) is not booked
    into it: the set point equals the one of a run where nothing moved alpha. (The earlier
    reading, calibrate_on=effective, took x at the lr in effect and locked that drift in: on
    quadratic_delay the gauge then held an lr 1.35x the tuned one.)"""
    from tests.ae.ae_helpers import only

    points = {}
    for name, laws in (("still", ("gauge",)), ("drifted", ("gauge", "resonance"))):
        for on in ("base", "effective"):
            cfg = only(*laws)
            cfg.gauge.delay, cfg.gauge.warmup, cfg.gauge.calibrate_on = 40, 20, on
            lrs, ctl = _scripted_gauge(cfg, [1.0] * 70)
            if name == "drifted":
                assert lrs[45] > 1.05 * 0.1  # W_m (rho - rho*) raised alpha during the delay
            points[name, on] = ctl.groups[0].gamma_star
    assert points["drifted", "base"] == pytest.approx(points["still", "base"], rel=1e-9)
    assert points["drifted", "effective"] > 1.05 * points["still", "effective"]
