"""Learning-rate schedules, stepped once per optimizer step.

Each factory takes the optimizer and the run's step budget ``total_steps`` (so one YAML works at
every scale: milestones and warmups are fractions of the budget) and returns a torch LR scheduler.
Every schedule is a ``LambdaLR``: each step it *sets* ``lr = initial_lr * factor(step)`` rather
than multiplying the current lr, so whatever another layer wrote into ``lr`` in between (AE's
offset, :mod:`aebench.ae.controller`) is not compounded: the schedule's value is the base AE
multiplies, and AE's offset stays one factor on top of it. ``constant`` is the identity, kept as a
scheduler so that every run has one and later layers compose with schedules the same way.
(torch's ``MultiStepLR`` and ``OneCycleLR`` are chainable or keep their own state in ways that
multiply whatever lr they find; ``step`` and ``onecycle`` below reproduce their values as
factors instead: tested against torch's own schedulers.)
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler


def constant(optimizer: Optimizer, total_steps: int) -> LRScheduler:
    """lr stays at its configured value."""
    return LambdaLR(optimizer, lambda step: 1.0)


#: the trait the core reads (aebench.schema.TRAITS): the schedule an optimizer with own_lr takes
constant.constant_lr = True  # type: ignore[attr-defined]


def cosine(
    optimizer: Optimizer, total_steps: int, warmup_frac: float = 0.05, min_lr_frac: float = 0.0
) -> LRScheduler:
    """Linear warmup over ``warmup_frac`` of the budget, then half a cosine down to
    ``min_lr_frac * lr`` at the last step."""
    warmup = max(0, round(warmup_frac * total_steps))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
        return min_lr_frac + (1.0 - min_lr_frac) * 0.5 * (1.0 + math.cos(math.pi * progress))

    return LambdaLR(optimizer, factor)


def step(
    optimizer: Optimizer,
    total_steps: int,
    milestones: Sequence[float] = (0.5, 0.75),
    gamma: float = 0.1,
) -> LRScheduler:
    """lr multiplied by ``gamma`` at each milestone (fractions of the budget): the factor
    ``gamma ** (number of milestones <= step)``, the values of torch's ``MultiStepLR``."""
    at = sorted({max(1, round(m * total_steps)) for m in milestones})
    return LambdaLR(optimizer, lambda s: gamma ** bisect.bisect_right(at, s))


def onecycle(
    optimizer: Optimizer,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = False,
) -> LRScheduler:
    """Smith's one-cycle policy peaking at the configured ``lr`` (torch ``OneCycleLR``'s values,
    two phases): from ``lr / div_factor`` up to ``lr`` over the first ``pct_start`` of the budget,
    then down to ``lr / (div_factor * final_div_factor)`` at the last step, annealed by
    ``anneal_strategy`` (``cos`` or ``linear``).

    ``cycle_momentum`` must stay off: the schedule changes only the learning rate (on plain SGD,
    cycling would silently add momentum, and a cycled momentum would fight AE's beta1).
    """
    if cycle_momentum:
        raise ValueError(
            "schedule.cycle_momentum=true: not supported (allowed: false); the "
            "one-cycle schedule here only shapes the learning rate"
        )
    if anneal_strategy not in ("cos", "linear"):
        raise ValueError(f"schedule.anneal_strategy={anneal_strategy!r}: allowed: cos, linear")
    start = 1.0 / div_factor
    end = start / final_div_factor
    up_end = float(pct_start * total_steps) - 1.0
    down_end = float(total_steps) - 1.0

    def anneal(a: float, b: float, pct: float) -> float:
        if anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1.0)
        return (b - a) * pct + a

    def factor(s: int) -> float:
        if s <= up_end:
            return anneal(start, 1.0, s / up_end if up_end > 0 else 1.0)
        span = down_end - up_end
        return anneal(1.0, end, min(1.0, (s - up_end) / span) if span > 0 else 1.0)

    return LambdaLR(optimizer, factor)
