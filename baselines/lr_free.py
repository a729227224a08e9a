"""LR-free and self-tuning optimizers from their maintained packages, as ``optimizer=`` options.

- ``schedulefree_adamw``: ``schedulefree.AdamWScheduleFree`` (Defazio et al., "The Road Less
  Scheduled", 2024). It keeps two sequences: training steps are taken at y, evaluation must see
  x (the averaged iterate), so the optimizer has ``train()``/``eval()`` modes that move the
  parameters between the two. The suite honours that through a small protocol
  (:func:`aebench.module.set_optimizer_mode`): train mode before every step, eval mode around
  every evaluation and at the end of training. Its warmup is internal (``warmup_steps``); this
  factory sets it as a fraction of the run's step budget, like the ``cosine`` schedule's
  ``warmup_frac``, so one YAML serves every scale. Run it with ``schedule=constant``: a decaying
  schedule on top would fight the schedule-free averaging (the preflight refuses others).
- ``prodigy``: ``prodigyopt.Prodigy`` (Mishchenko and Defazio, 2023), Adam with a step size
  d * lr where d is estimated online (D-Adaptation); ``lr`` is a multiplier, 1.0 by the
  authors' convention. It composes with any schedule (the schedule scales ``lr``); its authors
  recommend cosine annealing. Configured directly by ``_target_: prodigyopt.Prodigy``.

Neither has an AE binding (they set their own step size): ``ae=on`` with them is a preflight
error. The run recorder logs the step size each applies as ``lr_eff`` (schedule-free: its
``scheduled_lr``, lr times its warmup; Prodigy: d * lr), beside ``lr`` (the configured value the
schedule sets).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from torch.optim import Optimizer


def schedulefree_adamw(
    params: Iterable[Any],
    lr: float,
    betas: Sequence[float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    warmup_frac: float = 0.05,
    r: float = 0.0,
    weight_lr_power: float = 2.0,
    run_steps: int | None = None,
    budget: int | None = None,
) -> Optimizer:
    """``AdamWScheduleFree`` with ``warmup_steps = round(warmup_frac * steps)``.

    ``steps`` is the run's step budget: ``run_steps`` (the top-level ``steps`` override) when
    set, else ``budget`` (the task's budget at this scale); the YAML interpolates both, so the
    warmup follows the same budget as the run (:func:`aebench.runner.step_budget`).
    """
    from schedulefree import AdamWScheduleFree

    steps = run_steps if run_steps is not None else budget
    if steps is None:
        raise ValueError("schedulefree_adamw: neither run_steps nor budget is set")
    if not 0.0 <= warmup_frac < 1.0:
        raise ValueError(f"warmup_frac={warmup_frac}: must be in [0, 1)")
    return AdamWScheduleFree(
        params,
        lr=lr,
        betas=(float(betas[0]), float(betas[1])),
        eps=eps,
        weight_decay=weight_decay,
        warmup_steps=round(warmup_frac * int(steps)),
        r=r,
        weight_lr_power=weight_lr_power,
    )


# traits the core reads (aebench.schema.TRAITS): schedule-free AdamW keeps its own lr (warmup,
# then its averaging), so AE, a population's lr priors and a range test have nothing to set
schedulefree_adamw.self_tuning = True  # type: ignore[attr-defined]
schedulefree_adamw.own_lr = True  # type: ignore[attr-defined]
