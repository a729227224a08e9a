"""The tuning problems meta-training runs on: small regression and Rosenbrock, never a
prediction's experiment.

* ``regression``: an MLP (in 8, hidden 16, out 2, ReLU) fits y = x A^T / sqrt(8) + 0.1 N(0, 1)
  (the form of ``tasks/regression.py``, smaller); 512 training points in minibatches of 64,
  a held-out validation set of 512 (the outer objective); base lr sgdm 0.1, adam 3e-3.
* ``rosenbrock``: f(x) = sum 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2 in 2-D from (-1.2, 1) + 0.1
  N(0, I), training loss f + <xi_t, x> with xi_t ~ 0.1 N(0, I) (gradient noise as in
  ``tasks/rosenbrock.py``), validation f(x); base lr sgdm 1e-3, adam 3e-2 (the tuned LRs in
  ``conf/task/rosenbrock.yaml``).

Every draw comes from a ``torch.Generator`` seeded by ``seed``: same seed, same problem.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from aebench.meta.inner import OptSpec

NAMES = ("regression", "rosenbrock")


@dataclass
class Problem:
    name: str
    model: nn.Module
    params: dict[str, torch.Tensor]
    loss_fn: Callable  # (f, theta, t) -> training loss of step t
    val_fn: Callable  # theta -> held-out validation loss (the outer objective)
    spec: OptSpec


class _Point(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # the parameter is the point itself
        return x


def _rosen(x: torch.Tensor) -> torch.Tensor:
    return (100.0 * (x[1:] - x[:-1] ** 2) ** 2 + (1.0 - x[:-1]) ** 2).sum()


LR = {"regression": {"sgdm": 0.1, "adam": 3e-3}, "rosenbrock": {"sgdm": 1e-3, "adam": 3e-2}}


def make_problem(name: str, optimizer: str, seed: int) -> Problem:
    """Build a tuning problem; ``seed`` fixes data, initialisation and batch order."""
    gen = torch.Generator().manual_seed(int(seed))
    dt = torch.float64
    spec = OptSpec(optimizer, LR[name][optimizer] if name in LR else 0.0)
    if name == "regression":
        d_in, d_out, n, bs = 8, 2, 512, 64
        A = torch.randn(d_out, d_in, generator=gen, dtype=dt)

        def data(m: int) -> tuple[torch.Tensor, torch.Tensor]:
            x = torch.randn(m, d_in, generator=gen, dtype=dt)
            return x, x @ A.T / d_in**0.5 + 0.1 * torch.randn(m, d_out, generator=gen, dtype=dt)

        xt, yt = data(n)
        xv, yv = data(n)
        torch.manual_seed(int(seed))  # nn.Linear's init uses the global stream
        model = nn.Sequential(nn.Linear(d_in, 16), nn.ReLU(), nn.Linear(16, d_out)).to(dt)
        params = {k: v.detach().clone() for k, v in model.named_parameters()}
        order = torch.cat([torch.randperm(n, generator=gen) for _ in range(64)])

        def loss_fn(f, theta, t):
            i = order[(t * bs) % order.numel() :][:bs]
            return ((f(theta, xt[i]) - yt[i]) ** 2).mean()

        def val_fn(theta):
            return ((torch.func.functional_call(model, theta, (xv,)) - yv) ** 2).mean()

        return Problem(name, model, params, loss_fn, val_fn, spec)
    if name == "rosenbrock":
        start = torch.tensor([-1.2, 1.0], dtype=dt) + 0.1 * torch.randn(2, generator=gen, dtype=dt)
        noise = 0.1 * torch.randn(4096, 2, generator=gen, dtype=dt)
        model = _Point()

        def loss_fn(f, theta, t):
            x = theta["x"]
            return _rosen(x) + (noise[t % noise.shape[0]] * x).sum()

        def val_fn(theta):
            return _rosen(theta["x"])

        return Problem(name, model, {"x": start}, loss_fn, val_fn, spec)
    raise ValueError(f"problem={name!r}: the tuning problems are {', '.join(NAMES)}")
