"""AE-9: the whole coefficient update is differentiable w.r.t. its gains W, Gamma, C and tau
(drive scales and filter time constants), shown with gradcheck in double precision."""

from __future__ import annotations

import dataclasses

import torch

from aebench.ae import laws as L
from aebench.ae.config import AEConfig
from aebench.ae.signals import grad_signal_step, loss_signal_step

KINDS = ["alpha", "beta1", "beta2", "eps", "sigma"]


def _unrolled(W, leak, C, tau, tc):
    """Five steps of filters (AE-1) + coefficient update (AE-2..AE-8, AE-6 scaling) from a fixed
    loss/gradient script; returns the final chart coordinates."""
    cfg = AEConfig()
    cfg.budget.clip = 0.0  # the hard clip is a switch (piecewise); the dual scaling stays
    cfg.gauge.target = "absolute"
    base = L.params_from_config(cfg, KINDS)
    p = dataclasses.replace(base, W=W, leak=leak, C=C, tau=tau)
    z = torch.tensor([-3.0, 2.3, 6.9, -18.0, -9.0], dtype=torch.float64)
    zbar = z.clone() + 0.1
    lo, hi = z - 5.0, z + 5.0
    losses = [1.0, 0.9, 0.95, 0.8, 0.85, 0.7]
    stats = [(1.0, 0.5, 1.0), (1.2, -0.3, 1.0), (0.9, 0.6, 1.2), (1.1, 0.2, 0.9), (1.0, 0.1, 1.1)]
    level, prev, T, V = losses[0], losses[0], 0.0, 0.0
    rho, S, lam = 0.0, 0.0, torch.tensor(0.3, dtype=torch.float64)
    for t in range(1, len(losses)):
        level, prev, T, V = loss_signal_step(level, prev, T, V, losses[t], 10.0, tc[0], tc[1], 10.0)
        rho, S = grad_signal_step(rho, S, *stats[t - 1], tc[2], tc[3])
        sig = L.Signals(T=T, V=V, R=0.01 * t, rho=rho, S=S, gamma=0.5 + 0.1 * t, gamma_star=0.6)
        res = L.coefficient_step(z, zbar, lo, hi, sig, lam, 1.0, p, cfg.laws, cfg)
        z, lam = res.z, res.lam
    return z


def test_gradcheck_gains():
    cfg = AEConfig()
    p = L.params_from_config(cfg, KINDS)
    dt = torch.float64
    W = (p.W + 0.1).clone().requires_grad_(True)
    leak = (p.leak + 0.2).clone().requires_grad_(True)
    C = (p.C + 0.05).clone().requires_grad_(True)
    tau = torch.tensor([0.05, 0.5, 0.05], dtype=dt, requires_grad=True)
    tc = torch.tensor([5.0, 5.0, 3.0, 4.0], dtype=dt, requires_grad=True)
    assert torch.autograd.gradcheck(_unrolled, (W, leak, C, tau, tc), eps=1e-6, atol=1e-5)
    out = _unrolled(W, leak, C, tau, tc).sum()
    grads = torch.autograd.grad(out, (W, leak, C, tau, tc))
    assert all(torch.isfinite(g).all() and g.abs().sum() > 0 for g in grads)
