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
matrix the sum is formed from the factors, ``sum_j w_j A_j B_j^T / sqrt(r)`` (one rank-r
``addmm`` per draw into one accumulator). Factors are regenerated from per-draw seeds
(:meth:`baselines.es.core.ESOptimizer.noise`); only the batched pass stacks them, transiently.

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
(``tests/es/test_algorithms.py::test_eggroll_full_rank_matches_full_rank_es_on_a_fixed_seed``
checks this against :class:`baselines.es.openai_es.OpenAIES` on a
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

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        sigma: float,
        population: int,
        rank: int = 1,
        antithetic: bool = True,
        shaping: str = "centered_ranks",
        weight_decay: float = 0.0,
        seed: int = 0,
        update: str = "sgd",
        betas: tuple[float, float] | list[float] = (0.9, 0.999),
        eps: float = 1e-8,
        decouple: bool = True,
        search_space: dict[str, Any] | None = None,
        noise_stream: int = 0,
    ) -> None:
        if rank < 1:
            raise ValueError(f"optimizer.rank={rank}: must be a positive integer")
        super().__init__(
            params,
            lr,
            sigma,
            population,
            antithetic,
            shaping,
            weight_decay,
            seed,
            update,
            betas,
            eps,
            decouple,
            noise_stream=noise_stream,
        )
        self.rank = int(rank)
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

    def _draw_one(self, p: torch.Tensor, gen: torch.Generator) -> Any:
        """Factors ``(A (m, r), B (n, r))`` for a matrix, full-rank noise otherwise."""
        kw = {"device": p.device, "dtype": p.dtype}
        if p.dim() == 2:
            r = self._rank(p)
            a = torch.randn((p.shape[0], r), generator=gen, **kw)
            return a, torch.randn((p.shape[1], r), generator=gen, **kw)
        return torch.randn(p.shape, generator=gen, **kw)

    def _expand(self, p: torch.Tensor, noise: Any) -> torch.Tensor:
        if isinstance(noise, tuple):
            a, b = noise
            return (a @ b.T) / math.sqrt(a.shape[-1])
        return noise

    def _accumulate(self, acc: torch.Tensor, p: torch.Tensor, noise: Any, w: float) -> None:
        if isinstance(noise, tuple):  # acc += w A B^T / sqrt(r), never forming E otherwise
            a, b = noise
            acc.addmm_(a, b.T, alpha=w / math.sqrt(a.shape[-1]))
        else:
            acc.add_(noise, alpha=w)

    @torch.no_grad()
    def evaluate(self, fitness: Callable[[], torch.Tensor], batched: bool = False) -> torch.Tensor:
        """One vmapped pass over the population when ``batched`` and :attr:`can_batch`; else the
        member loop of the base class."""
        if not (batched and self.can_batch):
            return super().evaluate(fitness)
        dev = self.params[0].device
        idx = torch.tensor([self.draw_index(i) for i in range(self.population)], device=dev)
        signs = torch.tensor([self.sign(i) for i in range(self.population)], device=dev)
        draws = [self.noise(j) for j in range(self.draws)]  # transient: the vmapped pass
        members: list[torch.Tensor] = []  # per parameter, stacked over members, signs applied
        factors = []
        for k in range(len(self.params)):
            per = [d[k] for d in draws]
            if isinstance(per[0], tuple):
                a, b = torch.stack([x[0] for x in per]), torch.stack([x[1] for x in per])
                factors.append((a, b))
                members += [a[idx] * signs[:, None, None].to(a.dtype), b[idx]]
            else:
                e = torch.stack(per)
                factors.append(None)
                members.append(e[idx] * signs.reshape(-1, *[1] * (e.dim() - 1)).to(e.dtype))
        slots = []  # per parameter: where its member tensors start in ``members``
        pos = 0
        for f in factors:
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


def _low_rank_forward(
    weight: torch.Tensor, bias: torch.Tensor | None, a: torch.Tensor, b: torch.Tensor, scale: float
) -> Callable[[torch.Tensor], torch.Tensor]:
    """A Linear forward ``x W^T + bias + scale (x B) A^T`` (one member, inside vmap)."""

    def forward(x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, weight, bias) + scale * ((x @ b) @ a.T)

    return forward
