"""Learning-rate schedules, stepped once per optimizer step.

Each factory takes the optimizer and the run's step budget ``total_steps`` (so one YAML works at
every scale: milestones and warmups are fractions of the budget) and returns a torch LR scheduler.
Every schedule multiplies the optimizer's configured ``lr``; ``constant`` is the identity, kept as
a scheduler so that every run has one and later layers (AE) compose with schedules the same way.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR, LRScheduler, MultiStepLR, OneCycleLR


def constant(optimizer: Optimizer, total_steps: int) -> LRScheduler:
    """lr stays at its configured value."""
    return LambdaLR(optimizer, lambda step: 1.0)


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
    """lr multiplied by ``gamma`` at each milestone (fractions of the budget)."""
    at = sorted({max(1, round(m * total_steps)) for m in milestones})
    return MultiStepLR(optimizer, milestones=at, gamma=gamma)


def onecycle(
    optimizer: Optimizer,
    total_steps: int,
    pct_start: float = 0.3,
    div_factor: float = 25.0,
    final_div_factor: float = 1e4,
    anneal_strategy: str = "cos",
    cycle_momentum: bool = False,
) -> LRScheduler:
    """Smith's one-cycle policy peaking at the configured ``lr``.

    ``cycle_momentum`` is off by default so that the schedule changes only the learning rate (on
    plain SGD, cycling would silently add momentum); turn it on for the fast.ai recipe.
    """
    max_lr = [group["lr"] for group in optimizer.param_groups]
    return OneCycleLR(
        optimizer,
        max_lr=max_lr,
        total_steps=total_steps,
        pct_start=pct_start,
        div_factor=div_factor,
        final_div_factor=final_div_factor,
        anneal_strategy=anneal_strategy,
        cycle_momentum=cycle_momentum,
    )
