"""The run recorder: a Lightning callback that fills ``curves.csv`` and the run record's
measurements (metric, time-to-target, AUC, incidents) and stops a diverging run.

Divergence rule: after a step, the run is ``diverged`` when its training loss (as the optimizer
saw it, i.e. times ``loss_scale``) is NaN or inf, or when |loss| > ``divergence.factor`` *
max(|first loss|, ``divergence.floor``). The run then stops itself, evaluates the model once
more, and exits normally so that a sweep goes on. The first loss is the reference because it is
the same in every arm of a seed (pairing), so the rule treats arms alike.
"""

from __future__ import annotations

import logging
import math
import time

import lightning as L
import torch

from aebench.module import set_optimizer_mode
from aebench.record import Incidents, Metric, Target
from aebench.task import Task

log = logging.getLogger(__name__)

#: a one-step change of lr by more than this factor counts as an ``lr_cliff``
CLIFF_FACTOR = 2.0


def effective_lr(group: dict) -> float | None:
    """The step size an optimizer that sets its own applies, where it differs from ``lr`` (the
    configured value a schedule sets); None for fixed-lr optimizers. Logged as ``lr_eff``, read
    after the step of its row: the lr that step applied for hypergradient descent and
    schedule-free; Prodigy updates d at the end of a step, so its row holds the step size of
    the next step (d * lr as it stands after the step).

    Recognised param-group layouts: ``hd_lr`` (hypergradient descent, baselines/hypergradient.py:
    alpha_t); ``scheduled_lr`` with ``train_mode`` (schedulefree: lr times its warmup, as it
    reports it; 0 before its first step); ``d`` with ``d0`` (Prodigy / D-Adaptation: d * lr).
    """
    if "hd_lr" in group:
        return float(group["hd_lr"])
    if "scheduled_lr" in group and "train_mode" in group:
        return float(group["scheduled_lr"])
    if "d" in group and "d0" in group:
        return float(group["d"]) * float(group["lr"])
    return None


def finite_or_none(x: float | None) -> float | None:
    return x if x is not None and math.isfinite(x) else None


def check_divergence(
    loss: float, first_loss: float | None, incidents: Incidents, factor: float, floor: float
) -> tuple[bool, float | None]:
    """The divergence rule of the module docstring for one step's loss: ``(diverged, first
    loss)``; a non-finite loss is also counted in ``incidents.nonfinite``."""
    if not math.isfinite(loss):
        incidents.nonfinite += 1
        return True, first_loss
    if first_loss is None:
        first_loss = loss
    return abs(loss) > factor * max(abs(first_loss), floor), first_loss


class Recorder(L.Callback):
    """What every recorder shares (the single run's :class:`RunRecorder` and the population's
    ``aebench.swarm.callback.SwarmCallback``): the measurements the runner reads (``metric``,
    ``target``, ``incidents``, ``status``, :meth:`auc`), the evaluation curve they come from,
    and the divergence and lr-cliff rules' settings.

    A subclass appends ``(step, value)`` to ``evals`` (its curve: one run's evaluations, or the
    population's best latest evaluation) and calls :meth:`_track` with each new value.
    """

    def __init__(
        self,
        *,
        metric_name: str,
        mode: str,
        target: float,
        total_steps: int,
        eval_every: int,
        log_every: int,
        divergence_factor: float,
        divergence_floor: float,
        progress_every: int,
        label: str,
    ) -> None:
        self.total_steps = total_steps
        self.eval_every = eval_every
        self.log_every = log_every
        self.divergence_factor = divergence_factor
        self.divergence_floor = divergence_floor
        self.progress_every = progress_every
        self.label = label
        self.metric = Metric(name=metric_name, mode=mode)
        self.target = Target(value=target)
        self.incidents = Incidents()
        #: the evaluation curve the metric, time-to-target and AUC come from
        self.evals: list[tuple[int, float]] = []
        self.status = "completed"
        self.t0 = time.perf_counter()

    @property
    def wall_s(self) -> float:
        return time.perf_counter() - self.t0

    def _better(self, a: float, b: float) -> bool:
        return a < b if self.metric.mode == "min" else a > b

    def _track(self, value: float, step: int) -> None:
        """A new value of the curve at ``step``: the best so far and time-to-target."""
        if not math.isfinite(value):
            return
        if self.metric.best is None or self._better(value, self.metric.best):
            self.metric.best = value
        reached = (
            value <= self.target.value if self.metric.mode == "min" else value >= self.target.value
        )
        if reached and not self.target.reached:
            self.target.reached, self.target.step = True, step
            self.target.wall_s = round(self.wall_s, 4)

    def auc(self) -> float | None:
        """Trapezoidal area under the evaluation curve over [0, budget], divided by the budget.

        Null for a run that did not complete its budget (diverged or failed): the curve beyond
        the stop is unknown, and any filler would favour one mode of the metric.
        """
        if self.status != "completed" or len(self.evals) < 2:
            return None
        area = 0.0
        for (s0, v0), (s1, v1) in zip(self.evals, self.evals[1:], strict=False):
            area += 0.5 * (v0 + v1) * (s1 - s0)
        return finite_or_none(area / max(1, self.evals[-1][0]))


def count_cliffs(
    optimizer: torch.optim.Optimizer, prev_log_lr: list[float] | None, incidents: Incidents
) -> list[float]:
    """Count an ``lr_cliff`` in ``incidents`` when a param group's lr moved by more than
    ``CLIFF_FACTOR`` since ``prev_log_lr`` (the log-lrs of the step before; None at the
    start); returns this step's log-lrs."""
    lrs = [g["lr"] for g in optimizer.param_groups]
    log_lr = [math.log(lr) if lr > 0 else float("-inf") for lr in lrs]
    if prev_log_lr is not None:
        limit = math.log(CLIFF_FACTOR)
        for now, before in zip(log_lr, prev_log_lr, strict=True):
            if math.isfinite(now) and math.isfinite(before) and abs(now - before) > limit:
                incidents.lr_cliffs += 1
                break
    return log_lr


class RunRecorder(Recorder):
    """The recorder of a single run (one trajectory; gradient steps or ES generations)."""

    def __init__(
        self,
        task: Task,
        total_steps: int,
        eval_every: int,
        log_every: int,
        target: float,
        divergence_factor: float,
        divergence_floor: float,
        progress_every: int,
        label: str,
    ) -> None:
        super().__init__(
            metric_name=task.metric_name,
            mode=task.metric_mode,
            target=target,
            total_steps=total_steps,
            eval_every=eval_every,
            log_every=log_every,
            divergence_factor=divergence_factor,
            divergence_floor=divergence_floor,
            progress_every=progress_every,
            label=label,
        )
        self.task = task
        self.first_loss: float | None = None
        self.prev_log_lr: list[float] | None = None
        #: coefficients read in on_before_optimizer_step of a step that will be logged
        self.step_coefficients: dict[str, float] | None = None

    # ------------------------------------------------------------------ helpers
    def _evaluate(self, pl_module: L.LightningModule, step: int) -> float:
        model = pl_module.model
        was_training = model.training
        optimizers = pl_module.trainer.optimizers
        for optimizer in optimizers:  # a schedule-free optimizer is evaluated at its average x
            set_optimizer_mode(optimizer, "eval")
        model.eval()
        with torch.no_grad():
            value = float(self.task.evaluate(model))
        model.train(was_training)
        for optimizer in optimizers:
            set_optimizer_mode(optimizer, "train")
        self.evals.append((step, value))
        pl_module.curves.log(step, **{f"val_{self.metric.name}": value})
        self._track(value, step)
        return value

    @staticmethod
    def _coefficients(optimizer: torch.optim.Optimizer) -> dict[str, float]:
        values: dict[str, float] = {}
        for i, group in enumerate(optimizer.param_groups):
            suffix = "" if i == 0 else f"/pg{i}"
            values["lr" + suffix] = group["lr"]
            if "betas" in group:
                values["beta1" + suffix], values["beta2" + suffix] = group["betas"]
            elif "momentum" in group:
                values["momentum" + suffix] = group["momentum"]
            if "eps" in group:
                eps = group["eps"]
                if isinstance(eps, tuple | list):
                    eps = eps[-1]
                if eps is not None:
                    values["eps" + suffix] = eps
            values["weight_decay" + suffix] = group.get("weight_decay", 0.0)
            if "sigma" in group:  # Evolution Strategies: the perturbation std (baselines/es)
                values["sigma" + suffix] = group["sigma"]
        return values

    @staticmethod
    def _effective_lrs(optimizer: torch.optim.Optimizer) -> dict[str, float]:
        """``lr_eff`` per param group (:func:`effective_lr`), read after the step: what the
        optimizer reports once it has taken it."""
        values: dict[str, float] = {}
        for i, group in enumerate(optimizer.param_groups):
            lr_eff = effective_lr(group)
            if lr_eff is not None:
                values["lr_eff" + ("" if i == 0 else f"/pg{i}")] = lr_eff
        return values

    def _count_cliffs(self, optimizer: torch.optim.Optimizer) -> None:
        self.prev_log_lr = count_cliffs(optimizer, self.prev_log_lr, self.incidents)

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.t0 = time.perf_counter()
        optimizer = trainer.optimizers[0]
        self._count_cliffs(optimizer)
        pl_module.curves.log(0, **self._coefficients(optimizer), **self._effective_lrs(optimizer))
        self._evaluate(pl_module, 0)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:  # noqa: ANN001
        """Read the coefficients the step is about to use: after any controller that sets them
        (AE runs its callback before this one) and before the schedule steps for the next."""
        step = trainer.global_step + 1
        self._count_cliffs(optimizer)
        if step % self.log_every == 0 or step >= self.total_steps:
            self.step_coefficients = self._coefficients(optimizer)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        step = trainer.global_step
        loss = float(pl_module.last_loss)
        diverged, self.first_loss = check_divergence(
            loss, self.first_loss, self.incidents, self.divergence_factor, self.divergence_floor
        )
        last = step >= self.total_steps
        if diverged or last or step % self.log_every == 0:
            coefficients = self.step_coefficients or self._coefficients(trainer.optimizers[0])
            coefficients.update(self._effective_lrs(trainer.optimizers[0]))
            pl_module.curves.log(step, train_loss=loss, **coefficients)
            self.step_coefficients = None
            phase = self.task.drift_phase(step)
            if phase is not None:
                pl_module.curves.log(step, drift_phase=phase)
            extra = self.task.train_log()
            if extra:
                pl_module.curves.log(step, **extra)
            # compute axis of every run (aebench/module.py): forward-equivalents, env steps (RL)
            pl_module.curves.log(
                step,
                forward_equivalents=float(getattr(pl_module, "forward_equivalents", 0.0)),
                env_steps=float(getattr(self.task, "env_steps", 0)),
            )
            es_row = getattr(pl_module, "es_log", None)  # ES runs (aebench/es_module.py)
            if es_row:
                pl_module.curves.log(step, **es_row)
        if diverged:
            self.status = "diverged"
            self.incidents.divergence = 1
            trainer.should_stop = True
            self._evaluate(pl_module, step)
            log.warning(
                "%s diverged at step %d (train loss %.4g): stopping", self.label, step, loss
            )
            return
        if last or step % self.eval_every == 0:
            self._evaluate(pl_module, step)
        if self.progress_every and (step % self.progress_every == 0 or last):
            latest = self.evals[-1][1] if self.evals else float("nan")
            log.info(
                "%s step %d/%d  train_loss %.4g  val_%s %.4g  (%.1f s)",
                self.label,
                step,
                self.total_steps,
                loss,
                self.metric.name,
                latest,
                self.wall_s,
            )

    # ------------------------------------------------------------------ results
    def finish(self) -> None:
        """Fill ``metric.final`` and the AUC once training has ended."""
        if self.evals:
            self.metric.final = finite_or_none(self.evals[-1][1])
        self.metric.best = finite_or_none(self.metric.best)
