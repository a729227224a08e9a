"""Ill-conditioned quadratic bowl with k-step stale gradients (protocol experiment 7, the induced
oscillation test).

Objective. The model's only parameter is the point x in R^dim and

    f(x) = 1/2 (x - x*)^T H (x - x*),    H = Q diag(lambda) Q^T,    f* = f(x*) = 0,

with eigenvalues log-spaced from ``lambda_max = 1`` down to ``lambda_min = 1 / condition`` (so
the condition number is exactly ``condition``, and the largest stable plain-GD step is 2). Q is
a random orthogonal matrix (``rotate: true``; the identity otherwise) so that the bowl is not
aligned with the coordinate axes, where a diagonal preconditioner (Adam, Adafactor) would undo
the conditioning for free. Q and x* ~ N(0, I) come from the run's ``data`` stream.

Start (``init`` stream, so arms of a seed start at the same point). In the eigenbasis the error
x_0 - x* has random signs and magnitudes |N(0, 1)|, except along the stiffest eigenvector, where
the magnitude is 1 (so the overshoot below is never measured against a near-zero start); it is
then scaled so that f(x_0) = start_distance^2 mean(lambda) / 2 exactly, the value of an error
of length ``start_distance`` spread evenly over the eigenvectors. Every seed therefore starts at
the same suboptimality (the target means the same reduction in every run) but with a different
spread over the modes: a start with equal magnitudes would make f's trajectory under any
rotation-invariant linear method (GD, heavy ball) the same for every seed, and repeats
meaningless.

Stale gradients. The gradient applied at optimizer step t is computed at the parameters of step
t - k (``delay`` = k), as in asynchronous SGD where a worker's gradient arrives k updates late:

* :meth:`loss` pushes a snapshot (a detached copy) of the live x_t onto a queue that holds the
  last k + 1 snapshots; the oldest entry is x_{t-k} (x_0 while t < k: before the run there is
  no older point, so the first k steps use the start, the usual convention);
* it computes the gradient g = H (x_{t-k} - x*) (+ the step's noise vector) at that stale point;
* it returns the surrogate ``f(x_{t-k}) + g . (x_t - stopgrad(x_t))``. Its *value* is the loss
  at the stale point (the loss that came with the gradient: what an asynchronous worker
  reports and what AE's T and V measure), and its *gradient* with respect to the live
  parameter is exactly g. So the harness's ordinary backward copies the stale gradient onto the
  live parameter, and the optimizer (and AE) act on it without knowing about the delay.

k = 0 is plain gradient descent on f. ``build_model`` starts a fresh queue.

Gradient noise (``grad_noise > 0``) makes the problem stochastic as in ``tasks/rosenbrock.py``:
each "batch" is n ~ N(0, grad_noise^2 I) from the ``order`` stream; the training loss is
f + n . x, its gradient H (x - x*) + n (evaluated at the stale point).

Metric: the suboptimality f(x_t) - f* = f(x_t) at the live parameters (min). Curve columns
(``train_log``, at the curve cadence), from which the analysis reads the experiment's metrics:

``subopt``       f(x_t) at the live parameters after step t (``train_loss`` is f at x_{t-k})
``stiff``        c_t / |c_0|, where c_t = q_max . (x_t - x*) is the coordinate of the error along
                 the stiffest eigenvector (lambda = 1): delay-induced oscillation appears there
                 first, as sign flips of this column
``overshoot``    the overshoot amplitude so far: max |c_s| / |c_0| over the steps s after the
                 first sign change of c (0 before any; a "change" to |c| < 1e-5 |c_0| is
                 float32 rounding of a converged error and does not count); tracked at every
                 step, not only at logged ones. Above 1 means the oscillation grew (runaway).
``rate``         the mean convergence rate so far: -ln(f(x_t) / f(x_0)) / t per step
                 (negative while f grows); the last row gives the run's rate
``grad_cos``     cos(g_t, g_{t-1}) of the applied gradients: the task's own record of AE-1's
                 rho, so its distribution is available for AE-off arms too (AE logs ``rho``)
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator

import torch
from torch import nn

from aebench.task import ConfigError, Task
from tasks.rosenbrock import Point


def random_orthogonal(dim: int, g: torch.Generator) -> torch.Tensor:
    """A Haar-distributed orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = torch.linalg.qr(torch.randn(dim, dim, generator=g, dtype=torch.float64))
    return q * torch.sign(torch.diagonal(r)).unsqueeze(0)


#: sign changes of the stiff coordinate smaller than this fraction of |c_0| are float32 rounding
#: of a converged error, not an overshoot
RESOLUTION = 1e-5


class QuadraticDelayTask(Task):
    metric_name = "subopt"
    metric_mode = "min"
    data_source = "synthetic"

    #: noise vectors are drawn in chunks of this many steps (pre-made batches)
    chunk = 1024

    def __init__(
        self,
        seed: int,
        batch_size: int = 1,
        loss_scale: float = 1.0,
        dim: int = 50,
        condition: float = 1000.0,
        delay: int = 4,
        rotate: bool = True,
        start_distance: float = 10.0,
        grad_noise: float = 0.0,
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        if dim < 2:
            raise ConfigError(f"task.dim={dim}: the bowl needs at least 2 dimensions")
        if not (math.isfinite(condition) and condition >= 1):
            raise ConfigError(f"task.condition={condition}: must be a finite number >= 1")
        if delay < 0:
            raise ConfigError(f"task.delay={delay}: must be a non-negative integer")
        if not (math.isfinite(start_distance) and start_distance > 0):
            raise ConfigError(f"task.start_distance={start_distance}: must be a positive number")
        if not (math.isfinite(grad_noise) and grad_noise >= 0):
            raise ConfigError(f"task.grad_noise={grad_noise}: must be a non-negative number")
        self.dim, self.delay, self.grad_noise = dim, delay, grad_noise
        g = self.rng("data")
        # eigenvalues 1 ... 1/condition, log-spaced, largest first
        self.eigenvalues = condition ** -torch.linspace(0.0, 1.0, dim, dtype=torch.float64)
        q = random_orthogonal(dim, g) if rotate else torch.eye(dim, dtype=torch.float64)
        self.hessian = ((q * self.eigenvalues) @ q.T).float()
        self.hessian = 0.5 * (self.hessian + self.hessian.T)  # exactly symmetric in float32
        self.q_max = q[:, 0].float()
        self.x_star = torch.randn(dim, generator=g)
        g_init = self.rng("init")
        signs = torch.randint(0, 2, (dim,), generator=g_init).double() * 2 - 1
        magnitude = torch.randn(dim, generator=g_init, dtype=torch.float64).abs()
        magnitude[0] = 1.0  # the stiffest mode (eigenvalues are sorted, largest first)
        z = signs * magnitude
        f_start = start_distance**2 * self.eigenvalues.mean() / 2
        z = z * torch.sqrt(f_start / (0.5 * (self.eigenvalues * z**2).sum()))
        self.start = self.x_star + (q @ z).float()
        self.f0 = self.f(self.start).item()
        self._model: Point | None = None
        self._reset_tracking()

    # ------------------------------------------------------------------ the objective
    # (the task's tensors follow x to its device; a no-op on the CPU)
    def f(self, x: torch.Tensor) -> torch.Tensor:
        d = x - self.x_star.to(x.device)
        return 0.5 * d @ (self.hessian.to(x.device) @ d)

    def grad(self, x: torch.Tensor) -> torch.Tensor:
        """The exact gradient H (x - x*) of :meth:`f`."""
        return self.hessian.to(x.device) @ (x - self.x_star.to(x.device))

    def stiff_coordinate(self, x: torch.Tensor) -> float:
        return float(self.q_max.to(x.device) @ (x - self.x_star.to(x.device)))

    # ------------------------------------------------------------------ the Task interface
    def _reset_tracking(self) -> None:
        self.history: deque[torch.Tensor] = deque(maxlen=self.delay + 1)
        self.steps = 0
        self.c0 = self.stiff_coordinate(self.start)
        self.crossed = False
        self.overshoot = 0.0
        self.last_grad: torch.Tensor | None = None
        self.grad_cos = math.nan

    def build_model(self) -> nn.Module:
        self._model = Point(self.start)
        self._reset_tracking()
        return self._model

    def train_batches(self) -> Iterator[torch.Tensor]:
        if self.grad_noise == 0:
            zero = torch.zeros(self.dim)
            while True:
                yield zero
        g = self.rng("order")
        while True:
            noise = self.grad_noise * torch.randn(self.chunk, self.dim, generator=g)
            yield from noise

    def _track(self, x: torch.Tensor) -> None:
        """Overshoot bookkeeping on the error coordinate along the stiffest direction."""
        c = self.stiff_coordinate(x)
        if not self.crossed and c * self.c0 < 0 and abs(c) > RESOLUTION * abs(self.c0):
            self.crossed = True
        if self.crossed and math.isfinite(c):
            self.overshoot = max(self.overshoot, abs(c) / abs(self.c0))

    def loss(self, model: nn.Module, batch: torch.Tensor) -> torch.Tensor:
        x = model.x
        live = x.detach().clone()
        self._track(live)
        self.history.append(live)
        stale = self.history[0]  # x_{t-k}; x_0 while t < k
        g = self.grad(stale)
        value = self.f(stale)
        if self.grad_noise > 0:
            g = g + batch
            value = value + batch @ stale
        if self.last_grad is not None:
            denom = (g.norm() * self.last_grad.norm()).item()
            self.grad_cos = float(g @ self.last_grad) / denom if denom > 0 else math.nan
        self.last_grad = g
        self.steps += 1
        # value f(x_{t-k}); gradient w.r.t. the live x exactly g (see the module docstring)
        return value + (g * (x - x.detach())).sum()

    def evaluate(self, model: nn.Module) -> float:
        return self.f(model.x.detach()).item()

    def train_log(self) -> dict[str, float]:
        if self._model is None:
            return {}
        x = self._model.x.detach()
        self._track(x)
        f = self.f(x).item()
        rate = math.nan
        if self.steps > 0 and f > 0 and math.isfinite(f):
            rate = -math.log(f / self.f0) / self.steps
        return {
            "subopt": f,
            "stiff": self.stiff_coordinate(x) / abs(self.c0),
            "overshoot": self.overshoot,
            "rate": rate,
            "grad_cos": self.grad_cos,
        }
