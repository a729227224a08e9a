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

Compute accounting: :attr:`fitness_evaluations` counts the population members evaluated (the
ES literature's count; pycma's ``countevals`` for CMA-ES); the centre's forward pass per
generation is not counted. A gradient step costs one forward and one backward on one batch; a
generation costs ``population`` forwards (plus the centre's) on one batch. Curves gain
``fitness_evaluations`` (cumulative), ``fitness_mean``, ``fitness_std`` and ``fitness_best`` of
the population (logged by the recorder at the curve cadence from :attr:`es_log`), and ``sigma``
(the recorder reads it from the param group).
"""

from __future__ import annotations

from typing import Any

import torch

from aebench.module import TaskModule


class ESTaskModule(TaskModule):
    """TaskModule whose step is an ES generation (see the module docstring)."""

    #: population members evaluated so far (the run record's ``fitness_evaluations``)
    fitness_evaluations: int = 0
    #: this generation's curve columns; the recorder logs them at its cadence
    es_log: dict[str, float] | None = None

    def configure_optimizers(self) -> Any:
        optimizer = self.make_optimizer(self.model.parameters(), seed=self.task.seed)
        optimizer.attach(self.model)
        schedule = self.make_schedule(optimizer, total_steps=self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        es = optimizer.optimizer  # the ES behind Lightning's wrapper
        with torch.no_grad():
            es.ask()
            fitness = es.evaluate(
                lambda: self.task.fitness(self.model, batch), batched=self.task.batched_fitness
            )
            center = self.task.fitness(self.model, batch, center=True)
        self.last_loss = (-center.detach().float() * self.loss_scale).reshape(())
        reward = self.task.reward()
        if reward is not None:
            self.last_reward = torch.tensor(float(reward))
        optimizer.zero_grad(set_to_none=True)
        es.tell(fitness)
        optimizer.step()
        self.lr_schedulers().step()
        self.fitness_evaluations = int(es.evaluations)
        finite = fitness[torch.isfinite(fitness)]
        self.es_log = {"fitness_evaluations": float(self.fitness_evaluations)}
        if finite.numel():
            self.es_log.update(
                fitness_mean=float(finite.mean()),
                fitness_std=float(finite.std()) if finite.numel() > 1 else 0.0,
                fitness_best=float(finite.max()),
            )
        return self.last_loss
