"""Gated depth adaptation (protocol experiment 14): AEONet, a residual net whose blocks are gated.

Data (``data`` stream). A ``classes``-arm spiral in the plane: for class k and t ~ U(0, 1) the
point ``t (cos phi, sin phi)`` with ``phi = 2 pi (turns t + k / classes)``, plus Gaussian noise of
std ``noise`` (relative to the spiral's radius 1); the plane is embedded in ``in_dim`` dimensions
by a random orthonormal pair of directions, and every dimension gets isotropic nuisance noise of
std ``nuisance``. The arms wind ``turns`` times around each other, so the decision boundary
needs many linear pieces. Train, validation and test sets are drawn once (the test set from its
own stream ``data/test``); batches are slices of the training set (no DataLoader). Metric:
accuracy (max) on the split ``eval_split`` names: ``test`` (the reported metric) or ``val``
(for choosing LRs and calibrating the target, so the test split plays no part in either).

Model (:class:`AEONet`). ``stem`` Linear(in_dim, width); ``blocks`` residual blocks
``h <- h + f_i(h)`` with ``f_i(h) = W2 (m(g_i) * drop_p(relu(W1 LN(h))))``, ``units`` hidden
units per block, and head LN + Linear(width, classes). The gate ``g_i`` of block i sets how many
of the block's hidden units exist: ``m_j(g) = clamp(g * units - j, 0, 1)`` keeps the first
``g * units`` units (one fractional unit at the edge) and zeroes the rest, whose weights then get
no gradient. So a gate is capacity the weights cannot undo: ``capacity = sum_i g_i * units`` is
the number of hidden units in use (a gate that only scaled a block's output, as before, is
absorbed by the next trainable layer: a change of parametrisation, not of capacity). With gates
at 0.05, 0.125, 0.25 and 0.5 the validation accuracy rose with capacity (``conf/task/
gated_depth.yaml`` has the numbers).

The gates (one per block, each with its own prior: ``gate_init`` is one value for all or a list
of one per block) and the dropout probability ``p`` (one, shared by the blocks) are
*coefficients*, not parameters: plain floats that backpropagation does not train, exposed to AE
through :meth:`GatedDepthTask.coefficients` (kinds ``gate`` and ``dropout``,
:mod:`aebench.ae.bindings`). Without AE they stay at their configured values: the
fixed-capacity baseline. AE drives every gate from the same shared signals (the controller has
no per-block signal), so gates with one common prior move in lockstep; per-block priors are what
lets them differ, each relaxing toward its own prior under the same drive.

Dropout masks are drawn from the model's own generator (stream ``dropout`` of the run seed,
one uniform per unit whatever p is), so arms of a seed share their random numbers and the global
RNG is not touched.

Variance bursts (optional mode, off by default): with ``burst_every > 0``, for ``burst_len``
steps out of every ``burst_every`` a fraction ``burst_flip`` of each training batch gets a wrong
label, drawn uniformly from the other classes (``burst`` stream): the training loss jumps and
its variance spikes, the event the protocol's "capacity shrinks when variance spikes" is
about. Validation data is never flipped.

Curves (``train_log``, at the curve cadence): ``gate_<i>``, ``gate_mean``, ``capacity`` (hidden
units in use, ``sum_i g_i * units``), ``dropout``, ``train_acc`` (the step's batch), and
``burst`` (1 inside a burst) and ``flipped`` (the fraction of the step's labels changed) when
bursts are on. The values are those of the step's forward pass.

Determinism: a run is bitwise reproducible on the same machine and build (torch version, thread
count); across machines float reductions can differ.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import torch
from torch import nn

from aebench.seeding import derive_seed
from aebench.task import ConfigError, ModelCoefficient, Task, attribute_coefficient, cycle_batches


def spirals(
    n: int, classes: int, turns: float, noise: float, g: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` points of a ``classes``-arm spiral in the plane and their labels (module doc)."""
    y = torch.randint(0, classes, (n,), generator=g)
    t = torch.rand(n, generator=g)
    phi = 2 * math.pi * (turns * t + y.float() / classes)
    x = torch.stack([t * torch.cos(phi), t * torch.sin(phi)], dim=1)
    return x + noise * torch.randn(n, 2, generator=g), y


def unit_mask(gate: float, units: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """The first ``gate * units`` hidden units of a block, soft at the edge:
    ``m_j = clamp(gate * units - j, 0, 1)`` for ``j = 0 .. units - 1`` (one fractional unit)."""
    j = torch.arange(units, device=device, dtype=dtype)
    return (gate * units - j).clamp(0.0, 1.0)


class Block(nn.Module):
    """``f(h) = W2 (m * drop_p(relu(W1 LN(h))))``; the owner applies the unit mask ``m`` of the
    block's gate and the dropout mask."""

    def __init__(self, width: int, units: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, units)
        self.outer = nn.Linear(units, width)


class AEONet(nn.Module):
    """Stem, ``n_blocks`` gated residual blocks, head (module doc). ``gates`` and ``dropout``
    are plain Python floats (coefficients, not parameters)."""

    def __init__(
        self,
        in_dim: int,
        width: int,
        n_blocks: int,
        classes: int,
        gates: list[float],
        dropout: float,
        dropout_seed: int,
        units: int | None = None,
    ) -> None:
        super().__init__()
        self.units = int(units or width)
        self.stem = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(Block(width, self.units) for _ in range(n_blocks))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, classes)
        self.gates = [float(g) for g in gates]
        self.dropout = float(dropout)
        self.dropout_seed = dropout_seed
        self._generators: dict[str, torch.Generator] = {}

    def _generator(self, device: torch.device) -> torch.Generator:
        gen = self._generators.get(str(device))
        if gen is None:
            gen = torch.Generator(device=device).manual_seed(self.dropout_seed)
            self._generators[str(device)] = gen
        return gen

    def _drop(self, h: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return h
        u = torch.rand(h.shape, generator=self._generator(h.device), device=h.device, dtype=h.dtype)
        p = self.dropout
        if p <= 0.0:
            return h
        return h * (u >= p).to(h.dtype) / (1.0 - p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for gate, block in zip(self.gates, self.blocks, strict=True):
            m = unit_mask(gate, self.units, h.device, h.dtype)
            h = h + block.outer(m * self._drop(torch.relu(block.inner(block.norm(h)))))
        return self.head(self.norm(h))


SPLITS = ("test", "val")


class GatedDepthTask(Task):
    metric_name = "acc"
    metric_mode = "max"
    data_source = "synthetic"

    def __init__(
        self,
        seed: int,
        batch_size: int = 128,
        loss_scale: float = 1.0,
        in_dim: int = 8,
        classes: int = 4,
        turns: float = 2.0,
        noise: float = 0.03,
        nuisance: float = 0.05,
        n_train: int = 4096,
        n_val: int = 2048,
        n_test: int = 2048,
        eval_split: str = "test",
        width: int = 32,
        units: int = 32,
        blocks: int = 6,
        gate_init: float | Sequence[float] = 0.5,
        dropout: float = 0.1,
        burst_every: int = 0,
        burst_len: int = 0,
        burst_flip: float = 0.5,
    ) -> None:
        super().__init__(seed, batch_size, loss_scale)
        for key, value, low in (
            ("in_dim", in_dim, 2),
            ("classes", classes, 2),
            ("width", width, 1),
            ("units", units, 1),
            ("blocks", blocks, 1),
            ("n_train", n_train, 1),
            ("n_val", n_val, 1),
            ("n_test", n_test, 1),
        ):
            if value < low:
                raise ConfigError(f"task.{key}={value}: must be an integer >= {low}")
        priors = (
            [float(gate_init)] * blocks
            if isinstance(gate_init, int | float)
            else [float(g) for g in gate_init]
        )
        if len(priors) != blocks or not all(0.0 < g < 1.0 for g in priors):
            raise ConfigError(
                f"task.gate_init={gate_init}: a number or a list of task.blocks={blocks} numbers, "
                "each in (0, 1) (AE's logit chart)"
            )
        if eval_split not in SPLITS:
            raise ConfigError(f"task.eval_split={eval_split}: must be one of {', '.join(SPLITS)}")
        if not 0.0 <= dropout < 1.0:
            raise ConfigError(f"task.dropout={dropout}: must lie in [0, 1)")
        if turns <= 0 or noise < 0 or nuisance < 0:
            raise ConfigError(
                f"task.turns/noise/nuisance={turns}/{noise}/{nuisance}: turns must "
                "be > 0, noise and nuisance >= 0"
            )
        if (
            burst_every < 0
            or not 0 <= burst_flip <= 1
            or (burst_every > 0 and not 0 < burst_len <= burst_every)
        ):
            raise ConfigError(
                f"task.burst_every/burst_len/burst_flip={burst_every}/{burst_len}/"
                f"{burst_flip}: need burst_every >= 0 (0: off), else 0 < "
                "burst_len <= burst_every; flip in [0, 1]"
            )
        self.in_dim, self.classes, self.width, self.blocks = in_dim, classes, width, blocks
        self.units, self.eval_split = units, eval_split
        self.gate_init, self.dropout = priors, dropout
        self.burst_every, self.burst_len, self.burst_flip = burst_every, burst_len, burst_flip
        g = self.rng("data")
        n = n_train + n_val
        x2, y = spirals(n, classes, turns, noise, g)
        basis, _ = torch.linalg.qr(torch.randn(in_dim, 2, generator=g))
        x = x2 @ basis.T + nuisance * torch.randn(n, in_dim, generator=g)
        self.x_train, self.y_train = x[:n_train], y[:n_train]
        self.x_val, self.y_val = x[n_train:], y[n_train:]
        # drawn after the others (its own stream), so adding it left train and val unchanged
        gt = self.rng("data/test")
        x2, self.y_test = spirals(n_test, classes, turns, noise, gt)
        self.x_test = x2 @ basis.T + nuisance * torch.randn(n_test, in_dim, generator=gt)
        self._burst_gen = self.rng("burst")
        self.steps = 0
        self.in_burst = False
        self.flipped = 0.0
        self.train_acc = math.nan
        self.model: AEONet | None = None
        self._used: tuple[list[float], float] | None = None

    def build_model(self) -> nn.Module:
        self.model = AEONet(
            self.in_dim,
            self.width,
            self.blocks,
            self.classes,
            list(self.gate_init),
            self.dropout,
            derive_seed(self.seed, "dropout"),
            self.units,
        )
        return self.model

    def train_batches(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return cycle_batches((self.x_train, self.y_train), self.batch_size, self.rng("order"))

    def _bursting(self, step: int) -> bool:
        """Whether training step ``step`` (1-based) lies in a burst: the last ``burst_len``
        steps of every period of ``burst_every``."""
        if self.burst_every <= 0:
            return False
        return step % self.burst_every >= self.burst_every - self.burst_len

    def loss(self, model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        x, y = batch
        self.steps += 1
        self.in_burst = self._bursting(self.steps)
        if self.burst_every > 0:
            # drawn every step (in a burst or not) so the stream's position depends on the step
            flip = torch.rand(y.shape, generator=self._burst_gen) < self.burst_flip
            # a flipped label moves to one of the *other* classes, so burst_flip is the fraction
            # of wrong labels (a uniform redraw would keep 1/classes of them: 0.375 for 0.5)
            offset = torch.randint(1, self.classes, y.shape, generator=self._burst_gen)
            if self.in_burst:
                wrong = (y + offset.to(y.device)) % self.classes
                y_new = torch.where(flip.to(y.device), wrong, y)
                self.flipped = (y_new != y).float().mean().item()
                y = y_new
            else:
                self.flipped = 0.0
        logits = model(x)
        with torch.no_grad():
            self.train_acc = (logits.argmax(1) == y).float().mean().item()
        self._used = (list(model.gates), float(model.dropout))
        return nn.functional.cross_entropy(logits, y)

    def evaluate(self, model: nn.Module) -> float:
        x, y = (self.x_test, self.y_test) if self.eval_split == "test" else (self.x_val, self.y_val)
        device = next(model.parameters()).device
        pred = model(x.to(device)).argmax(1)
        return (pred == y.to(device)).float().mean().item()

    def coefficients(self, model: nn.Module) -> list[ModelCoefficient]:
        """One ``gate`` per block (each carrying 1/N of the kind's budget weight, so the N
        gates weigh as one coefficient in AE-6 and AE-10) and the shared ``dropout``."""
        n = len(model.gates)
        gates = [
            attribute_coefficient(model, "gates", "gate", f"gate_{i}", 1.0 / n, index=i)
            for i in range(n)
        ]
        return [*gates, attribute_coefficient(model, "dropout", "dropout", "dropout")]

    def train_log(self) -> dict[str, float]:
        if self._used is None:
            return {}
        gates, p = self._used
        values = {f"gate_{i}": g for i, g in enumerate(gates)}
        values.update(
            gate_mean=sum(gates) / len(gates),
            capacity=sum(gates) * self.units,
            dropout=p,
            train_acc=self.train_acc,
        )
        if self.burst_every > 0:
            values["burst"] = float(self.in_burst)
            values["flipped"] = self.flipped
        return values
