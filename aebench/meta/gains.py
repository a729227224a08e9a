"""The gains that meta-training learns, and their AE config keys.

Learned (AE-9: "gradient-based tuning of W, Gamma, C, tau"), per evolved coefficient kind k of
the inner optimizer: ``coefs.k.w_p``, ``coefs.k.w_v``, ``coefs.k.w_c`` (the AE-2 W's),
``coefs.k.leak`` (diag Gamma); and the shared ``coupling.alpha_from_beta1`` (C[alpha, beta1]),
``coupling.beta1_from_alpha`` (C[beta1, alpha]: the controller couples both ways),
``resonance.w_m`` (AE-5's phase gain), ``drive.tau_p`` and ``drive.tau_v`` (AE-2's tau).

Parametrisation: ``g = sign(g0) exp(phi)`` with ``phi`` unconstrained and ``g0`` the default
(:class:`aebench.ae.config.AEConfig`). Log space keeps each gain's sign (the direction of a law,
which the theory fixes) and makes the outer step relative. A gain whose default is exactly zero
(e.g. ``coefs.beta2.w_p``) has no log coordinate and stays zero: switching a law's direction or
turning a law on is a design decision, not a tuning one. ``phi`` is kept within ``log(span)`` of
``log|g0|`` (a box of a factor ``span`` = 10 either way by default) so that a short-horizon
meta-gradient cannot drive a gain to an extreme that only a 20-step window rewards.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from aebench.ae.config import AEConfig

PER_KIND = ("w_p", "w_v", "w_c", "leak")
SHARED = (
    "coupling.alpha_from_beta1",
    "coupling.beta1_from_alpha",
    "resonance.w_m",
    "drive.tau_p",
    "drive.tau_v",
)


def default_value(cfg: AEConfig, key: str) -> float:
    """The config value at a dotted key such as ``coefs.alpha.w_p``."""
    obj = cfg
    for part in key.split("."):
        obj = getattr(obj, part)
    return float(obj)


def gain_keys(kinds: list[str]) -> list[str]:
    """Every gain key the inner loop reads for these kinds (learned or fixed)."""
    return [f"coefs.{k}.{g}" for k in kinds for g in PER_KIND] + list(SHARED)


@dataclass
class GainSet:
    """The learnable gains: ``keys[i]`` has value ``signs[i] * exp(phi[i])``."""

    keys: list[str]
    signs: torch.Tensor
    phi0: torch.Tensor  # log |default|
    span: float = 10.0

    @classmethod
    def from_config(cls, cfg: AEConfig, kinds: list[str], span: float = 10.0) -> GainSet:
        keys, signs, phi0 = [], [], []
        for key in gain_keys(kinds):
            v = default_value(cfg, key)
            if v != 0.0 and math.isfinite(v):
                keys.append(key)
                signs.append(math.copysign(1.0, v))
                phi0.append(math.log(abs(v)))
        dt = torch.float64
        return cls(keys, torch.tensor(signs, dtype=dt), torch.tensor(phi0, dtype=dt), span)

    def values(self, phi: torch.Tensor) -> dict[str, torch.Tensor]:
        g = self.signs * torch.exp(phi)
        return {k: g[i] for i, k in enumerate(self.keys)}

    def clamp_(self, phi: torch.Tensor) -> None:
        """Keep phi within log(span) of the defaults (in place, outside autograd)."""
        r = math.log(self.span)
        with torch.no_grad():
            phi.copy_(torch.maximum(torch.minimum(phi, self.phi0 + r), self.phi0 - r))

    def as_floats(self, phi: torch.Tensor) -> dict[str, float]:
        return {k: float(v) for k, v in self.values(phi.detach()).items()}


def all_gains(
    cfg: AEConfig, kinds: list[str], learned: dict[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Every gain the inner loop reads: the learned ones as given, the rest from ``cfg``."""
    out = {}
    for key in gain_keys(kinds):
        out[key] = (
            learned[key]
            if key in learned
            else torch.tensor(default_value(cfg, key), dtype=torch.float64)
        )
    return out


def nest(flat: dict[str, float]) -> dict:
    """``{"coefs.alpha.w_p": 1.0}`` -> ``{"coefs": {"alpha": {"w_p": 1.0}}}`` (config layout)."""
    out: dict = {}
    for key, v in flat.items():
        node = out
        *head, last = key.split(".")
        for part in head:
            node = node.setdefault(part, {})
        node[last] = v
    return out
