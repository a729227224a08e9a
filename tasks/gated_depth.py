"""Gated depth adaptation (protocol experiment 14): AEONet, a residual net whose blocks are gated.

Data (``data`` stream). A ``classes``-arm spiral in the plane: for class k and t ~ U(0, 1) the
point ``t (cos phi, sin phi)`` with ``phi = 2 pi (turns t + k / classes)``, plus Gaussian noise of
std ``noise`` (relative to the spiral's radius 1); the plane is embedded in ``in_dim`` dimensions
by a random orthonormal pair of directions, and every dimension gets isotropic nuisance noise of
std ``nuisance``. The arms wind ``turns`` times around each other, so the decision boundary
needs many linear pieces: with the default 1.5 turns depth helps (measured at scale=cpu, AdamW,
seed 0, no AE, gates 0.5: see ``conf/task/gated_depth.yaml``). Train and validation sets are
drawn once; batches are slices of them (no DataLoader). Metric: validation accuracy (max).

Model (:class:`AEONet`). ``stem`` Linear(in_dim, width); ``blocks`` residual blocks
``h <- h + g_i f_i(h)`` with ``f_i(h) = W2 drop_p(relu(W1 LN(h)))``; head LN + Linear(width,
classes). The gates ``g_i`` (one per block) and the dropout probability ``p`` (one, shared by
the blocks) are *coefficients*, not parameters: plain floats that backpropagation does not
train, exposed to AE through :meth:`GatedDepthTask.coefficients` (kinds ``gate`` and
``dropout``, :mod:`aebench.ae.bindings`). Without AE they stay at their configured values
(``gate_init``, ``dropout``): the fixed-capacity baseline. The gradient reaches every weight as
usual (a gate scales its block's contribution and so its weights' gradients).

Dropout masks are drawn from the model's own generator (stream ``dropout`` of the run seed,
one uniform per unit whatever p is), so arms of a seed share their random numbers and the global
RNG is not touched.

Variance bursts (optional mode, off by default): with ``burst_every > 0``, for ``burst_len``
steps out of every ``burst_every`` a fraction ``burst_flip`` of each training batch gets a wrong
label, drawn uniformly from the other classes (``burst`` stream): the training loss jumps and
its variance spikes, the event the protocol's "capacity shrinks when variance spikes" is
about. Validation data is never flipped.

Curves (``train_log``, at the curve cadence): ``gate_<i>``, ``gate_mean``, ``capacity`` (sum of
the gates: the effective number of blocks), ``dropout``, ``train_acc`` (the step's batch), and
``burst`` (1 inside a burst) and ``flipped`` (the fraction of the step's labels changed) when
bursts are on. The values are those of the step's forward pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

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


class Block(nn.Module):
    """``f(h) = W2 drop_p(relu(W1 LN(h)))``; the owner applies the gate and the dropout mask."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)


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
    ) -> None:
        super().__init__()
        self.stem = nn.Linear(in_dim, width)
        self.blocks = nn.ModuleList(Block(width) for _ in range(n_blocks))
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
            h = h + gate * block.outer(self._drop(torch.relu(block.inner(block.norm(h)))))
        return self.head(self.norm(h))


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
        turns: float = 1.5,
        noise: float = 0.03,
        nuisance: float = 0.05,
        n_train: int = 4096,
        n_val: int = 2048,
        width: int = 32,
        blocks: int = 6,
        gate_init: float = 0.5,
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
            ("blocks", blocks, 1),
            ("n_train", n_train, 1),
            ("n_val", n_val, 1),
        ):
            if value < low:
                raise ConfigError(f"task.{key}={value}: must be an integer >= {low}")
        if not 0.0 < gate_init < 1.0:
            raise ConfigError(f"task.gate_init={gate_init}: must lie in (0, 1) (AE's logit chart)")
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
        self.gate_init, self.dropout = gate_init, dropout
        self.burst_every, self.burst_len, self.burst_flip = burst_every, burst_len, burst_flip
        g = self.rng("data")
        x2, y = spirals(n_train + n_val, classes, turns, noise, g)
        basis, _ = torch.linalg.qr(torch.randn(in_dim, 2, generator=g))
        x = x2 @ basis.T + nuisance * torch.randn(n_train + n_val, in_dim, generator=g)
        self.x_train, self.y_train = x[:n_train], y[:n_train]
        self.x_val, self.y_val = x[n_train:], y[n_train:]
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
            [self.gate_init] * self.blocks,
            self.dropout,
            derive_seed(self.seed, "dropout"),
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
        device = next(model.parameters()).device
        pred = model(self.x_val.to(device)).argmax(1)
        return (pred == self.y_val.to(device)).float().mean().item()

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
            capacity=sum(gates),
            dropout=p,
            train_acc=self.train_acc,
        )
        if self.burst_every > 0:
            values["burst"] = float(self.in_burst)
            values["flipped"] = self.flipped
        return values
