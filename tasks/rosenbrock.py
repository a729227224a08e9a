"""N-dimensional Rosenbrock (protocol experiment 8, the high-curvature valley).

The model's only parameter is the point x in R^dim, and the objective is the chained form

    f(x) = sum_{i=1}^{dim-1} 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2,

with its known minimum f = 0 at (1, ..., 1). The start is ``start`` repeated cyclically to ``dim``
coordinates (the classic (-1.2, 1) by default) plus ``start_jitter * N(0, 1)`` drawn from the
run's ``init`` stream, so seeds differ but arms of one seed start at the same point.

Gradient noise (``grad_noise > 0``) makes the problem stochastic: each "batch" is a vector
n ~ N(0, grad_noise^2 I) drawn in advance from the ``order`` stream and the training loss is
f(x) + n . x, whose gradient is grad f(x) + n. The metric is the exact f(x) (lower is better).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import torch
from torch import nn

from aebench.task import ConfigError, Task


def rosenbrock(x: torch.Tensor) -> torch.Tensor:
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


class Point(nn.Module):
    """A model whose parameters are just a point in R^dim."""

    def __init__(self, start: torch.Tensor) -> None:
        super().__init__()
        self.x = nn.Parameter(start.clone())


class RosenbrockTask(Task):
    metric_name = "f"
    metric_mode = "min"
    data_source = "synthetic"

    #: noise vectors are drawn in chunks of this many steps (pre-made batches)
    chunk = 1024

    def __init__(
        self,
        seed: int,
        batch_size: int = 1,
        loss_scale: float = 1.0,
        dim: int = 2,
        start: Sequence[float] = (-1.2, 1.0),
        start_jitter: float = 0.1,
        grad_noise: float = 0.0,
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        if dim < 2:
            raise ConfigError(f"task.dim={dim}: Rosenbrock needs at least 2 dimensions")
        if not start:
            raise ConfigError("task.start=[]: give at least one coordinate")
        self.dim, self.grad_noise = dim, grad_noise
        base = torch.tensor([start[i % len(start)] for i in range(dim)], dtype=torch.float32)
        self.start = base + start_jitter * torch.randn(dim, generator=self.rng("init"))

    def build_model(self) -> nn.Module:
        return Point(self.start)

    def train_batches(self) -> Iterator[torch.Tensor]:
        g = self.rng("order")
        while True:
            noise = self.grad_noise * torch.randn(self.chunk, self.dim, generator=g)
            yield from noise

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        x = model.x
        f = rosenbrock(x)
        return f + (batch * x).sum() if self.grad_noise > 0 else f

    def evaluate(self, model: nn.Module) -> float:
        return rosenbrock(model.x).item()
