"""Basis selection (protocol experiment 15): AEOBasisEquation, sparse regression over a fixed
library of basis functions.

Data (``data`` stream). x ~ U(-x_max, x_max); y = sin(x) + 0.3 x^2 + noise * N(0, 1) (the
protocol's equation). Train, validation and test sets are drawn once (the test set from its own
stream ``data/test``); batches are slices of the training set. The defaults (noise 0.5, 128
training points) are the regime where the L1 strength decides which bases an exact lasso
selects (``conf/task/basis_equation.yaml`` has the scan; with noise 0.1 and 1024 points every
lambda from 1e-3 to 1 selected the true set, so selection errors only measured convergence).

Model (:class:`BasisEquation`). ``y_hat = sum_j w_j phi_j(x) / s_j`` over the library
:data:`LIBRARY` (``task.basis`` picks and orders the entries), with ``s_j`` the RMS of ``phi_j``
over the training inputs: the weights are in "contribution" units (w_j is the RMS of basis j's
term), so one L1 strength treats every basis alike whatever its range (x^3 reaches 27 at x = 3,
exp(-x^2) stays below 1). The weights start at 0 and are trained by the optimizer as usual; the
true expression is ``1.0 sin(x) + 0.3 x^2`` in the library's own units. Several bases are
strongly correlated on the interval (x, sin x, tanh x and x^3; x^2, |x| and x^4), so the
least-squares fit spreads weight among them and a sparse, correct expression needs the penalty.

Training loss: ``MSE + lambda * ||w||_1``, the objective the optimizer differentiates (and so
the loss AE's signals see; note the loop this closes: raising lambda raises the loss). lambda is
the model's ``l1`` attribute, a *coefficient* (kind ``l1``, :mod:`aebench.ae.bindings`): a plain
float that backpropagation does not train; without AE it stays at its configured value.

Selection. Basis j is *selected* when ``|w_j| >= select_threshold`` (contribution units; the
weights of a subgradient-trained L1 fit hover near 0 rather than sitting at it). Curves
(``train_log``): ``l1`` (lambda of the step), ``mse`` (the step's data-fit part),
``selected`` (count), ``sparsity`` (fraction not selected), ``selection_errors`` (the size of
the symmetric difference between the selected set and the true set {sin, x2}: 0 = exactly the
right bases), and ``w_<name>`` per basis, the coefficient in the library's units (w_j / s_j), so
the expression can be read off the last row. Metric: MSE (min; floor noise^2) on the split
``eval_split`` names: ``test`` (reported) or ``val`` (for choosing LRs, lambda and the target).

Determinism: a run is bitwise reproducible on the same machine and build (torch version, thread
count); across machines float reductions can differ.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence

import torch
from torch import nn

from aebench.task import ConfigError, ModelCoefficient, Task, attribute_coefficient, cycle_batches

#: the basis library by name
LIBRARY: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "one": torch.ones_like,
    "x": lambda x: x,
    "x2": lambda x: x**2,
    "x3": lambda x: x**3,
    "x4": lambda x: x**4,
    "sin": torch.sin,
    "cos": torch.cos,
    "sin2": lambda x: torch.sin(2 * x),
    "gauss": lambda x: torch.exp(-(x**2)),
    "abs": torch.abs,
    "tanh": torch.tanh,
}
SPLITS = ("test", "val")
#: the bases of the protocol's equation y = sin(x) + 0.3 x^2 and their true coefficients
TRUE_TERMS: dict[str, float] = {"sin": 1.0, "x2": 0.3}


class BasisEquation(nn.Module):
    """``features @ w`` with the L1 strength ``l1`` as a plain float (module doc)."""

    def __init__(self, n_basis: int, l1: float) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(n_basis))
        self.l1 = float(l1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features @ self.weight


class BasisEquationTask(Task):
    metric_name = "mse"
    metric_mode = "min"
    data_source = "synthetic"

    def __init__(
        self,
        seed: int,
        batch_size: int = 64,
        loss_scale: float = 1.0,
        basis: Sequence[str] = (
            "one",
            "x",
            "x2",
            "x3",
            "x4",
            "sin",
            "cos",
            "sin2",
            "gauss",
            "abs",
            "tanh",
        ),
        x_max: float = 3.0,
        noise: float = 0.5,
        n_train: int = 128,
        n_val: int = 1024,
        n_test: int = 1024,
        eval_split: str = "test",
        l1: float = 1e-2,
        select_threshold: float = 0.05,
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        unknown = [b for b in basis if b not in LIBRARY]
        if unknown or len(set(basis)) != len(basis) or not basis:
            raise ConfigError(
                f"task.basis={list(basis)}: distinct names from " + ", ".join(LIBRARY)
            )
        missing = [b for b in TRUE_TERMS if b not in basis]
        if missing:
            raise ConfigError(
                f"task.basis={list(basis)}: must contain the true terms " + ", ".join(TRUE_TERMS)
            )
        if not (math.isfinite(l1) and l1 >= 0):
            raise ConfigError(f"task.l1={l1}: must be a number >= 0")
        if eval_split not in SPLITS:
            raise ConfigError(f"task.eval_split={eval_split}: must be one of {', '.join(SPLITS)}")
        for key, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
            if value < 1:
                raise ConfigError(f"task.{key}={value}: must be a positive integer")
        if not (x_max > 0 and noise >= 0 and select_threshold > 0):
            raise ConfigError(
                f"task.x_max/noise/select_threshold={x_max}/{noise}/"
                f"{select_threshold}: x_max and the threshold > 0, noise >= 0"
            )
        self.names = list(basis)
        self.l1 = l1
        self.select_threshold = select_threshold
        self.true_set = set(TRUE_TERMS)
        g = self.rng("data")
        n = n_train + n_val
        x = (2 * torch.rand(n, generator=g) - 1) * x_max
        y = torch.sin(x) + 0.3 * x**2 + noise * torch.randn(n, generator=g)
        phi = torch.stack([LIBRARY[b](x) for b in self.names], dim=1)
        self.scale = phi[:n_train].pow(2).mean(0).sqrt()
        features = phi / self.scale
        self.f_train, self.y_train = features[:n_train], y[:n_train]
        self.f_val, self.y_val = features[n_train:], y[n_train:]
        # the test split from its own stream, scaled with the training set's RMS
        gt = self.rng("data/test")
        xt = (2 * torch.rand(n_test, generator=gt) - 1) * x_max
        self.y_test = torch.sin(xt) + 0.3 * xt**2 + noise * torch.randn(n_test, generator=gt)
        self.f_test = torch.stack([LIBRARY[b](xt) for b in self.names], dim=1) / self.scale
        self.eval_split = eval_split
        self._last: dict[str, float] = {}

    def build_model(self) -> nn.Module:
        return BasisEquation(len(self.names), self.l1)

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return cycle_batches((self.f_train, self.y_train), self.batch_size, self.rng("order"))

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        f, y = batch
        mse = nn.functional.mse_loss(model(f), y)
        lam = float(model.l1)
        loss = mse + lam * model.weight.abs().sum() if lam > 0 else mse
        self._record(model, lam, mse.item())
        return loss

    def _record(self, model: BasisEquation, lam: float, mse: float) -> None:
        w = model.weight.detach().cpu()
        selected = {
            b
            for b, v in zip(self.names, w.tolist(), strict=True)
            if abs(v) >= self.select_threshold
        }
        coef = (w / self.scale).tolist()
        self._last = {
            "l1": lam,
            "mse": mse,
            "selected": float(len(selected)),
            "sparsity": 1.0 - len(selected) / len(self.names),
            "selection_errors": float(len(selected ^ self.true_set)),
        }
        self._last.update({f"w_{b}": c for b, c in zip(self.names, coef, strict=True)})

    def evaluate(self, model: nn.Module) -> float:
        f, y = (self.f_test, self.y_test) if self.eval_split == "test" else (self.f_val, self.y_val)
        device = model.weight.device
        return nn.functional.mse_loss(model(f.to(device)), y.to(device)).item()

    def coefficients(self, model: nn.Module) -> list[ModelCoefficient]:
        """The L1 strength lambda (kind ``l1``)."""
        return [attribute_coefficient(model, "l1", "l1", "l1")]

    def train_log(self) -> dict[str, float]:
        return dict(self._last)
