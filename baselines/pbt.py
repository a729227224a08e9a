"""Population baselines for AE-Swarm at the same total trajectory-steps: PBT (with and without
weight copying) and independent runs. Pure Python rules on the interface of
:mod:`aebench.swarm.scheduler` (ask/tell); the Lightning host applies their decisions.

**PBT** (Jaderberg et al. 2017), synchronous, with Ray Tune's ``PopulationBasedTraining``
defaults written small here rather than pulling in Ray: after every round (Ray's
``perturbation_interval``) every trajectory has trained the same number of steps (budgets are
equal splits; PBT reallocates no compute) and is ranked by its validation metric (mode-aware;
diverged or non-finite last). Then

* **exploit (truncation)**: ``q = ceil(M * quantile)`` (at most ``floor(M / 2)``, as Ray caps
  it); each of the q worst trajectories draws a donor uniformly from the q best live ones and
  copies its model weights, optimizer state, schedule state and AE controller state (Ray's
  checkpoint) together with its coefficients (Ray's config). A diverged trajectory in the bottom
  quantile is thereby revived. The AE controller's gains and noise generator stay the
  recipient's own (priors, not state).
* **explore**: each coefficient of the genotype (:data:`aebench.swarm.scheduler.GENOTYPE`: lr,
  beta1, beta2, eps, weight decay; a coefficient configured at 0 stays out) is, with probability
  ``resample`` (Ray: 0.25), drawn afresh from the prior box the population was initialised from
  (uniform in chart coordinates: ``centre +- log(spread)``, i.e. log-uniform in lr, eps and
  weight decay and in the momentum horizon 1/(1-beta)), otherwise multiplied by a factor drawn
  uniformly from ``factors`` (Ray: 1.2, 0.8). For betas the factor multiplies the horizon
  1/(1-beta), the chart AE itself uses (beta 0.9 -> 0.9167 or 0.875), since 1.2 * beta can leave
  [0, 1). Values are clamped to the feasible box (AE's Omega for the betas).

**PBT without copying** (``copy_weights=False``): the same, except that the recipient keeps
its own weights and training state and adopts only the donor's coefficients (then explores):
the hard, hyperparameter-only counterpart of AE-Swarm's soft consensus, which isolates the
effect of copying weights.

**Independent**: M trajectories with the same diverse priors, equal budgets, no interaction;
the host reports the best at the end, like the other arms.

Randomness (donor choice, resample, factors) comes from the rule's own ``random.Random`` seeded
from the run seed (``aebench.seeding.derive_seed(seed, "swarm/rule")``), so it consumes no other
stream and is the same for a seed in every arm that uses it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

from aebench.swarm.scheduler import Decision, PopulationRule, normalise_scores


class IndependentRule(PopulationRule):
    """M independent runs: equal budgets, no action (the base rule), named for the config."""


def truncation(
    scores: Sequence[float], alive: Sequence[bool], quantile: float
) -> tuple[list[int], list[int]]:
    """``(bottom, top)`` index lists of PBT's truncation selection (lower score = better;
    ties by index). ``top`` holds live trajectories with a finite score only; no trajectory is
    in both."""
    m = len(scores)
    q = min(math.ceil(m * quantile), m // 2)
    if q <= 0:
        return [], []
    order = sorted(range(m), key=lambda i: (scores[i] if alive[i] else math.inf, i))
    top = [i for i in order[:q] if alive[i] and math.isfinite(scores[i])]
    bottom = [i for i in order[m - q :] if i not in top]
    return bottom, top


class PBTRule(PopulationRule):
    """Synchronous PBT (module doc).

    Args:
        quantile: fraction of the population in the top and in the bottom quantile (Ray 0.25).
        factors: perturbation factors, one drawn uniformly per coefficient (Ray (1.2, 0.8)).
        resample: probability of drawing a coefficient afresh from its prior box (Ray 0.25).
        copy_weights: exploit copies weights and training state (PBT) or coefficients only.
    """

    def __init__(
        self,
        quantile: float = 0.25,
        factors: Sequence[float] = (1.2, 0.8),
        resample: float = 0.25,
        copy_weights: bool = True,
    ) -> None:
        super().__init__()
        if not 0 < quantile <= 0.5:
            raise ValueError(f"quantile={quantile}: must lie in (0, 0.5]")
        if not factors or any(not (math.isfinite(f) and f > 0) for f in factors):
            raise ValueError(f"factors={list(factors)}: positive numbers, at least one")
        if not 0 <= resample <= 1:
            raise ValueError(f"resample={resample}: must lie in [0, 1]")
        self.quantile, self.factors = float(quantile), [float(f) for f in factors]
        self.resample, self.copy_weights = float(resample), bool(copy_weights)

    def explore(self, z: Mapping[str, float]) -> tuple[dict[str, float], list[str]]:
        """Explored chart coordinates of a coefficient set, and the keys that were resampled."""
        assert self.pop is not None
        out: dict[str, float] = {}
        resampled: list[str] = []
        for key in sorted(z):
            coord = self.pop.space.get(key)
            if coord is None:
                continue
            if self.rng.random() < self.resample:
                lo, hi = coord.centre - coord.spread, coord.centre + coord.spread
                new = lo + (hi - lo) * self.rng.random()
                resampled.append(key)
            else:
                new = z[key] + math.log(self.rng.choice(self.factors))
            out[key] = coord.clamp(new)
        return out, resampled

    def decide(self, metrics, coefs, alive, last):  # noqa: ANN001, ANN201
        assert self.pop is not None
        m = self.pop.size
        scores = normalise_scores(metrics, self.pop.mode, "rank", alive)
        weights = [1.0 / m] * m
        if last:
            return Decision(self.round, scores, weights, [])
        budgets = self.equal(self.pop.round_steps[self.round + 1])
        shifts: list[dict[str, float]] = [{} for _ in range(m)]
        resampled: list[list[str]] = [[] for _ in range(m)]
        copies: list[tuple[int, int]] = []
        bottom, top = truncation(scores, alive, self.quantile)
        if top:
            for r in bottom:
                if not self.copy_weights and not alive[r]:
                    continue  # nothing to gain: its weights stay diverged
                d = self.rng.choice(top)
                new, resampled[r] = self.explore(coefs[d])
                start = coefs[d] if self.copy_weights else coefs[r]
                shifts[r] = {k: v - start[k] for k, v in new.items() if k in start}
                if self.copy_weights:
                    copies.append((r, d))
        return Decision(
            self.round, scores, weights, budgets, shifts=shifts, copies=copies, resampled=resampled
        )
