"""What every Evolution Strategy here shares: the ask/evaluate/tell cycle as a torch optimizer.

One ES step is one *generation*:

1. :meth:`ESOptimizer.ask` draws the population's perturbations around the current parameters
   theta (the centre) from the optimizer's own generator (stream ``es`` of the run seed, so no
   other random stream is consumed and arms of one seed stay paired);
2. :meth:`ESOptimizer.evaluate` computes every member's fitness (higher is better) with a
   callable that reads the model: by default in a loop, writing member i's parameters
   ``theta + sigma * E_i`` into the model in place and restoring the centre exactly afterwards;
3. :meth:`ESOptimizer.tell` shapes the fitnesses into utilities and writes the ES estimate of the
   *loss* gradient (minus the fitness gradient) into ``p.grad``;
4. :meth:`ESOptimizer.step` applies ``theta <- theta - lr (g + weight_decay theta)``. It calls
   the closure first, as torch optimizers do, which is where Lightning runs
   ``on_before_optimizer_step``: AE measures the ES estimate there and may rewrite ``lr`` and
   ``sigma`` of the param group before the update (``aebench.ae.bindings.ESBinding``).

The param group holds ``lr`` (alpha), ``sigma`` (the perturbation std, **absolute**, in parameter
units, the same for every parameter) and ``weight_decay``. A new ``sigma`` takes effect at the next
:meth:`ask`; the current generation's estimate divides by the sigma it was drawn with.

Antithetic (mirrored) sampling: members ``2j`` and ``2j+1`` carry ``+E_j`` and ``-E_j`` (the
negation is exact). Fitness shaping (``shaping``): ``centered_ranks`` (Salimans et al. 2017) maps
the fitnesses to ranks scaled to [-0.5, 0.5] (ties broken by order), which makes the update
invariant to any increasing transform of the fitness, the loss scale included; ``none`` uses the
raw fitness. With utilities u_i the fitness-gradient estimate is

    g_F = 1 / (N sigma) sum_i u_i E_i           (N = population, E_i the signed perturbation)

the gradient of the Gaussian-smoothed (shaped) objective of Salimans et al.; ``p.grad = -g_F``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import torch
from torch.optim import Optimizer

from aebench.seeding import derive_seed

SHAPINGS = ("centered_ranks", "none")


def centered_ranks(fitness: torch.Tensor) -> torch.Tensor:
    """Ranks of ``fitness`` (0 = worst) scaled to [-0.5, 0.5]; ties are ranked by position."""
    n = fitness.numel()
    ranks = torch.empty(n, dtype=torch.float64, device=fitness.device)
    ranks[torch.argsort(fitness.reshape(-1), stable=True)] = torch.arange(
        n, dtype=torch.float64, device=fitness.device
    )
    return ranks / max(n - 1, 1) - 0.5


def shape_fitness(fitness: torch.Tensor, shaping: str) -> torch.Tensor:
    """Utilities from raw fitnesses (see the module docstring), float64."""
    if shaping == "centered_ranks":
        return centered_ranks(fitness)
    if shaping == "none":
        return fitness.reshape(-1).double()
    raise ValueError(f"shaping={shaping!r}: allowed: {', '.join(SHAPINGS)}")


def pair_weights(utilities: torch.Tensor, antithetic: bool) -> torch.Tensor:
    """Weights of the distinct draws E_j: ``u_{2j} - u_{2j+1}`` with mirrored pairs, else u."""
    if antithetic:
        return utilities[0::2] - utilities[1::2]
    return utilities


class ESOptimizer(Optimizer):
    """Base class: population bookkeeping, the evaluation loop, shaping and the SGD-like step.

    Subclasses implement :meth:`_draw` (the generation's perturbations), :meth:`_member_noise`
    (member i's full-size signed perturbation per parameter) and :meth:`_estimate` (the fitness
    gradient from per-draw weights). Args as in the YAML options (``conf/optimizer/*.yaml``);
    ``seed`` is the run seed (the ES module passes it; it is not part of the config, so the arm id
    does not depend on it).
    """

    #: read by ``aebench.ae.bindings.binding_for`` (duck typing: aebench does not import baselines)
    ae_family: ClassVar[str] = "es"

    def __init__(
        self,
        params: Iterable[Any],
        lr: float,
        sigma: float,
        population: int,
        antithetic: bool = True,
        shaping: str = "centered_ranks",
        weight_decay: float = 0.0,
        seed: int = 0,
    ) -> None:
        if not (math.isfinite(lr) and lr > 0):
            raise ValueError(f"optimizer.lr={lr}: must be a positive number")
        if not (math.isfinite(sigma) and sigma > 0):
            raise ValueError(f"optimizer.sigma={sigma}: must be a positive number")
        if population < 2 or (antithetic and population % 2):
            raise ValueError(
                f"optimizer.population={population}: must be >= 2 (and even with antithetic=true)"
            )
        if shaping not in SHAPINGS:
            raise ValueError(f"optimizer.shaping={shaping}: allowed: {', '.join(SHAPINGS)}")
        super().__init__(params, {"lr": lr, "sigma": sigma, "weight_decay": weight_decay})
        self.population = int(population)
        self.antithetic = bool(antithetic)
        self.shaping = shaping
        self.seed = int(seed)
        #: fitness evaluations so far (population members; the module's centre evaluation is
        #: counted separately by the module)
        self.evaluations = 0
        self._generators: dict[str, torch.Generator] = {}
        self._center: list[torch.Tensor] | None = None
        self._sigma_drawn: list[float] = []

    # ------------------------------------------------------------------ helpers
    @property
    def params(self) -> list[torch.Tensor]:
        """Every parameter, group by group (the order of the perturbation draws)."""
        return [p for g in self.param_groups for p in g["params"]]

    @property
    def draws(self) -> int:
        """Distinct perturbations per generation (half the population when mirrored)."""
        return self.population // 2 if self.antithetic else self.population

    def generator(self, device: torch.device) -> torch.Generator:
        """The ES noise generator on ``device`` (one per device, seeded from stream ``es``)."""
        key = str(device)
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device).manual_seed(derive_seed(self.seed, "es"))
            self._generators[key] = gen
        return gen

    def sign(self, i: int) -> float:
        """+1 or -1: the mirror sign of member ``i``."""
        return -1.0 if self.antithetic and i % 2 else 1.0

    def draw_index(self, i: int) -> int:
        """The distinct draw that member ``i`` uses."""
        return i // 2 if self.antithetic else i

    def _group_sigmas(self) -> list[float]:
        return [float(g["sigma"]) for g in self.param_groups for _ in g["params"]]

    def attach(self, model: torch.nn.Module) -> None:
        """Let the algorithm look at the model's structure (EGGROLL finds its Linear layers for
        batched evaluation); nothing by default."""

    # ------------------------------------------------------------------ the cycle
    @torch.no_grad()
    def ask(self) -> int:
        """Draw this generation's perturbations; returns the population size."""
        self._center = [p.detach().clone() for p in self.params]
        self._sigma_drawn = self._group_sigmas()
        self._draw()
        return self.population

    @contextmanager
    def member(self, i: int) -> Iterator[None]:
        """Parameters of member ``i`` written into the model in place; the centre restored after."""
        if self._center is None:
            raise RuntimeError("ES: call ask() before evaluating members")
        with torch.no_grad():
            for p, c, s, e in zip(self.params, self._center, self._sigma_drawn,
                                  self._member_noise(i), strict=True):
                p.copy_(c).add_(e, alpha=s)
        try:
            yield
        finally:
            with torch.no_grad():
                for p, c in zip(self.params, self._center, strict=True):
                    p.copy_(c)

    @torch.no_grad()
    def evaluate(self, fitness: Callable[[], torch.Tensor], batched: bool = False) -> torch.Tensor:
        """Fitness of every member (shape (population,), float64). ``fitness()`` reads the model.

        ``batched`` asks for a one-pass evaluation where the algorithm has one (EGGROLL); the
        base class always loops.
        """
        values = []
        for i in range(self.population):
            with self.member(i):
                values.append(float(fitness()))
        self.evaluations += self.population
        return torch.tensor(values, dtype=torch.float64)

    @torch.no_grad()
    def tell(self, fitness: torch.Tensor) -> None:
        """Shape ``fitness`` and write the loss-gradient estimate ``-g_F`` into ``p.grad``."""
        fitness = fitness.reshape(-1)
        if fitness.numel() != self.population:
            raise ValueError(f"ES tell: {fitness.numel()} fitnesses for {self.population} members")
        # a NaN fitness ranks as the worst member (argsort would place it as the best)
        fitness = torch.nan_to_num(fitness.double(), nan=-math.inf)
        u = shape_fitness(fitness, self.shaping)
        w = pair_weights(u, self.antithetic)
        for p, s, g in zip(self.params, self._sigma_drawn, self._estimate(w), strict=True):
            p.grad = (g * (-1.0 / (self.population * s))).to(p.dtype)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """``theta <- theta - lr (grad + weight_decay theta)`` per group; the closure runs first."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, wd = float(group["lr"]), float(group["weight_decay"])
            for p in group["params"]:
                if p.grad is None:
                    continue
                d = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                p.add_(d, alpha=-lr)
        return loss

    # ------------------------------------------------------------------ per algorithm
    def _draw(self) -> None:
        raise NotImplementedError

    def _member_noise(self, i: int) -> list[torch.Tensor]:
        raise NotImplementedError

    def _estimate(self, w: torch.Tensor) -> list[torch.Tensor]:
        """``sum_j w_j E_j`` per parameter (the caller divides by N sigma)."""
        raise NotImplementedError
