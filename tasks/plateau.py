"""Plateau escape (protocol experiment 11): a regression whose loss starts on a flat region.

Data (``data`` stream). x ~ N(0, I_in); a random teacher MLP (in -> teacher_hidden -> 1, tanh)
gives h(x), standardised to zero mean and unit variance over the training inputs; the targets
are y = sigmoid(teacher_gain * h(x)) + noise * N(0, 1), spread over (0, 1) around 0.5. Train and
validation sets are drawn once; batches are slices of them (no DataLoader).

Model. A student MLP (in -> hidden -> 1, tanh) whose output z(x) goes through a saturating
sigmoid, y_hat = sigmoid(z(x)); the output bias starts at ``-init_offset`` (PyTorch's default
init elsewhere, from the ``init`` stream). With the default offset 10, every output starts near
sigmoid(-10) = 4.5e-5, where sigmoid' is 1.8e-4 of its peak: the MSE gradient reaching *every*
weight is scaled by that factor, so the loss sits on a plateau at about E[y^2] (the model
predicts ~0 everywhere). Plain gradient descent does leave it, slowly, because the slope is
small but non-zero and grows as exp(bias): the time to leave scales like exp(init_offset) / lr.
A clipped (hard) sigmoid would make the slope exactly zero, so no gradient method could leave;
the smooth one keeps the experiment about *speed* of escape, which is what the noise law AE-4
claims to improve (stall -> sigma up).

Metric: validation MSE (min). Its floor is ``noise**2``: with ``hidden >= teacher_hidden`` the
student can represent the teacher's map exactly.

Plateau exit (definition). The plateau level L_p is the training-set MSE of the initial model
(the same in every arm of a seed). The run *leaves the plateau* at step t, the number of optimizer
updates after which the model's minibatch training loss is first at most ``exit_fraction * L_p``
(default 0.5: the loss has halved). The loss computed in step t + 1's forward pass is that of
the weights after t updates, so t is one less than the step that saw it: the convention of
time-to-target, whose evaluation after step t scores those weights.
On the plateau the loss of a batch of 128 has a standard deviation of about 9% of L_p,
so half of L_p is more than 5 standard deviations away and a noisy batch does not fake an exit
(the lowest of 2000 plateau batches stayed above 0.67 L_p in each of seeds 0-2). ``train_log``
records, at the curve cadence:

``plateau_level``      L_p (constant)
``plateau_exit_step``  t once the run has left the plateau; NaN before
``saturation``         mean sigmoid'(z) / sigmoid'(0) over the step's batch: 0 = fully flat,
                       1 = every output in the steep middle of the sigmoid

The time-to-target of the run record is the same idea on the validation metric (its target in
``conf/task/plateau.yaml`` sits at about half the plateau level), resolved at the evaluation
cadence instead of every step.

Determinism: a run is bitwise reproducible on the same machine and build (torch version, thread
count); across machines float reductions can differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch import nn

from aebench.task import ConfigError, Task, cycle_batches


def tanh_mlp(in_dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))


class SigmoidRegressor(nn.Module):
    """``sigmoid(mlp(x))`` with the output bias set to ``-init_offset`` (the flat start)."""

    def __init__(self, in_dim: int, hidden: int, init_offset: float) -> None:
        super().__init__()
        self.body = tanh_mlp(in_dim, hidden)
        with torch.no_grad():
            self.body[-1].bias.fill_(-init_offset)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(x))


class PlateauTask(Task):
    metric_name = "mse"
    metric_mode = "min"
    data_source = "synthetic"

    def __init__(
        self,
        seed: int,
        batch_size: int = 128,
        loss_scale: float = 1.0,
        in_dim: int = 16,
        hidden: int = 32,
        teacher_hidden: int = 32,
        teacher_gain: float = 4.0,
        noise: float = 0.05,
        n_train: int = 4096,
        n_val: int = 2048,
        init_offset: float = 10.0,
        exit_fraction: float = 0.5,
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        for key, value in (
            ("in_dim", in_dim),
            ("hidden", hidden),
            ("teacher_hidden", teacher_hidden),
        ):
            if value < 1:
                raise ConfigError(f"task.{key}={value}: must be a positive integer")
        if not (math.isfinite(init_offset) and init_offset >= 0):
            raise ConfigError(f"task.init_offset={init_offset}: must be a non-negative number")
        if not 0 < exit_fraction < 1:
            raise ConfigError(f"task.exit_fraction={exit_fraction}: must be in (0, 1)")
        if noise < 0 or teacher_gain <= 0:
            bad = ("noise", noise) if noise < 0 else ("teacher_gain", teacher_gain)
            raise ConfigError(f"task.{bad[0]}={bad[1]}: must be positive (noise: non-negative)")
        self.in_dim, self.hidden, self.init_offset = in_dim, hidden, init_offset
        self.exit_fraction = exit_fraction
        g = self.rng("data")
        x = torch.randn(n_train + n_val, in_dim, generator=g)
        w1 = torch.randn(in_dim, teacher_hidden, generator=g) / in_dim**0.5
        w2 = torch.randn(teacher_hidden, generator=g)
        h = torch.tanh(2.0 * x @ w1) @ w2
        h = (h - h[:n_train].mean()) / h[:n_train].std()
        y = torch.sigmoid(teacher_gain * h) + noise * torch.randn(n_train + n_val, generator=g)
        self.x_train, self.y_train = x[:n_train], y[:n_train]
        self.x_val, self.y_val = x[n_train:], y[n_train:]
        self.plateau_level = math.nan
        self.steps = 0
        self.exit_step: int | None = None
        self.saturation = math.nan

    def build_model(self) -> nn.Module:
        model = SigmoidRegressor(self.in_dim, self.hidden, self.init_offset)
        with torch.no_grad():
            self.plateau_level = nn.functional.mse_loss(model(self.x_train), self.y_train).item()
        self.steps, self.exit_step = 0, None
        return model

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return cycle_batches((self.x_train, self.y_train), self.batch_size, self.rng("order"))

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        z = model.logits(x)
        p = torch.sigmoid(z)
        loss = nn.functional.mse_loss(p, y)
        self.steps += 1
        with torch.no_grad():
            self.saturation = (4.0 * p * (1.0 - p)).mean().item()  # sigmoid'(z) / sigmoid'(0)
        if self.exit_step is None and loss.item() <= self.exit_fraction * self.plateau_level:
            # this loss is that of the weights after steps - 1 updates (module doc)
            self.exit_step = self.steps - 1
        return loss

    def evaluate(self, model: nn.Module) -> float:
        device = next(model.parameters()).device
        return nn.functional.mse_loss(model(self.x_val.to(device)), self.y_val.to(device)).item()

    def train_log(self) -> dict[str, float]:
        exit_step = float("nan") if self.exit_step is None else float(self.exit_step)
        # logged from the first step, so a run that never exits still has the column
        return {
            "plateau_level": self.plateau_level,
            "saturation": self.saturation,
            "plateau_exit_step": exit_step,
        }
