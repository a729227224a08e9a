"""AE-1 measurement: causal, bounded, filtered signals s_t = [T, V, R, rho, S] and gamma.

    s_t = F_tau(l_t, r_t, g_t)                                                    (AE-1)

Every filter is the causal one-pole low-pass ``LP(x)_t = LP_{t-1} + (x_t - LP_{t-1}) / tc``
(an EMA with time constant ``tc`` steps), smooth in its input and in ``tc`` (AE-9).

Units (readings #2): **relative**. With ``L = LP(|l|)`` the filtered loss level (before this
step's loss enters it),

* ``T = LP((l_t - l_{t-1}) / L)``: relative trend, per step (-0.01 = 1% drop per step);
* ``V = LP(((l_t - L) / L)^2)``: relative variance (squared coefficient of variation);
* ``R = LP((r_t - r_{t-1}) / LP(|r|))``: relative reward delta (0 when the task has no reward:
  a supervised loss is not aliased as reward, that would count progress twice);

so multiplying the loss by c leaves T, V, R (and rho, S below) unchanged and the drive AE-2,
the noise law AE-4 and the resonance switch AE-5 scale-free; only the gauge law AE-8 sees the
scale, through gamma. Each relative input is clipped to ``[-clip, clip]`` before filtering, so the
signals are bounded (A2).

Gradient signals (readings #4), from one stored vector h per parameter: either a copy of the
previous gradient (``rho_buffer=copy``: one parameter-sized buffer per param group) or the
optimizer's momentum buffer rescaled to gradient units (``rho_buffer=momentum``: zero extra memory;
then h is an average of past gradients, a proxy):

* ``rho = LP(cos(g_t, h))``, the phase/alignment (filtered with ``tc_rho``; rho near -1 means
  alternating gradients);
* ``S = LP(||g_t - h||^2 / (||g_t||^2 + ||h||^2))``, the relative gradient noise: for
  independent minibatch gradients g = mu + e its expectation is tr(Sigma) / (|mu|^2 + tr(Sigma)),
  the noise fraction (0 = deterministic, 1 = pure noise, up to 2 when anti-aligned). It is read
  off the same three dot products as rho (||g||^2, g.h, ||h||^2): no extra memory, no extra pass.

The effective step is ``gamma = alpha ||P g||`` with P the optimizer's preconditioner (identity for
SGD; see :mod:`aebench.ae.bindings`).

A non-finite loss or gradient statistic does not enter any filter: the update is skipped, the
previous gradient copy is kept, and the skip is counted.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from aebench.ae.config import SignalsConfig

_TINY = 1e-30


def ema(y: Any, x: Any, tc: Any) -> Any:
    """One-pole causal low-pass: ``y + (x - y) / tc`` (floats or tensors)."""
    return y + (x - y) / tc


def _clip(x: Any, c: float) -> Any:
    if isinstance(x, torch.Tensor):
        return x.clamp(-c, c)
    return max(-c, min(c, x))


def loss_signal_step(
    level: Any,
    prev: Any,
    T: Any,
    V: Any,
    loss: Any,
    tc_level: Any,
    tc_trend: Any,
    tc_var: Any,
    clip: float,
) -> tuple[Any, Any, Any, Any]:
    """One AE-1 step of the loss filters; returns the new ``(level, prev, T, V)``.

    ``level`` is LP(|l|), ``prev`` the previous loss. Pure; works on floats and on tensors.
    """
    denom = abs(level) + _TINY
    d = _clip((loss - prev) / denom, clip)
    e = _clip((loss - level) / denom, clip)
    T = ema(T, d, tc_trend)
    V = ema(V, e * e, tc_var)
    level = ema(level, abs(loss), tc_level)
    return level, loss, T, V


def grad_signal_step(
    rho: Any, S: Any, gsq: Any, dot: Any, psq: Any, tc_rho: Any, tc_s: Any
) -> tuple[Any, Any]:
    """One AE-1 step of the gradient filters from ||g||^2, g.h, ||h||^2; returns ``(rho, S)``."""
    nn = gsq * psq
    cos = dot / (nn**0.5 + _TINY)
    noise = 1.0 - 2.0 * dot / (gsq + psq + _TINY)
    return ema(rho, cos, tc_rho), ema(S, noise, tc_s)


@dataclass
class SignalState:
    """Filter state of one param group (floats; one sync per step brings the inputs over)."""

    level: float = 0.0
    prev: float = 0.0
    T: float = 0.0
    V: float = 0.0
    r_level: float = 0.0
    r_prev: float = 0.0
    R: float = 0.0
    rho: float = 0.0
    S: float = 0.0
    n_loss: int = 0  # finite losses seen
    n_reward: int = 0
    n_grad: int = 0  # finite gradient pairs seen
    skips: int = 0  # non-finite steps skipped

    def update_loss(self, loss: float, reward: float | None, cfg: SignalsConfig) -> None:
        """Feed one finite loss (and reward); the first one only initialises the level."""
        if self.n_loss == 0:
            self.level, self.prev = abs(loss), loss
        else:
            self.level, self.prev, self.T, self.V = loss_signal_step(
                self.level,
                self.prev,
                self.T,
                self.V,
                loss,
                cfg.tc_level,
                cfg.tc_trend,
                cfg.tc_var,
                cfg.clip,
            )
        self.n_loss += 1
        if reward is None:
            return
        if self.n_reward == 0:
            self.r_level, self.r_prev = abs(reward), reward
        else:
            d = _clip((reward - self.r_prev) / (self.r_level + _TINY), cfg.clip)
            self.R = ema(self.R, d, cfg.tc_reward)
            self.r_level = ema(self.r_level, abs(reward), cfg.tc_level)
            self.r_prev = reward
        self.n_reward += 1

    def update_grad(
        self, gsq: float, dot: float, psq: float, cfg: SignalsConfig, every: int = 1
    ) -> None:
        """Feed one finite gradient pair (skipped while no previous vector exists). With pairs
        measured every ``every`` steps (``ae.every``) the time constants count in pairs:
        ``max(1, tc / every)``."""
        if psq <= 0.0 and dot == 0.0:
            return
        tc_rho, tc_s = max(1.0, cfg.tc_rho / every), max(1.0, cfg.tc_s / every)
        self.rho, self.S = grad_signal_step(self.rho, self.S, gsq, dot, psq, tc_rho, tc_s)
        self.n_grad += 1


def finite(*values: float) -> bool:
    """True when every value is a finite float."""
    return all(math.isfinite(v) for v in values)


def grad_stats(grads: list[torch.Tensor], prevs: list[torch.Tensor] | None) -> torch.Tensor:
    """``[||g||^2, g.h, ||h||^2]`` over a param group as one float64 tensor on the grads' device.

    g and h are each flattened once (one ``cat``, a transient buffer) and the three numbers are
    ``dot`` products stacked on the device: no host synchronisation, nothing kept.
    :func:`aebench.ae.flatgrad.group_stats` adds the preconditioned pair in the same pass.
    """
    if not grads:
        return torch.zeros(3, dtype=torch.float64)
    g = torch.cat([x.reshape(-1) for x in grads])
    if prevs is None:
        zero = torch.zeros((), dtype=g.dtype, device=g.device)
        return torch.stack([g.dot(g), zero, zero]).double()
    h = torch.cat([x.reshape(-1) for x in prevs])
    return torch.stack([g.dot(g), g.dot(h), h.dot(h)]).double()
