"""``schedule=lr_finder``: Leslie Smith's learning-rate range test, then training at the lr it
suggests under a fixed schedule.

The range test (Smith, "Cyclical Learning Rates for Training Neural Networks", WACV 2017,
Section 3.3; the exponential form of fast.ai and Lightning's ``Tuner.lr_find``): for
``num_steps`` training steps the lr grows exponentially from ``min_lr`` to ``max_lr``,

    lr_i = min_lr * (max_lr / min_lr) ** (i / (num_steps - 1)),

and the training loss of each step is smoothed by a bias-corrected exponential moving average
with factor ``smooth``. The test stops early at a non-finite loss or when the smoothed loss
exceeds the best smoothed loss so far by ``(diverge_factor - 1) * |best|`` (for positive losses:
``diverge_factor`` times the best, Lightning's rule; the absolute form also serves losses that
go negative, as a policy-gradient loss may).

Suggestion (``suggestion``):

- ``min_div10`` (default): the lr of the lowest smoothed loss, divided by 10 (fast.ai's
  ``lr_min``). Chosen as the default because it is an order statistic of the whole curve and so
  robust to the noise of one test on minibatches, while the slope the other rule needs is a
  difference of two noisy neighbours; the division backs off from the edge of instability (the
  minimum of a test whose lr keeps growing sits just before the loss blows up, above the largest
  lr that is stable for a whole run; Smith suggests a factor of 3-4 below it for the maximum of a
  cycle, a constant lr for a whole run wants more margin).
- ``steepest``: the lr where the smoothed loss falls fastest per unit of log lr (the most
  negative ``d smoothed / d log lr`` up to the minimum; Lightning's default suggestion). Fewer
  than 3 points before the minimum fall back to ``min_div10`` (recorded as ``rule``).

Measured here (the defaults, seed 0, scale=cpu configs, one range test each; the reference is
the task's tune_lr value, ``task.lr``): over regression, rosenbrock and quadratic_delay with
sgd, sgdm and adamw, ``min_div10`` landed a median 0.54 decades from the tuned lr (sgd and sgdm
within 0.6 decades in all six cases; adamw 1.0-1.7 decades above: 100 steps of Adam still gain
at lrs too large for a whole run), ``steepest`` a median 0.81 decades (up to 2.2). On
``plateau`` both fail by design of the task: the loss is flat over the whole test, so the
minimum is noise and the suggestion is tiny for sgd (2e-5 against 10). That is the range test's
known blind spot, and a run with it records what it suggested.

Isolation (the training run must be exactly the run it would have been at the suggested lr):
the test trains a deep copy of the initial model with its own optimizer (from the run's
optimizer config) on a **fresh task instance** (its own batch iterator, and its own state:
stale-gradient queues, episode counters and drift phases of the run's task are untouched),
inside ``torch.random.fork_rng`` with Python's and NumPy's global states restored afterwards and
its own torch stream (``derive_seed(seed, "lr_finder")``). The run then builds its optimizer
fresh from the initial model with ``lr`` = the suggestion, so model, optimizer state, batch order
and every RNG stream start as in a run with ``schedule=<then> optimizer.lr=<suggestion>``
(tests/test_lr_finder.py checks the curves are identical).

After the test the run trains under ``then``: ``constant`` (default) or ``cosine`` (with
``warmup_frac`` and ``min_lr_frac``, as ``schedule=cosine``).

Compute: the test's steps are **not** charged to the run's step budget (``budget`` and ``steps``
stay those of training, so the arm pairs with every other arm at the same budget); they are
reported in the record as ``extra.lr_finder.steps`` (and in ``wall_s``, which includes the test),
as the runs of a ``tune_schedule`` grid are reported rather than charged. The trace (lr, loss,
smoothed loss per step) is written to ``lr_finder.csv`` beside ``curves.csv``.
"""

from __future__ import annotations

import copy
import csv
import io
import math
import random
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from baselines import schedules

SUGGESTIONS = ("min_div10", "steepest")
THEN = ("constant", "cosine")


@dataclass
class RangeTest:
    """The trace and the suggestion of one range test."""

    lrs: list[float]
    losses: list[float]
    smoothed: list[float]
    lr: float
    rule: str
    stopped_early: bool
    min_loss_lr: float
    steepest_lr: float | None
    config: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """Optimizer steps the test took (a step whose loss was non-finite is not taken)."""
        return len(self.lrs)

    def summary(self) -> dict[str, Any]:
        """What the run record keeps (``extra.lr_finder``)."""
        return {
            "lr": self.lr,
            "rule": self.rule,
            "steps": self.steps,
            "stopped_early": self.stopped_early,
            "min_loss_lr": self.min_loss_lr,
            "steepest_lr": self.steepest_lr,
            **self.config,
        }

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(["step", "lr", "loss", "smoothed"])
        for i, row in enumerate(zip(self.lrs, self.losses, self.smoothed, strict=True)):
            writer.writerow([i, *map(repr, row)])
        return out.getvalue()


def lr_at(i: int, min_lr: float, max_lr: float, num_steps: int) -> float:
    """The lr of step ``i`` of an exponential range from ``min_lr`` to ``max_lr``."""
    return min_lr * (max_lr / min_lr) ** (i / (num_steps - 1))


def suggest(
    lrs: list[float], smoothed: list[float], rule: str
) -> tuple[float, str, float, float | None]:
    """``(suggested lr, rule used, lr of the lowest smoothed loss, steepest lr or None)``."""
    if not lrs:
        raise ValueError("the range test took no step (the first loss was not finite)")
    i_min = int(np.argmin(smoothed))
    min_loss_lr = lrs[i_min]
    steepest: float | None = None
    if i_min >= 2:
        slopes = np.gradient(np.asarray(smoothed[: i_min + 1]), np.log(lrs[: i_min + 1]))
        steepest = lrs[int(np.argmin(slopes))]
    if rule == "steepest" and steepest is not None:
        return steepest, "steepest", min_loss_lr, steepest
    return min_loss_lr / 10.0, "min_div10", min_loss_lr, steepest


def range_test(
    optimizer: Optimizer,
    loss_fn: Callable[[Any], torch.Tensor],
    batches: Iterator[Any],
    min_lr: float = 1e-6,
    max_lr: float = 10.0,
    num_steps: int = 100,
    smooth: float = 0.9,
    diverge_factor: float = 4.0,
    suggestion: str = "min_div10",
) -> RangeTest:
    """Run the test with ``optimizer`` (over the model ``loss_fn`` trains) and suggest an lr."""
    if suggestion not in SUGGESTIONS:
        raise ValueError(f"suggestion={suggestion}: must be one of {', '.join(SUGGESTIONS)}")
    lrs: list[float] = []
    losses: list[float] = []
    smoothed: list[float] = []
    avg, best, stopped = 0.0, math.inf, False
    for i in range(num_steps):
        lr = lr_at(i, min_lr, max_lr, num_steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        loss = loss_fn(next(batches))
        value = float(loss.detach())
        if not math.isfinite(value):
            stopped = True
            break
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        avg = smooth * avg + (1.0 - smooth) * value
        sm = avg / (1.0 - smooth ** (i + 1))
        lrs.append(lr)
        losses.append(value)
        smoothed.append(sm)
        best = min(best, sm)
        if sm > best + (diverge_factor - 1.0) * max(abs(best), 1e-12):
            stopped = True
            break
    lr, rule, min_loss_lr, steepest = suggest(lrs, smoothed, suggestion)
    return RangeTest(lrs, losses, smoothed, lr, rule, stopped, min_loss_lr, steepest)


@contextmanager
def isolated_rng(device: torch.device, seed: int) -> Iterator[None]:
    """Run a block on its own torch stream and leave every global RNG as it found it (torch's
    CPU and, on CUDA, the device's generator; Python's ``random``; NumPy's legacy global)."""
    py_state, np_state = random.getstate(), np.random.get_state()
    devices = [device.index or 0] if device.type == "cuda" else []
    try:
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            yield
    finally:
        random.setstate(py_state)
        np.random.set_state(np_state)


class LRFinderSchedule:
    """The ``schedule=lr_finder`` option: the range test's settings and the schedule after it.

    Called like every schedule factory (``(optimizer, total_steps) -> LRScheduler``) it builds
    the ``then`` schedule; :meth:`range_test` runs the test for the runner before training
    (aebench/runner.py). Every argument is documented in the module docstring and
    ``conf/schedule/lr_finder.yaml``.
    """

    #: the values the preflight allows for the string keys (aebench.schema.TRAITS)
    choices: ClassVar[dict[str, tuple[str, ...]]] = {"suggestion": SUGGESTIONS, "then": THEN}

    def __init__(
        self,
        min_lr: float = 1e-6,
        max_lr: float = 10.0,
        num_steps: int = 100,
        smooth: float = 0.9,
        diverge_factor: float = 4.0,
        suggestion: str = "min_div10",
        then: str = "constant",
        warmup_frac: float = 0.05,
        min_lr_frac: float = 0.0,
    ) -> None:
        if suggestion not in SUGGESTIONS:
            raise ValueError(f"suggestion={suggestion}: must be one of {', '.join(SUGGESTIONS)}")
        if then not in THEN:
            raise ValueError(f"then={then}: must be one of {', '.join(THEN)}")
        self.min_lr, self.max_lr, self.num_steps = float(min_lr), float(max_lr), int(num_steps)
        self.smooth, self.diverge_factor = float(smooth), float(diverge_factor)
        self.suggestion, self.then = suggestion, then
        self.warmup_frac, self.min_lr_frac = float(warmup_frac), float(min_lr_frac)

    def __call__(self, optimizer: Optimizer, total_steps: int) -> LRScheduler:
        if self.then == "cosine":
            return schedules.cosine(optimizer, total_steps, self.warmup_frac, self.min_lr_frac)
        return schedules.constant(optimizer, total_steps)

    def range_test(
        self,
        make_task: Callable[[], Any],
        model: torch.nn.Module,
        make_optimizer: Callable[..., Optimizer],
        loss_scale: float,
        device: torch.device,
        seed: int,
    ) -> RangeTest:
        """The test on a copy of ``model`` and a fresh task from ``make_task`` (module doc)."""
        from lightning.fabric.utilities.apply_func import move_data_to_device

        with isolated_rng(device, seed):
            task = make_task()
            probe = copy.deepcopy(model).to(device)
            probe.train()
            optimizer = make_optimizer(probe.parameters())
            batches = (move_data_to_device(b, device) for b in task.train_batches())
            result = range_test(
                optimizer,
                lambda batch: task.loss(probe, batch) * loss_scale,
                batches,
                self.min_lr,
                self.max_lr,
                self.num_steps,
                self.smooth,
                self.diverge_factor,
                self.suggestion,
            )
        result.config = {
            "min_lr": self.min_lr,
            "max_lr": self.max_lr,
            "num_steps": self.num_steps,
            "then": self.then,
        }
        return result
