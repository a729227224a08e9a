"""The LightningModule that trains any :class:`aebench.task.Task`.

Manual optimization keeps Lightning's per-step cost low (see benchmarks/harness_overhead.py); the
order inside a step is: loss, ``last_loss`` published, backward, optimizer step (Lightning calls
``on_before_optimizer_step`` on callbacks here, with the gradients present), schedule step.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import lightning as L
import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from aebench.curves import CurveBuffer
from aebench.task import Task


def set_optimizer_mode(optimizer: Any, mode: str) -> None:
    """Put an optimizer with train/eval modes into ``mode`` (``"train"`` or ``"eval"``).

    The protocol: an optimizer that defines both ``train()`` and ``eval()`` (schedule-free
    optimizers: training steps at y, evaluation at the averaged x) gets ``train()`` before
    every training step's forward pass, ``eval()`` before every evaluation and at the end of
    training, and ``train()`` again after an evaluation. Others (torch.optim has neither
    method) are left alone. A Lightning wrapper is unwrapped.
    """
    opt = getattr(optimizer, "optimizer", optimizer)
    train, evaluate = getattr(opt, "train", None), getattr(opt, "eval", None)
    if callable(train) and callable(evaluate):
        (train if mode == "train" else evaluate)()


class TaskModule(L.LightningModule):
    def __init__(
        self,
        task: Task,
        model: torch.nn.Module,
        make_optimizer: Callable[..., Optimizer],
        make_schedule: Callable[..., LRScheduler],
        total_steps: int,
    ) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.task = task
        self.model = model
        self.make_optimizer = make_optimizer
        self.make_schedule = make_schedule
        self.total_steps = total_steps
        self.loss_scale = task.loss_scale
        #: the scaled training loss of the current step, detached (read by callbacks)
        self.last_loss: torch.Tensor = torch.tensor(float("nan"))
        #: the task's reward of the current step (AE-1's R), None for tasks without one
        self.last_reward: torch.Tensor | None = None
        #: compute spent in forward-pass equivalents on one batch (the matched-compute axis of
        #: ES against gradient runs): a gradient step costs ``step_cost`` = 3 (one forward, a
        #: backward counted as two, the usual rule); an ES generation its members + its centre
        self.forward_equivalents: float = 0.0
        self.step_cost: float = 3.0
        #: the run's curves; callbacks add columns with ``curves.log(step, **values)``
        self.curves = CurveBuffer(first_columns=("train_loss", f"val_{task.metric_name}"))

    def configure_optimizers(self) -> Any:
        optimizer = self.make_optimizer(self.model.parameters())
        schedule = self.make_schedule(optimizer, total_steps=self.total_steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        optimizer = self.optimizers()
        set_optimizer_mode(optimizer, "train")  # the loss and its gradient are taken at y
        loss = self.task.loss(self.model, batch) * self.loss_scale
        self.last_loss = loss.detach()
        reward = self.task.reward()
        if reward is not None:
            self.last_reward = torch.tensor(float(reward))
        optimizer.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        optimizer.step()
        self.lr_schedulers().step()
        self.forward_equivalents += self.step_cost
        return self.last_loss

    def transfer_batch_to_device(
        self, batch: Any, device: torch.device, dataloader_idx: int
    ) -> Any:
        """A batch of tensors already on ``device`` (the tasks' batches on the CPU) is passed
        through; Lightning's generic move walks the collection every step (~10 us here)."""
        if isinstance(batch, tuple | list) and all(
            isinstance(t, torch.Tensor) and t.device == device for t in batch
        ):
            return batch
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def on_train_end(self) -> None:
        """Leave an optimizer with modes in eval mode: the final weights are what it evaluates."""
        for optimizer in self.trainer.optimizers:
            set_optimizer_mode(optimizer, "eval")


# Lightning inspects ``training_step``'s signature on every step (whether it takes batch_idx);
# a stored ``__signature__`` is what ``inspect.signature`` returns first (~20 us a step here)
TaskModule.training_step.__signature__ = inspect.signature(TaskModule.training_step)
