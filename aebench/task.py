"""The small interface through which the core reaches a task (docs/design.md: the core knows no
task by name). A task is a Python class named by ``_target_`` in ``conf/task/<name>.yaml``.

A task declares its model, data, training loss, evaluation metric (name and direction) and where
its data comes from. The harness owns everything else: seeding, the optimizer, schedules, AE,
logging and the run record. Tiny tasks yield pre-made tensors from :meth:`Task.train_batches`
rather than going through a ``DataLoader``, so the harness stays cheap per step.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar, Literal

import torch
from torch import nn

from aebench.ae.bindings import ModelCoefficient, attribute_coefficient
from aebench.seeding import generator
from aebench.validation import ConfigError

__all__ = [
    "ConfigError",
    "MetricMode",
    "ModelCoefficient",
    "Task",
    "attribute_coefficient",
    "cycle_batches",
]

MetricMode = Literal["min", "max"]


class Task(ABC):
    """Base class of every task.

    Subclasses set the class attributes and implement the four abstract methods. The constructor
    receives the run seed and the task's own config keys (everything in ``conf/task/<name>.yaml``
    except the harness keys ``name``, ``budget``, ``lr`` and ``target``).
    """

    metric_name: ClassVar[str]
    metric_mode: ClassVar[MetricMode]
    #: ``synthetic`` or ``real``; analysis never pools the two.
    data_source: str = "synthetic"

    def __init__(self, seed: int, batch_size: int, loss_scale: float = 1.0) -> None:
        self.seed = seed
        self.batch_size = batch_size
        self.loss_scale = loss_scale

    def rng(self, stream: str) -> torch.Generator:
        """A generator for ``stream`` derived from the run seed alone (see ``aebench.seeding``)."""
        return generator(self.seed, stream)

    @abstractmethod
    def build_model(self) -> nn.Module:
        """A freshly initialised model. The harness seeds the global RNG (stream ``init``) first."""

    @abstractmethod
    def train_batches(self) -> Iterator[Any]:
        """An endless iterator of training batches, in an order drawn from ``self.rng("order")``."""

    @abstractmethod
    def loss(self, model: nn.Module, batch: Any) -> torch.Tensor:
        """The unscaled training loss on ``batch`` (the harness multiplies by ``loss_scale``)."""

    @abstractmethod
    def evaluate(self, model: nn.Module) -> float:
        """The evaluation metric of ``model`` (called under ``torch.no_grad`` in eval mode)."""

    #: whether :meth:`fitness` is a pure tensor function of the model's parameters (no Python
    #: side effects, no random draws), so that an ES optimizer may evaluate a whole population
    #: in one ``torch.func.vmap`` pass (EGGROLL); otherwise members are evaluated one by one
    batched_fitness: ClassVar[bool] = False

    def fitness(self, model: nn.Module, batch: Any, center: bool = False) -> torch.Tensor:
        """The fitness of ``model`` on ``batch`` for Evolution Strategies (higher is better), a
        0-dim tensor, called under ``torch.no_grad``: once per population member on the
        generation's batch, then once with ``center=True`` for the unperturbed parameters (the
        harness logs minus that as the training loss). Tasks with per-step state (episode
        counts, drift phases, :meth:`reward`, :meth:`train_log`) advance it on the centre call
        only, as :meth:`loss` does in a gradient step.

        Default: minus the unscaled training loss on the batch (supervised tasks, Rosenbrock's
        f); RL tasks override it with an episodic return.
        """
        return -self.loss(model, batch)

    def drift_phase(self, step: int) -> int | None:
        """The drift phase active at ``step`` for drifting tasks; ``None`` for stationary ones."""
        return None

    def reward(self) -> float | None:
        """The reward of the latest training step, fed to AE-1's R (e.g. the return of the
        episodes behind it); ``None`` for tasks without one. Read right after :meth:`loss`."""
        return None

    def train_log(self) -> dict[str, float]:
        """Extra curve columns at the current step (e.g. a rolling training accuracy or the
        unscaled episodic return), logged at the curve cadence; none by default."""
        return {}

    def es_parameters(self, model: nn.Module) -> list[nn.Parameter]:
        """The parameters :meth:`fitness` depends on: what an Evolution Strategy perturbs and
        updates (``aebench/es_module.py``). Default: all of them; a task whose fitness ignores
        part of its model (an RL critic) returns the rest, so ES spends no noise on it."""
        return list(model.parameters())

    #: environment steps taken so far (RL tasks count them in their rollouts; 0 otherwise):
    #: the compute axis of RL runs beside forward-equivalents
    env_steps: int = 0

    def coefficients(self, model: nn.Module) -> list[ModelCoefficient]:
        """Coefficients of ``model`` that AE may adapt beside the optimizer's (kinds ``gate``,
        ``dropout``, ``l1``; :mod:`aebench.ae.bindings`), each with read and write; none by
        default. Without AE they keep their configured values (a fixed-capacity baseline);
        they are not trained by backpropagation. Log them in :meth:`train_log` so every arm's
        curves carry them."""
        return []


def cycle_batches(
    tensors: tuple[torch.Tensor, ...], batch_size: int, order: torch.Generator
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Endless minibatches over ``tensors`` (same first dimension), reshuffled every epoch.

    The permutation of each epoch is drawn from ``order``; a final partial batch is dropped so
    every step sees ``batch_size`` examples.
    """
    n = tensors[0].shape[0]
    if batch_size > n:
        raise ConfigError(f"task.batch_size={batch_size}: larger than the {n} training examples")
    per_epoch = n // batch_size
    while True:
        perm = torch.randperm(n, generator=order)
        # one gather per epoch; each step then takes a view (no per-step copy)
        shuffled = tuple(t[perm] for t in tensors)
        for i in range(per_epoch):
            yield tuple(t[i * batch_size : (i + 1) * batch_size] for t in shuffled)
