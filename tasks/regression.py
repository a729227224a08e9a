"""Static regression (protocol experiment 1): an MLP fits y = A x + noise.

Data: x ~ N(0, I_in), y = x A^T / sqrt(in_dim) + noise * N(0, I_out), with A ~ N(0, 1) drawn from
the run's ``data`` stream, so y has unit variance per output and the noise floor of the
validation MSE is ``noise**2``. Train and validation sets are generated once, up front; batches
are slices of those tensors (no DataLoader). Metric: validation MSE (lower is better).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from aebench.task import Task, cycle_batches


def mlp(in_dim: int, hidden: Sequence[int], out_dim: int) -> nn.Sequential:
    layers: list[nn.Module] = []
    width = in_dim
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()]
        width = h
    layers.append(nn.Linear(width, out_dim))
    return nn.Sequential(*layers)


class RegressionTask(Task):
    metric_name = "mse"
    metric_mode = "min"
    data_source = "synthetic"
    #: the fitness (minus the batch MSE) is a pure tensor function: EGGROLL evaluates in one pass
    batched_fitness = True

    def __init__(
        self,
        seed: int,
        batch_size: int = 256,
        loss_scale: float = 1.0,
        in_dim: int = 32,
        out_dim: int = 8,
        hidden: Sequence[int] = (256, 256),
        n_train: int = 8192,
        n_val: int = 2048,
        noise: float = 0.1,
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        self.in_dim, self.out_dim, self.hidden = in_dim, out_dim, tuple(hidden)
        g = self.rng("data")
        a = torch.randn(out_dim, in_dim, generator=g)
        x = torch.randn(n_train + n_val, in_dim, generator=g)
        y = x @ a.T / in_dim**0.5 + noise * torch.randn(n_train + n_val, out_dim, generator=g)
        self.x_train, self.y_train = x[:n_train], y[:n_train]
        self.x_val, self.y_val = x[n_train:], y[n_train:]

    def build_model(self) -> nn.Module:
        return mlp(self.in_dim, self.hidden, self.out_dim)

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return cycle_batches((self.x_train, self.y_train), self.batch_size, self.rng("order"))

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        return nn.functional.mse_loss(model(x), y)

    def evaluate(self, model: nn.Module) -> float:
        device = next(model.parameters()).device  # the harness may train on an accelerator
        return nn.functional.mse_loss(model(self.x_val.to(device)), self.y_val.to(device)).item()
