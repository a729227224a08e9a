"""EGGROLL: Evolution Strategies with low-rank perturbations (Sarkar et al. 2025, "Evolution
Strategies at the Hyperscale"), written here from the paper's description (the reference code is
GPL and was not used).

Perturbations. Every matrix parameter W (m x n, a 2-D tensor) gets, per distinct draw j, factors
A_j (m x r) and B_j (n x r) with N(0, 1) entries, r = min(rank, m, n), and the perturbation

    E_j = A_j B_j^T / sqrt(r)

whose entries have unit variance, like a full-rank Gaussian's; storing and drawing it costs
r (m + n) numbers instead of m n. Every other parameter (biases, vectors, a point in R^d) gets
full-rank Gaussian noise, as in OpenAI-ES: on a model without matrices (the Rosenbrock task's
point) EGGROLL *is* OpenAI-ES. Mirrored pairs (``+E_j``, ``-E_j``), centered ranks and the update
``theta <- theta + lr / (N sigma) sum_i u_i E_i`` are those of :mod:`baselines.es.core`; for a
matrix the sum is formed from the factors, ``sum_j w_j A_j B_j^T / sqrt(r)`` (one batched matmul),
never from materialised E_j.

Batched evaluation. When the task's fitness is a pure tensor function of the model
(``Task.batched_fitness``) and every parameter is the weight or bias of an ``nn.Linear`` (see
:meth:`EGGROLL.attach`), the whole population is evaluated in one pass: ``torch.func.vmap`` over
the members' factors, with each Linear computing

    y_i = x W^T + (b + sigma e_i) + (sigma / sqrt(r)) (x B_i) A_i^T

so all members share the one x W^T product per layer (a single large matmul over the stacked
members' inputs) and add their own rank-r correction through two thin batched matmuls; no
perturbed weight matrix is ever formed. Otherwise members are evaluated in a loop with E_i
materialised (same estimator, no speed-up).

Equivalence with full-rank ES. With r = n and factors chosen as A_j = sqrt(r) E_j, B_j = I, the
low-rank path reproduces full-rank ES exactly: same members, same fitnesses, same update
(``tests/es/test_eggroll.py`` checks this against :class:`baselines.es.openai_es.OpenAIES` on a
fixed seed). With drawn Gaussian factors the two agree in distribution only as r grows (the
paper's O(1/r) convergence of the update), which is not a per-seed identity.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from baselines.es.core import ESOptimizer


class EGGROLL(ESOptimizer):
    """Low-rank ES (see the module docstring). ``rank``: r for every matrix parameter."""

    def __init__(self, params: Iterable[Any], lr: float, sigma: float, population: int,
                 rank: int = 1, antithetic: bool = True, shaping: str = "centered_ranks",
                 weight_decay: float = 0.0, seed: int = 0) -> None:
        if rank < 1:
            raise ValueError(f"optimizer.rank={rank}: must be a positive integer")
        super().__init__(params, lr, sigma, population, antithetic, shaping, weight_decay, seed)
        self.rank = int(rank)
        #: per parameter: (A (H, m, r), B (H, n, r)) for matrices, None otherwise
        self.factors: list[tuple[torch.Tensor, torch.Tensor] | None] = []
        #: per parameter: full-rank noise (H, *shape) for non-matrices, None for matrices
        self.eps: list[torch.Tensor | None] = []
        self._linears: list[tuple[nn.Linear, int, int | None]] | None = None

    def attach(self, model: nn.Module) -> None:
        """Find the Linear layers of ``model`` for batched evaluation: possible only when every
        parameter of this optimizer is the weight or bias of an ``nn.Linear``."""
        index = {id(p): k for k, p in enumerate(self.params)}
        linears, covered = [], set()
        for module in model.modules():
            if isinstance(module, nn.Linear) and id(module.weight) in index:
                b = index.get(id(module.bias)) if module.bias is not None else None
                linears.append((module, index[id(module.weight)], b))
                covered.update(k for k in (index[id(module.weight)], b) if k is not None)
        self._linears = linears if len(covered) == len(index) else None

    @property
    def can_batch(self) -> bool:
        """Whether :meth:`attach` found a model evaluable in one pass."""
        return bool(self._linears)

    def _rank(self, p: torch.Tensor) -> int:
        return min(self.rank, p.shape[0], p.shape[1])

    def _draw(self) -> None:
        self.factors, self.eps = [], []
        for p in self.params:
            gen, kw = self.generator(p.device), {"device": p.device, "dtype": p.dtype}
            if p.dim() == 2:
                r = self._rank(p)
                a = torch.randn((self.draws, p.shape[0], r), generator=gen, **kw)
                b = torch.randn((self.draws, p.shape[1], r), generator=gen, **kw)
                self.factors.append((a, b))
                self.eps.append(None)
            else:
                self.factors.append(None)
                self.eps.append(torch.randn((self.draws, *p.shape), generator=gen, **kw))

    def _member_noise(self, i: int) -> list[torch.Tensor]:
        j, s = self.draw_index(i), self.sign(i)
        out = []
        for f, e in zip(self.factors, self.eps, strict=True):
            if f is not None:
                a, b = f
                out.append((a[j] @ b[j].T) * (s / math.sqrt(a.shape[-1])))
            else:
                out.append(e[j] if s > 0 else -e[j])
        return out

    def _estimate(self, w: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for f, e in zip(self.factors, self.eps, strict=True):
            if f is not None:
                a, b = f
                wa = a * w.to(a.dtype).to(a.device)[:, None, None]
                out.append(torch.einsum("jmr,jnr->mn", wa, b) / math.sqrt(a.shape[-1]))
            else:
                out.append(torch.tensordot(w.to(e.dtype).to(e.device), e, dims=1))
        return out

    @torch.no_grad()
    def evaluate(self, fitness: Callable[[], torch.Tensor], batched: bool = False) -> torch.Tensor:
        """One vmapped pass over the population when ``batched`` and :attr:`can_batch`; else the
        member loop of the base class."""
        if not (batched and self.can_batch):
            return super().evaluate(fitness)
        dev = self.params[0].device
        idx = torch.tensor([self.draw_index(i) for i in range(self.population)], device=dev)
        signs = torch.tensor([self.sign(i) for i in range(self.population)], device=dev)
        members: list[torch.Tensor] = []  # per parameter, stacked over members, signs applied
        for f, e in zip(self.factors, self.eps, strict=True):
            if f is not None:
                members += [f[0][idx] * signs[:, None, None].to(f[0].dtype), f[1][idx]]
            else:
                members.append(e[idx] * signs.reshape(-1, *[1] * (e.dim() - 1)).to(e.dtype))
        slots = []  # per parameter: where its member tensors start in ``members``
        pos = 0
        for f in self.factors:
            slots.append(pos)
            pos += 2 if f is not None else 1
        linears = self._linears or []
        sig = self._sigma_drawn

        def one(*m: torch.Tensor) -> torch.Tensor:
            for module, kw, kb in linears:
                a, b = m[slots[kw]], m[slots[kw] + 1]
                bias = None if kb is None else module.bias + sig[kb] * m[slots[kb]]
                module.forward = _low_rank_forward(
                    module.weight, bias, a, b, sig[kw] / math.sqrt(a.shape[-1])
                )
            try:
                return fitness()
            finally:
                for module, _, _ in linears:
                    del module.forward

        values = torch.func.vmap(one)(*members)
        self.evaluations += self.population
        return values.detach().double().reshape(-1).cpu()


def _low_rank_forward(weight: torch.Tensor, bias: torch.Tensor | None, a: torch.Tensor,
                      b: torch.Tensor, scale: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """A Linear forward ``x W^T + bias + scale (x B) A^T`` (one member, inside vmap)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight, bias) + scale * ((x @ b) @ a.T)

    return forward
