"""What every Evolution Strategy here shares: the ask/evaluate/tell cycle as a torch optimizer.

One ES step is one *generation*:

1. :meth:`ESOptimizer.ask` draws the population's perturbations around the current parameters
   theta (the centre) from the optimizer's own generator (stream ``es`` of the run seed, so no
   other random stream is consumed and arms of one seed stay paired; ``noise_stream=k > 0``
   draws from stream ``es/k`` instead: the same seed's initialisation and batches with other
   perturbations, a replicate of the ES noise for null controls);
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
the fitnesses to ranks scaled to [-0.5, 0.5] (tied values share their average rank), which
makes the update invariant to any increasing transform of the fitness, the loss scale included;
``none`` uses the
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
UPDATES = ("sgd", "adam")


def centered_ranks(fitness: torch.Tensor) -> torch.Tensor:
    """Ranks of ``fitness`` (0 = worst) scaled to [-0.5, 0.5]; tied values share their average
    rank (``r_i = #{f_j < f_i} + (#{f_j = f_i} - 1) / 2``), so a flat fitness gives utilities 0
    and a tied mirrored pair weight 0: ties never move the parameters."""
    f = fitness.reshape(-1)
    n = f.numel()
    _, inverse, counts = torch.unique(f, sorted=True, return_inverse=True, return_counts=True)
    starts = torch.cumsum(counts, 0) - counts
    avg = starts.double() + (counts.double() - 1.0) / 2.0
    return avg[inverse].to(torch.float64) / max(n - 1, 1) - 0.5


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
    """Base class: population bookkeeping, seeded noise, the evaluation loop, shaping, the step.

    Subclasses implement :meth:`_draw_one` (distinct draw j's noise, per parameter, from a
    generator seeded for that draw), :meth:`_expand` (a full-size perturbation from it) and may
    override :meth:`_accumulate`. Args as in the YAML options (``conf/optimizer/*.yaml``);
    ``seed`` is the run seed (the ES module passes it; it is not part of the config, so the arm id
    does not depend on it).

    Seeded noise (memory O(model) at any population). :meth:`ask` takes one 63-bit generation
    seed from the optimizer's generator (stream ``es``); draw j's noise is regenerated on demand
    from ``(generation seed, j)`` whenever a member or the estimate needs it (the seed
    reconstruction of Salimans et al.'s workers), so a generation holds the centre copy, one
    draw's noise and the estimate's accumulator, never N/2 noise copies. Each draw is made twice
    (members, then estimate); the last draw is cached so a mirrored pair shares one.

    Update (``update``): ``sgd`` is ``theta <- theta - lr (g + wd theta)``; ``adam`` feeds
    ``g + wd theta`` to Adam (``betas``, ``eps``; bias-corrected), the setting of Salimans et al.
    (their L2 coefficient is added to the estimate the same way).

    sigma and the step (``decouple``, default true). With centered ranks the sum
    ``sum_i u_i E_i`` does not depend on sigma or on the fitness scale, so the literal estimate
    ``g = sum u E / (N sigma)`` makes the SGD step scale as lr / sigma: raising sigma shortens the
    step and AE-5's shrink of alpha and sigma by one factor leaves the step unchanged. Decoupled,
    the division uses the *configured* sigma (``sigma_ref``, the value lr was tuned with), so the
    step is lr's alone while sigma only sets the smoothing scale; at the configured sigma (every
    run without AE) it is the literal estimate, bit for bit. With ``shaping=none`` the division
    always uses the drawn sigma: there the estimate is the gradient itself, sigma-free in the
    linear regime.
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
        update: str = "sgd",
        betas: tuple[float, float] | list[float] = (0.9, 0.999),
        eps: float = 1e-8,
        decouple: bool = True,
        search_space: dict[str, Any] | None = None,
        noise_stream: int = 0,
    ) -> None:
        # search_space: the optimizer YAML's tuning declaration for rulesets (aebench.tuning);
        # accepted so that hydra can instantiate the config, never read here
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
        if update not in UPDATES:
            raise ValueError(f"optimizer.update={update}: allowed: {', '.join(UPDATES)}")
        betas = tuple(float(b) for b in betas)
        if len(betas) != 2 or not all(0.0 <= b < 1.0 for b in betas):
            raise ValueError(f"optimizer.betas={list(betas)}: two numbers in [0, 1)")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"optimizer.eps={eps}: must be a positive number")
        if isinstance(noise_stream, bool) or int(noise_stream) != noise_stream or noise_stream < 0:
            raise ValueError(
                f"optimizer.noise_stream={noise_stream}: must be an integer >= 0 "
                "(0: the run's stream es)"
            )
        defaults: dict[str, Any] = {
            "lr": lr,
            "sigma": sigma,
            "weight_decay": weight_decay,
            "sigma_ref": sigma,
        }
        if update == "adam":
            defaults.update(betas=betas, eps=eps)
        super().__init__(params, defaults)
        self.population = int(population)
        self.antithetic = bool(antithetic)
        self.shaping = shaping
        self.update = update
        self.decouple = bool(decouple)
        self.seed = int(seed)
        self.noise_stream = int(noise_stream)
        #: fitness evaluations so far (population members; the module's centre evaluation is
        #: counted by the module)
        self.evaluations = 0
        self._generators: dict[str, torch.Generator] = {}
        self._center: list[torch.Tensor] | None = None
        self._sigma_drawn: list[float] = []
        self._generation_seed = 0
        self._cache: tuple[int, list[Any]] | None = None
        #: this generation's curvature-to-slope ratio of the mirrored fitnesses, set by the ES
        #: module (aebench/es_module.py); AE's sigma signal (ESBinding.noise_signals)
        self.curvature = math.nan
        #: generations started (ask() calls): lets AE's sigma signal filter once per generation
        self.generations = 0

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
        """The ES generator on ``device`` (one per device, seeded from stream ``es``, or
        ``es/k`` with ``noise_stream=k > 0``)."""
        key = str(device)
        gen = self._generators.get(key)
        if gen is None:
            stream = "es" if self.noise_stream == 0 else f"es/{self.noise_stream}"
            gen = torch.Generator(device=device).manual_seed(derive_seed(self.seed, stream))
            self._generators[key] = gen
        return gen

    def draw_seed(self, j: int) -> int:
        """The seed of distinct draw ``j`` of this generation (a SplitMix64-style mix)."""
        z = (self._generation_seed + 0x9E3779B97F4A7C15 * (j + 1)) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & 0xFFFFFFFFFFFFFFFF
        return (z ^ (z >> 31)) & ((1 << 63) - 1)

    def noise(self, j: int) -> list[Any]:
        """Draw ``j``'s noise per parameter, regenerated from its seed (the last one cached)."""
        if self._cache is not None and self._cache[0] == j:
            return self._cache[1]
        gens: dict[str, torch.Generator] = {}
        out = []
        for p in self.params:
            key = str(p.device)
            if key not in gens:
                gens[key] = torch.Generator(device=p.device).manual_seed(self.draw_seed(j))
            out.append(self._draw_one(p, gens[key]))
        self._cache = (j, out)
        return out

    def sign(self, i: int) -> float:
        """+1 or -1: the mirror sign of member ``i``."""
        return -1.0 if self.antithetic and i % 2 else 1.0

    def draw_index(self, i: int) -> int:
        """The distinct draw that member ``i`` uses."""
        return i // 2 if self.antithetic else i

    def _group_sigmas(self) -> list[float]:
        return [float(g["sigma"]) for g in self.param_groups for _ in g["params"]]

    def _divisors(self) -> list[float]:
        """The sigma the estimate divides by, per parameter (see ``decouple``)."""
        if self.decouple and self.shaping == "centered_ranks":
            return [
                float(g.get("sigma_ref", g["sigma"]))
                for g in self.param_groups
                for _ in g["params"]
            ]
        return self._sigma_drawn

    def sigma_ratio(self) -> float:
        """``sigma_ref / sigma`` of this generation's draws (1.0 at the configured sigma); with
        several groups of different ratios, their geometric mean weighted by parameter count."""
        refs = [float(g.get("sigma_ref", g["sigma"])) for g in self.param_groups]
        counts = [sum(p.numel() for p in g["params"]) for g in self.param_groups]
        drawn, i = [], 0
        for g in self.param_groups:  # the drawn sigma of each group's first parameter
            drawn.append(self._sigma_drawn[i] if i < len(self._sigma_drawn) else g["sigma"])
            i += len(g["params"])
        if all(r == s for r, s in zip(refs, drawn, strict=True)):
            return 1.0
        total = max(sum(counts), 1)
        logs = sum(n * math.log(r / s) for n, r, s in zip(counts, refs, drawn, strict=True))
        return math.exp(logs / total)

    def length_factor(self, fitness: torch.Tensor, center: float | None, w: torch.Tensor) -> float:
        """The factor that gives a rank-shaped step drawn at sigma the step length the
        configured sigma (``sigma_ref``) would have given at this point (``decouple``).

        Why: with centered ranks a mirrored pair's weight is its rank gap. Where the slope
        dominates (curvature ratio K << 1, :func:`aebench.es_module.curvature_ratio`) the
        population is sorted by slope and the weights do not depend on sigma; where curvature
        dominates (K >> 1) the pairs interleave and a weight falls as 1/K, i.e. as 1/sigma. So
        dividing by the configured sigma alone left a step that grew as sigma fell (measured,
        regression, EGGROLL, 300 generations at lr/sigma fixed: val MSE 0.19 at sigma 0.01, 0.63
        at 0.003, 0.89 at 0.001; Rosenbrock d=10: 9.1 at 0.1, 114 at 0.03). Here the pair's odd
        part ``d_j`` (slope, ~ sigma) and even part ``c_j`` (curvature, ~ sigma^2) are rescaled
        to the configured sigma, ``F'(+-j) = F(0) + r^2 c_j +- r d_j`` with ``r = sigma_ref /
        sigma`` (the Taylor scaling of a smooth fitness), ranked, and the step is rescaled by
        ``||w'|| / ||w||`` (the estimate's length is proportional to ||w|| in high dimension):
        sigma chooses the direction (the smoothing scale), the step length stays lr's and the
        configured sigma's. 1.0 (nothing changes, bit for bit) at the configured sigma, without
        ``center``, without mirrored pairs, with ``shaping=none`` (there the estimate is
        sigma-free already) and with ``decouple=false``."""
        if not (self.decouple and self.antithetic and self.shaping == "centered_ranks"):
            return 1.0
        if center is None or not math.isfinite(center):
            return 1.0
        r = self.sigma_ratio()
        norm = float(w.norm())
        if r == 1.0 or norm == 0.0:
            return 1.0
        f = fitness.reshape(-1, 2)
        d = (f[:, 0] - f[:, 1]) / 2
        c = (f[:, 0] + f[:, 1]) / 2 - center
        plus, minus = center + r * r * c + r * d, center + r * r * c - r * d
        ok = torch.isfinite(f).all(1)  # a pair with a non-finite member keeps its fitnesses
        hyp = torch.where(ok[:, None], torch.stack([plus, minus], 1), f).reshape(-1)
        w_ref = pair_weights(centered_ranks(torch.nan_to_num(hyp, nan=-math.inf)), True)
        return float(w_ref.norm()) / norm

    def state_dict(self) -> dict[str, Any]:
        """torch's optimizer state (param groups, Adam's moments) plus the ES cycle's own under
        ``es``: the generation and evaluation counts and the noise generators, so a resumed run
        draws the generations an uninterrupted one would (and AE's sigma filter, which steps
        once per generation, ``ESBinding.state_dict``, resumes in step)."""
        state = super().state_dict()
        state["es"] = {
            "generations": self.generations,
            "evaluations": self.evaluations,
            "generators": {k: g.get_state() for k, g in self._generators.items()},
        }
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Restore :meth:`state_dict` (a state without ``es`` restores torch's part only)."""
        state = dict(state_dict)
        es = state.pop("es", None)
        super().load_state_dict(state)
        if es is not None:
            self.generations = int(es["generations"])
            self.evaluations = int(es["evaluations"])
            for key, gen_state in es["generators"].items():
                self.generator(torch.device(key)).set_state(gen_state)

    def attach(self, model: torch.nn.Module) -> None:
        """Let the algorithm look at the model's structure (EGGROLL finds its Linear layers for
        batched evaluation); nothing by default."""

    # ------------------------------------------------------------------ the cycle
    @torch.no_grad()
    def ask(self) -> int:
        """Start a generation: centre copy, sigmas in effect, generation seed; returns N."""
        self._center = [p.detach().clone() for p in self.params]
        self._sigma_drawn = self._group_sigmas()
        gen = self.generator(torch.device("cpu"))
        self._generation_seed = int(torch.randint(0, 2**62, (1,), generator=gen))
        self._cache = None
        self.generations += 1
        return self.population

    def _member_noise(self, i: int) -> list[torch.Tensor]:
        """Member ``i``'s signed full-size perturbation per parameter."""
        s = self.sign(i)
        out = []
        for p, n in zip(self.params, self.noise(self.draw_index(i)), strict=True):
            e = self._expand(p, n)
            out.append(e if s > 0 else -e)
        return out

    @contextmanager
    def member(self, i: int) -> Iterator[None]:
        """Parameters of member ``i`` written into the model in place; the centre restored after."""
        if self._center is None:
            raise RuntimeError("ES: call ask() before evaluating members")
        with torch.no_grad():
            for p, c, s, e in zip(
                self.params, self._center, self._sigma_drawn, self._member_noise(i), strict=True
            ):
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
    def tell(self, fitness: torch.Tensor, center: float | None = None) -> None:
        """Shape ``fitness`` and write the loss-gradient estimate ``-g_F`` into ``p.grad``.

        ``center``: the unperturbed parameters' fitness on the same batch (the ES module passes
        it); with it, a rank-shaped step taken at a sigma other than the configured one gets the
        configured sigma's step length (``decouple``, :meth:`length_factor`)."""
        fitness = fitness.reshape(-1)
        if fitness.numel() != self.population:
            raise ValueError(f"ES tell: {fitness.numel()} fitnesses for {self.population} members")
        # a NaN fitness ranks as the worst member (argsort would place it as the best)
        fitness = torch.nan_to_num(fitness.double(), nan=-math.inf)
        u = shape_fitness(fitness, self.shaping)
        w = pair_weights(u, self.antithetic)
        factor = self.length_factor(fitness, center, w)
        if factor != 1.0:
            w = w * factor
        for p, s, g in zip(self.params, self._divisors(), self._estimate(w), strict=True):
            p.grad = (g * (-1.0 / (self.population * s))).to(p.dtype)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        """Apply the update (``sgd`` or ``adam`` on ``grad + weight_decay theta``); the closure
        runs first (Lightning's ``on_before_optimizer_step``: AE acts there)."""
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
                if self.update == "sgd":
                    p.add_(d, alpha=-lr)
                    continue
                b1, b2 = group["betas"]
                st = self.state[p]
                if not st:
                    st["step"] = torch.zeros((), dtype=torch.float32)
                    st["exp_avg"] = torch.zeros_like(p)
                    st["exp_avg_sq"] = torch.zeros_like(p)
                st["step"] += 1
                t = float(st["step"])
                st["exp_avg"].mul_(b1).add_(d, alpha=1 - b1)
                st["exp_avg_sq"].mul_(b2).addcmul_(d, d, value=1 - b2)
                denom = (st["exp_avg_sq"] / (1 - b2**t)).sqrt_().add_(float(group["eps"]))
                p.addcdiv_(st["exp_avg"], denom, value=-lr / (1 - b1**t))
        return loss

    # ------------------------------------------------------------------ per algorithm
    def _draw_one(self, p: torch.Tensor, gen: torch.Generator) -> Any:
        """One draw's noise for parameter ``p`` (default: a full-size N(0, I) tensor)."""
        return torch.randn(p.shape, generator=gen, device=p.device, dtype=p.dtype)

    def _expand(self, p: torch.Tensor, noise: Any) -> torch.Tensor:
        """The full-size perturbation E of ``p`` from its draw (default: the draw itself)."""
        return noise

    def _estimate(self, w: torch.Tensor) -> list[torch.Tensor]:
        """``sum_j w_j E_j`` per parameter (the caller divides by N sigma): one accumulator per
        parameter, the draws regenerated one at a time (a zero weight skips its draw)."""
        acc = [torch.zeros_like(p) for p in self.params]
        for j, wj in enumerate(w.tolist()):
            if wj == 0.0:
                continue
            for a, p, n in zip(acc, self.params, self.noise(j), strict=True):
                self._accumulate(a, p, n, wj)
        return acc

    def _accumulate(self, acc: torch.Tensor, p: torch.Tensor, noise: Any, w: float) -> None:
        """``acc += w E`` for one draw of parameter ``p``."""
        acc.add_(self._expand(p, noise), alpha=w)
