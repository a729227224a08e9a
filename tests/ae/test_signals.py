"""AE-1 signals: relative units, rho and S readings, non-finite input."""

from __future__ import annotations

import torch

from aebench.ae.config import SignalsConfig
from aebench.ae.signals import SignalState, grad_signal_step
from tests.ae.ae_helpers import only, scripted


def _feed(losses, scale=1.0):
    st = SignalState()
    for x in losses:
        st.update_loss(scale * x, None, SignalsConfig())
    return st


def test_loss_signals_are_scale_free():
    losses = [10.0 * 0.98**t + (0.5 if t % 7 == 0 else 0.0) for t in range(80)]
    a, b = _feed(losses), _feed(losses, scale=10.0)
    assert a.T < 0 and a.V > 0
    assert abs(a.T - b.T) < 1e-12 and abs(a.V - b.V) < 1e-12


def test_rho_and_S_readings():
    g = torch.randn(1000, generator=torch.Generator().manual_seed(0))
    rho, S = 0.0, 0.0
    for _ in range(100):  # identical consecutive gradients: aligned, no noise
        rho, S = grad_signal_step(rho, S, float(g @ g), float(g @ g), float(g @ g), 10.0, 20.0)
    assert rho > 0.99 and abs(S) < 1e-6
    rho, S = 0.0, 0.0
    for _ in range(100):  # alternating: anti-aligned
        rho, S = grad_signal_step(rho, S, float(g @ g), -float(g @ g), float(g @ g), 10.0, 20.0)
    assert rho < -0.99 and S > 1.95


def test_nonfinite_input_is_skipped_and_counted():
    cfg = only("progress")
    losses = [1.0, 0.9, float("nan"), 0.8, float("inf"), 0.7]
    grads = [torch.ones(4)] * 6
    grads[3] = torch.tensor([1.0, float("inf"), 0.0, 0.0])
    rows, ctl = scripted(cfg, losses, grads)
    assert ctl.skips == 3 and rows[-1]["skips"] == 3.0
    ref_rows, _ = scripted(cfg, [1.0, 0.9, 0.7], [torch.ones(4)] * 3)
    for key in ("T", "V", "rho", "S"):
        assert rows[-1][key] == ref_rows[-1][key]
