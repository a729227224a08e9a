"""One trajectory's coefficients in AE's chart coordinates: read them, and shift them so that the
shift lasts (consensus nudges, PBT's explore, the initial priors).

The genotype (:data:`aebench.swarm.scheduler.GENOTYPE`) per param group: alpha (lr), beta1
(momentum), beta2, eps, weight decay, each in its AE chart (:mod:`aebench.ae.charts`): log for
lr, eps and weight decay, the horizon ``log 1/(1-beta)`` for the betas. A coefficient that is
configured at exactly 0 (e.g. weight decay off) or that the family lacks stays out. Keys are the
kind for group 0 and ``<kind>/pg<N>`` for group N >= 1.

Which value is "the coefficient". Without AE it is the param group's value. With AE the
controller writes ``chart^-1(chart(base) + delta)`` before each step, and a LambdaLR-style
schedule resets ``lr`` after it; the value in effect for the next step is the one the controller
will compute from its own state (its rule, :class:`aebench.ae.controller.AEControl`): the base is
the group's value if someone else changed it since the controller's last write, else the kept
base, and ``z = clamp(chart(base) + delta, Omega)``. :meth:`Coefficients.read` returns that z.

How a shift by dz lasts (:meth:`Coefficients.shift`). Writing a new value into the param group
alone would not: the controller would take it as a new base and add its offset on top, its leak
(AE-2's ``-Gamma (z - zbar)``, with the prior zbar = the base) would pull the nudge back within a
few hundred steps, and a schedule would overwrite lr at its next step. So the shift moves the
trajectory's *base* (its genotype) by dz and keeps AE's own offset delta: the coefficient moves
by exactly dz now and AE keeps regulating around the shifted base. For lr the schedule's
references move by the same factor (``base_lrs`` and the group's ``initial_lr``, ``max_lr``,
``min_lr`` where present: LambdaLR, MultiStepLR and OneCycleLR), so the schedule keeps its shape
around the new level. Only AEControl's public state is touched (``groups[i].base``, ``.written``,
``.delta``, ``.kinds``, ``cfg``, ``binding``); the AE package is not changed.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer

from aebench.ae.bindings import Binding, binding_for
from aebench.ae.charts import CHART, chart_bounds, from_chart, to_chart
from aebench.ae.config import AEConfig
from aebench.ae.controller import OFF_AT_ZERO, AEControl
from aebench.swarm.scheduler import GENOTYPE

#: param-group keys a schedule keeps lr references in (scaled with a shift of lr)
SCHEDULE_LR_KEYS = ("initial_lr", "max_lr", "min_lr")


#: shifts at or below this (chart units) are skipped: chart round trips would add more error
MIN_SHIFT = 1e-12


def key_of(kind: str, group: int) -> str:
    return kind if group == 0 else f"{kind}/pg{group}"


class Coefficients:
    """Chart read/shift access to the genotype of one optimizer (module doc).

    Args:
        optimizer: the trajectory's optimizer.
        schedule: its LR scheduler (or None).
        control: its AE controller (or None without AE).
        ae_cfg: the AE config whose Omega bounds and floors apply (the controller's own when it
            exists; with ae=off the run's ``ae`` node, for the betas' feasible box and the
            weight-decay floor of the log0 chart).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        schedule: Any = None,
        control: AEControl | None = None,
        ae_cfg: AEConfig | None = None,
    ) -> None:
        self.optimizer = getattr(optimizer, "optimizer", optimizer)
        self.schedule = schedule
        self.control = control
        self.cfg: AEConfig = control.cfg if control is not None else (ae_cfg or AEConfig())
        self.binding: Binding = binding_for(self.optimizer)
        #: key -> (group index, kind)
        self.keys: dict[str, tuple[int, str]] = {}
        for g, group in enumerate(self.optimizer.param_groups):
            for kind in GENOTYPE:
                if kind not in self.binding.kinds:
                    continue
                if (CHART[kind] == "log0" or kind in OFF_AT_ZERO) and self.binding.read(
                    group, kind
                ) == 0.0:
                    continue  # configured off (weight decay 0, plain SGD's momentum 0): stays off
                self.keys[key_of(kind, g)] = (g, kind)

    # ------------------------------------------------------------------ geometry
    def floor(self, kind: str) -> float:
        return float(getattr(self.cfg.coefs, kind).lo)

    def feasible(self, kind: str) -> tuple[float, float]:
        """The chart box a value may take whatever its base: Omega for absolute kinds (betas,
        weight decay), unbounded for relative ones (lr, eps: Omega moves with the base)."""
        c = getattr(self.cfg.coefs, kind)
        if CHART[kind] == "log" and c.relative:
            return -math.inf, math.inf
        if CHART[kind] == "log":
            return math.log(c.lo), math.log(c.hi)
        return chart_bounds(kind, c.lo, c.hi, False, 1.0)

    def _ae(self, g: int, kind: str) -> tuple[Any, int] | None:
        """``(group state, index of kind)`` when the controller adapts this coefficient."""
        if self.control is None:
            return None
        gs = self.control.groups[g]
        return (gs, gs.kinds.index(kind)) if kind in gs.kinds else None

    def _base(self, g: int, kind: str) -> float:
        """The base the controller will use at its next update (its own rule)."""
        group = self.optimizer.param_groups[g]
        read = self.binding.read(group, kind)
        ae = self._ae(g, kind)
        if ae is None:
            return read
        gs, _ = ae
        written = gs.written[kind]
        return read if written is None or read != written else float(gs.base[kind])

    def chart(self, g: int, kind: str) -> float:
        """The chart coordinate of the coefficient in effect for the next step."""
        group = self.optimizer.param_groups[g]
        ae = self._ae(g, kind)
        if ae is None:
            return to_chart(kind, self.binding.read(group, kind), self.floor(kind))
        gs, j = ae
        base = self._base(g, kind)
        c = getattr(self.cfg.coefs, kind)
        lo, hi = chart_bounds(kind, c.lo, c.hi, c.relative, base)
        return min(max(to_chart(kind, base, c.lo) + gs.delta[j], lo), hi)

    def value(self, g: int, kind: str) -> float:
        """The coefficient in effect for the next step in its own units (exactly the group's
        or the base value where AE's offset is 0: no chart round trip)."""
        group = self.optimizer.param_groups[g]
        ae = self._ae(g, kind)
        if ae is None or key_of(kind, g) not in self.keys:
            return self.binding.read(group, kind)
        gs, j = ae
        if gs.delta[j] == 0.0:
            return self._base(g, kind)
        c = getattr(self.cfg.coefs, kind)
        value = from_chart(kind, self.chart(g, kind), c.lo)
        if kind == "weight_decay" and value == 0.0:
            return value
        base = self._base(g, kind)
        lo, hi = (base * c.lo, base * c.hi) if c.relative else (c.lo, c.hi)
        return min(max(value, lo), hi)

    # ------------------------------------------------------------------ API
    def read(self) -> dict[str, float]:
        """``{key: z}`` for the whole genotype (module doc)."""
        return {key: self.chart(g, kind) for key, (g, kind) in self.keys.items()}

    def values(self) -> dict[str, float]:
        """The coefficients in effect for the next step in their own units, by curve column
        (``lr``, ``beta1``, ``momentum``, ...; ``/pgN`` suffixes), for the records."""
        out: dict[str, float] = {}
        for g in range(len(self.optimizer.param_groups)):
            sfx = "" if g == 0 else f"/pg{g}"
            for kind in self.binding.kinds:
                if kind == "sigma":
                    continue
                out[self.binding.columns[kind] + sfx] = self.value(g, kind)
            if self.control is not None:
                out["sigma" + sfx] = float(self.control.groups[g].sigma)
        return out

    def shift(self, dz: dict[str, float]) -> None:
        """Move each named coefficient by ``dz[key]`` in its chart, lastingly (module doc)."""
        for key, d in dz.items():
            if key not in self.keys or abs(d) <= MIN_SHIFT or not math.isfinite(d):
                continue
            g, kind = self.keys[key]
            group = self.optimizer.param_groups[g]
            floor = self.floor(kind)
            ae = self._ae(g, kind)
            if ae is None:
                old = self.binding.read(group, kind)
                lo, hi = self.feasible(kind)
                new = from_chart(kind, min(max(to_chart(kind, old, floor) + d, lo), hi), floor)
                self.binding.write(group, kind, new)
                if kind == "alpha" and old > 0:
                    self._scale_schedule(g, new / old)
                continue
            gs, j = ae
            c = getattr(self.cfg.coefs, kind)
            z_target = self.chart(g, kind) + d
            base_old = self._base(g, kind)
            zb = to_chart(kind, base_old, c.lo) + d
            if not c.relative:
                lo, hi = self.feasible(kind)
                zb = min(max(zb, lo), hi)
            base_new = from_chart(kind, zb, c.lo)
            lo, hi = chart_bounds(kind, c.lo, c.hi, c.relative, base_new)
            z_new = min(max(z_target, lo), hi)
            gs.base[kind] = base_new
            gs.delta[j] = z_new - to_chart(kind, base_new, c.lo)
            if gs.written[kind] is None and gs.delta[j] == 0.0:
                self.binding.write(group, kind, base_new)  # AE re-reads it as its base
            else:
                lo_v, hi_v = (base_new * c.lo, base_new * c.hi) if c.relative else (c.lo, c.hi)
                value = from_chart(kind, z_new, c.lo)
                if not (kind == "weight_decay" and value == 0.0):
                    value = min(max(value, lo_v), hi_v)
                self.binding.write(group, kind, value)
                gs.written[kind] = self.binding.read(group, kind)
            if kind == "alpha" and base_old > 0:
                self._scale_schedule(g, base_new / base_old)

    def _scale_schedule(self, g: int, factor: float) -> None:
        group = self.optimizer.param_groups[g]
        for name in SCHEDULE_LR_KEYS:
            if isinstance(group.get(name), int | float):
                group[name] = group[name] * factor
        base_lrs = getattr(self.schedule, "base_lrs", None)
        if isinstance(base_lrs, list) and g < len(base_lrs):
            base_lrs[g] = base_lrs[g] * factor
