"""CMA-ES through pycma (``cma`` package, Hansen's reference implementation), as a torch optimizer
with the same ask/evaluate/tell/step cycle as :mod:`baselines.es.core`.

All parameters are flattened into one vector x (float64 for pycma); ``cma.CMAEvolutionStrategy(
x0, sigma0, options)`` starts at the model's initial parameters. Each generation asks pycma for
``popsize`` candidates, evaluates them in a loop (written into the model in place, the mean
restored afterwards), tells pycma the *losses* (minus the fitnesses: pycma minimises), and the
step loads pycma's ``result.xfavorite`` into the model: the *phenotype* of the distribution mean
(``es.mean`` is pycma's internal genotype, which differs whenever options transform the space:
``bounds`` repair it into the box, ``fixed_variables`` drop coordinates from it), so the harness
evaluates the mean as pycma reports it.

IPOP restarts (``restarts`` > 0; Auger and Hansen 2005): when pycma's termination criteria fire,
a new strategy starts from the initial point x0 with ``sigma0`` and the population multiplied by
``incpopsize`` (pycma's ``fmin`` does the same with an array x0), up to ``restarts`` times; the
model then holds the new strategy's mean (the record's ``best`` metric keeps the best seen). The
param group's ``sigma`` mirrors pycma's current step size after each tell (logged in the curves);
``lr`` is pycma's ``CMA_cmean`` (learning rate of the mean, 1 by default), read once at the start.

When pycma's own termination criteria fire (``tolfun``, ``tolx``, ``tolstagnation``, ...) and no
restart is left, the strategy freezes: later generations ask nothing, count no evaluations and
keep the mean; the reasons are in :attr:`CMAES.stopped`. Full covariance costs O(n^2)
memory and O(n^3) per eigendecomposition, so CMA-ES refuses models above ``max_dim``
parameters. pycma draws from
numpy's global generator, which it seeds from the ``es`` stream of the run seed (no other part of
the harness uses numpy's global generator). AE has no binding for CMA-ES: it adapts its own step
size and covariance (``ae=on`` is refused before the run starts, ``aebench.validation``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import numpy as np
import torch
from torch.nn.utils import parameters_to_vector, vector_to_parameters
from torch.optim import Optimizer

from aebench.seeding import derive_seed


class CMAES(Optimizer):
    """pycma's CMA-ES behind the ES optimizer interface (see the module docstring).

    Args: ``sigma0`` initial step size (absolute, parameter units); ``population`` pycma's
    ``popsize`` (None: its default 4 + floor(3 ln n)); ``lr`` pycma's ``CMA_cmean``; ``max_dim``
    the largest parameter count accepted; ``options`` further pycma options (``cma.CMAOptions``);
    ``seed`` the run seed; ``restarts`` the IPOP restarts allowed, ``incpopsize`` the population
    factor per restart; ``search_space`` the YAML's tuning declaration (not used here).
    """

    ae_family: ClassVar[str] = "cma"
    #: pycma adapts its own step size and mean rate: no AE binding, never a fixed schedule
    self_tuning: ClassVar[bool] = True
    own_lr: ClassVar[bool] = True

    def __init__(
        self,
        params: Iterable[Any],
        sigma0: float = 0.5,
        population: int | None = None,
        lr: float = 1.0,
        max_dim: int = 1000,
        options: dict[str, Any] | None = None,
        seed: int = 0,
        restarts: int = 0,
        incpopsize: float = 2.0,
        search_space: dict[str, Any] | None = None,
    ) -> None:
        import cma

        if not (math.isfinite(sigma0) and sigma0 > 0):
            raise ValueError(f"optimizer.sigma0={sigma0}: must be a positive number")
        super().__init__(params, {"lr": lr, "sigma": sigma0, "weight_decay": 0.0})
        x0 = parameters_to_vector(self.params).detach().double().cpu().numpy()
        if x0.size > max_dim:
            raise ValueError(
                f"optimizer=cma_es: the model has {x0.size} parameters, above optimizer.max_dim="
                f"{max_dim} (full covariance is O(n^2) memory, O(n^3) time); use openai_es or "
                "eggroll"
            )
        opts: dict[str, Any] = {
            "seed": derive_seed(seed, "es") % (2**31 - 2) + 1,
            "verbose": -9,
            "CMA_cmean": lr,
        }
        if population is not None:
            opts["popsize"] = int(population)
        opts.update(options or {})
        if restarts < 0:
            raise ValueError(f"optimizer.restarts={restarts}: must be >= 0")
        if not incpopsize >= 1:
            raise ValueError(f"optimizer.incpopsize={incpopsize}: must be >= 1")
        self._x0, self._sigma0, self._opts = x0, sigma0, opts
        self.restarts_left, self.incpopsize, self.restarts_done = int(restarts), incpopsize, 0
        self.es = cma.CMAEvolutionStrategy(x0, sigma0, opts)
        self.population = int(self.es.popsize)
        self.evaluations = 0
        self.stopped: dict[str, Any] = {}
        self._solutions: list[np.ndarray] = []

    @property
    def params(self) -> list[torch.Tensor]:
        """Every parameter, group by group (the order of the flat vector)."""
        return [p for g in self.param_groups for p in g["params"]]

    def attach(self, model: torch.nn.Module) -> None:
        """Nothing to look at (interface of :class:`baselines.es.core.ESOptimizer`)."""

    @property
    def mean(self) -> np.ndarray:
        """pycma's ``xfavorite``: the distribution mean in phenotype space (bounds repaired,
        fixed variables inserted), full length."""
        return np.asarray(self.es.result.xfavorite, dtype=np.float64)

    def _load(self, x: np.ndarray) -> None:
        p0 = self.params[0]
        vector_to_parameters(torch.as_tensor(x, dtype=p0.dtype, device=p0.device), self.params)

    def ask(self) -> int:
        """pycma's candidates for this generation (none once it has stopped for good)."""
        self.stopped = dict(self.es.stop())
        if self.stopped and self.restarts_left > 0:
            import cma

            self.restarts_left -= 1
            self.restarts_done += 1
            opts = dict(self._opts, popsize=int(round(self.population * self.incpopsize)))
            opts["seed"] = int(opts["seed"]) + self.restarts_done
            self.es = cma.CMAEvolutionStrategy(self._x0, self._sigma0, opts)
            self.population = int(self.es.popsize)
            self.stopped = {}
        self._solutions = [] if self.stopped else list(self.es.ask())
        return len(self._solutions)

    @torch.no_grad()
    def evaluate(self, fitness: Callable[[], torch.Tensor], batched: bool = False) -> torch.Tensor:
        """Fitness of every candidate, in a loop; the mean is loaded back afterwards."""
        values = []
        try:
            for x in self._solutions:
                self._load(x)
                values.append(float(fitness()))
        finally:
            self._load(self.mean)
        self.evaluations += len(values)
        return torch.tensor(values, dtype=torch.float64)

    def tell(self, fitness: torch.Tensor, center: float | None = None) -> None:
        """Tell pycma the losses (minus the fitnesses); a non-finite loss becomes +inf-like.
        ``center`` (the ES module passes it) is not used: pycma keeps its own step size."""
        if not self._solutions:
            return
        losses = [-v if math.isfinite(v) else float("inf") for v in fitness.tolist()]
        self.es.tell(self._solutions, losses)
        for group in self.param_groups:
            group["sigma"] = float(self.es.sigma)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Load the phenotype of pycma's mean into the parameters (the closure runs first)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._load(self.mean)
        return loss
