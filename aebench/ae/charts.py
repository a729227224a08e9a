"""Charts: every coefficient kind gets an unconstrained coordinate z in which all laws act.

AE_READINGS #1. AE-3 updates coefficients multiplicatively, ``a <- a * exp(eta u)``, which is an
additive step in ``z = log a``; beta in (0, 1) is not a scale, so it gets the chart of its effective
horizon, ``z = log 1/(1-beta)`` (the coordinate AE-7's zeta already names). With every law acting
in z, AE-3 reads ``z <- Pi_Omega(z + eta u)``, Omega is a box in chart space, the budget norm (AE-6)
is a weighted Euclidean norm of dz and the coupling (AE-7) is linear in z. For log charts this is
exactly ``a * exp(eta u)``; for beta it is the canonical AE-SGDm's additive beta update to first
order (d beta = (1 - beta) dz).

Charts per kind:

* ``alpha`` (lr), ``eps``: ``z = log a``.
* ``beta1`` (momentum / Adam beta1), ``beta2``: ``z = log 1/(1-beta)`` (``beta = 1 - exp(-z)``;
  beta = 0 maps to z = 0).
* ``weight_decay``, ``sigma``: ``z = log max(a, floor)`` where the floor is the lower bound of
  Omega for that kind (config ``lo``). These coefficients may be exactly zero ("off"): 0 reads as
  ``z = log floor`` and any ``z`` at or below ``log floor`` is written back as exactly 0.
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
}

_AT_FLOOR = 1e-12  # z within this of log(floor) counts as "at the floor"


def to_chart(kind: str, value: float, floor: float = 0.0) -> float:
    """Chart coordinate z of a coefficient value (``floor`` only matters for log0 kinds)."""
    chart = CHART[kind]
    if chart == "log":
        return math.log(value)
    if chart == "horizon":
        return -math.log1p(-value)
    return math.log(max(value, floor))


def from_chart(kind: str, z: float, floor: float = 0.0) -> float:
    """Coefficient value of a chart coordinate (inverse of :func:`to_chart`)."""
    chart = CHART[kind]
    if chart == "log":
        return math.exp(z)
    if chart == "horizon":
        return -math.expm1(-z)
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
