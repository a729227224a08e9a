"""Charts: every coefficient kind gets an unconstrained coordinate z in which all laws act.

readings #1. AE-3 updates coefficients multiplicatively, ``a <- a * exp(eta u)``, which is an
additive step in ``z = log a``; beta in (0, 1) is not a scale, so it gets the chart of its effective
horizon, ``z = log 1/(1-beta)`` (the coordinate AE-7's zeta already names). With every law acting
in z, AE-3 reads ``z <- Pi_Omega(z + eta u)``, Omega is a box in chart space, the budget norm (AE-6)
is a weighted Euclidean norm of dz and the coupling (AE-7) is linear in z. For log charts this is
exactly ``a * exp(eta u)``; for beta it is the canonical AE-SGDm's additive beta update to first
order (d beta = (1 - beta) dz).

Charts per kind:

* ``alpha`` (lr), ``eps``, ``es_sigma`` (an Evolution Strategy's perturbation std, which is
  never 0): ``z = log a``.
* ``beta1`` (momentum / Adam beta1), ``beta2``: ``z = log 1/(1-beta)`` (``beta = 1 - exp(-z)``;
  beta = 0 maps to z = 0).
* ``weight_decay``, ``sigma``, ``l1``: ``z = log max(a, floor)`` where the floor is the lower
  bound of Omega for that kind (config ``lo``). These coefficients may be exactly zero ("off"): 0
  reads as ``z = log floor`` and any ``z`` at or below ``log floor`` is written back as exactly
  0. ``l1`` (the L1 strength lambda of a model's penalty) is a scale like weight decay: its
  effect is multiplicative (the penalty's gradient is proportional to it) and 0 means no penalty,
  so it gets weight decay's chart.
* ``gate`` (a block gate g in (0, 1)): the logit ``z = log g/(1-g)`` (``g = sigmoid(z)``). A gate
  is a fraction bounded on both sides: near 0 the logit is ``log g`` (AE-3's multiplicative
  update of a small scale), near 1 it is ``-log(1-g)`` (multiplicative in the distance to a fully
  open gate, the same reading as beta's horizon chart), and it is symmetric about g = 1/2, so
  opening and closing a gate by the same drive are mirror images. A gate of exactly 0 or 1 has
  no chart coordinate: Omega's box must lie inside (0, 1).
* ``dropout`` (a dropout probability p in [0, p_max)): ``z = logit max(p, floor)``, the log of
  ``p/(1-p)``, which is the variance of the dropout mask relative to its squared mean (a kept
  unit is scaled by 1/(1-p)): AE-3's multiplicative step scales the injected noise's relative
  variance. As for log0, p = 0 ("no dropout", the usual configured value) is the floor and is
  written back as exactly 0; the chart is ``logit0``.
"""

from __future__ import annotations

import math

#: chart name per kind
CHART: dict[str, str] = {
    "alpha": "log",
    "beta1": "horizon",
    "beta2": "horizon",
    "eps": "log",
    "weight_decay": "log0",
    "sigma": "log0",
    "gate": "logit",
    "dropout": "logit0",
    "l1": "log0",
    "es_sigma": "log",  # an Evolution Strategy's perturbation std: never 0
}

#: charts whose floor (Omega's ``lo``) means "off": the value there is written as exactly 0
OFF_FLOOR_CHARTS = ("log0", "logit0")

_AT_FLOOR = 1e-12  # z within this of log(floor) counts as "at the floor"


def has_off_floor(kind: str) -> bool:
    """True for kinds whose chart floor means "off" (the value 0): log0 and logit0 charts."""
    return CHART[kind] in OFF_FLOOR_CHARTS


def _logit(value: float) -> float:
    return math.log(value) - math.log1p(-value)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def to_chart(kind: str, value: float, floor: float = 0.0) -> float:
    """Chart coordinate z of a coefficient value (``floor`` only matters for log0/logit0)."""
    chart = CHART[kind]
    if chart == "log":
        return math.log(value)
    if chart == "horizon":
        return -math.log1p(-value)
    if chart == "logit":
        return _logit(value)
    if chart == "logit0":
        return _logit(max(value, floor))
    return math.log(max(value, floor))


def from_chart(kind: str, z: float, floor: float = 0.0) -> float:
    """Coefficient value of a chart coordinate (inverse of :func:`to_chart`)."""
    chart = CHART[kind]
    if chart == "log":
        return math.exp(z)
    if chart == "horizon":
        return -math.expm1(-z)
    if chart == "logit":
        return _sigmoid(z)
    if chart == "logit0":
        return 0.0 if z <= _logit(floor) + _AT_FLOOR else _sigmoid(z)
    if z <= math.log(floor) + _AT_FLOOR:
        return 0.0
    return math.exp(z)


def chart_bounds(
    kind: str, lo: float, hi: float, relative: bool, base: float
) -> tuple[float, float]:
    """Omega in chart space: ``[z_lo, z_hi]``; relative bounds are multiples of ``base``."""
    if relative:
        zb = to_chart(kind, base, lo)
        return zb + math.log(lo), zb + math.log(hi)
    return to_chart(kind, lo, lo), to_chart(kind, hi, lo)
