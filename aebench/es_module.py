"""The LightningModule of an Evolution Strategies run: one training step is one generation.

The runner picks it instead of :class:`aebench.module.TaskModule` when the optimizer is an ES
(``baselines.es``); everything else is shared (recorder, curves, divergence rule, AE callback,
run record). Order inside a step, all under ``torch.no_grad`` (no backward anywhere):

1. ``ask``: the optimizer draws the population around the current parameters;
2. ``evaluate``: every member's :meth:`aebench.task.Task.fitness` on the step's batch (one
   ``vmap`` pass for EGGROLL where the task allows it, else a loop);
3. the centre: ``Task.fitness(model, batch, center=True)`` of the unperturbed parameters;
   ``last_loss = -that * loss_scale`` is the training loss the recorder logs and the divergence
   rule reads (for supervised tasks exactly the batch loss), ``last_reward`` the task's reward;
4. ``tell``: shaped fitnesses -> the ES estimate of the loss gradient in ``p.grad``;
5. ``optimizer.step()``: Lightning runs ``on_before_optimizer_step`` first, so AE measures the ES
   estimate and may rewrite ``lr`` and ``sigma`` (applied to this update and to the next
   generation's draws); then the update; then the schedule steps.

Fitness. Members get ``Task.fitness * loss_scale`` (so ``shaping=none`` sees the scaled loss the
gradient arms see; centered ranks are invariant to it), on the parameters
``Task.es_parameters(model)`` only (default: all; CartPole: the actor, never the critic).

Progress counted once. The training loss is minus the centre's fitness. When the task's reward
*is* that fitness (an RL task whose fitness is its return), publishing it again as AE's R would
feed AE the same progress twice (R = -T); the module then publishes no reward, and AE reads the
progress through the loss alone.

Compute accounting: :attr:`fitness_evaluations` counts every fitness evaluation, the centre
included (``population + 1`` per generation; pycma's count + 1 for CMA-ES);
:attr:`forward_equivalents` the same in forward passes on one batch (a gradient step costs 3,
:mod:`aebench.module`); RL tasks count environment steps (``Task.env_steps``, every member's
episodes included). Curves gain ``fitness_evaluations``, ``forward_equivalents``, ``env_steps``
(cumulative), ``fitness_mean``, ``fitness_std`` and ``fitness_best`` of the population, ``sigma``
(from the param group) and ``es_curvature``: this generation's sigma signal (below).

The sigma signal (this project's reading of AE-4 on ES; docs/es.md). With mirrored pairs and the
centre, each draw j splits the fitness into an odd part ``d_j = (F(+j) - F(-j)) / 2 ~ sigma g.e``
(the slope the estimate uses) and an even part ``c_j = (F(+j) + F(-j)) / 2 - F(0) ~ sigma^2
e'He / 2`` (curvature); ``es_curvature = rms(c) / rms(d)`` grows linearly with sigma in the smooth
regime, is invariant to the fitness scale, and says "sigma too large" when the members' spread is
curvature rather than slope (the regime where rank shaping scrambles the estimate). AE's noise
law reads it as its S (:meth:`aebench.ae.bindings.ESBinding.noise_S`: ``1 - LP(K^2) / K*^2``).
``tell`` also gets the centre's fitness, with which a step drawn at an AE-moved sigma keeps the
configured sigma's step length (:meth:`baselines.es.core.ESOptimizer.length_factor`).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from aebench.module import TaskModule


class ESTaskModule(TaskModule):
    """TaskModule whose step is an ES generation (see the module docstring)."""

    #: fitness evaluations so far, centre included (the run record's ``fitness_evaluations``)
    fitness_evaluations: int = 0
    #: this generation's curve columns; the recorder logs them at its cadence
    es_log: dict[str, float] | None = None

    def configure_optimizers(self) -> Any:
        optimizer = self.make_optimizer(self.task.es_parameters(self.model), seed=self.task.seed)
        optimizer.attach(self.model)
        schedule = self.make_schedule(optimizer, total_steps=self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        es = optimizer.optimizer  # the ES behind Lightning's wrapper
        scale = float(self.loss_scale)
        with torch.no_grad():
            n = es.ask()
            fitness = es.evaluate(
                lambda: self.task.fitness(self.model, batch) * scale,
                batched=self.task.batched_fitness,
            )
            center = self.task.fitness(self.model, batch, center=True) * scale
        self.last_loss = (-center.detach().float()).reshape(())
        reward = self.task.reward()
        if reward is not None and not math.isclose(
            float(reward) * scale, float(center), rel_tol=1e-6, abs_tol=1e-9
        ):
            self.last_reward = torch.tensor(float(reward))
        curvature = (
            curvature_ratio(fitness, float(center))
            if getattr(es, "antithetic", False)
            else math.nan
        )
        es.curvature = curvature  # read by ESBinding.noise_signals (AE's sigma signal)
        optimizer.zero_grad(set_to_none=True)
        es.tell(fitness, center=float(center))
        optimizer.step()
        self.lr_schedulers().step()
        self.fitness_evaluations += n + 1
        self.forward_equivalents += n + 1
        finite = fitness[torch.isfinite(fitness)]
        self.es_log = {
            "fitness_evaluations": float(self.fitness_evaluations),
            "es_curvature": curvature,
        }
        if finite.numel():
            self.es_log.update(
                fitness_mean=float(finite.mean()),
                fitness_std=float(finite.std()) if finite.numel() > 1 else 0.0,
                fitness_best=float(finite.max()),
            )
        return self.last_loss


def curvature_ratio(fitness: torch.Tensor, center: float) -> float:
    """``rms(c) / rms(d)`` over mirrored pairs (module docstring): ``d_j = (F(+j) - F(-j)) / 2``,
    ``c_j = (F(+j) + F(-j)) / 2 - F(0)``. NaN on a flat fitness (no finite pair has a slope or
    a curvature: nothing to read), inf when the pairs show curvature but no slope."""
    f = fitness.double().reshape(-1, 2)
    ok = torch.isfinite(f).all(1)
    if not math.isfinite(center) or not bool(ok.any()):
        return math.nan
    f = f[ok]
    d = (f[:, 0] - f[:, 1]) / 2
    c = (f[:, 0] + f[:, 1]) / 2 - center
    rd = float(d.pow(2).mean().sqrt())
    rc = float(c.pow(2).mean().sqrt())
    if rd == 0.0:
        return math.inf if rc > 0.0 else math.nan
    return rc / rd
