"""Population rules as pure functions and ask/tell objects (no torch: tested on plain numbers).

A population arm trains M trajectories in R rounds. A **rule** decides, between rounds, how much
compute each trajectory gets next and what happens to its coefficients; the Lightning host
(:mod:`aebench.swarm.callback`) trains, evaluates and applies the rule's decisions. Like pycma's
``ask``/``tell``: ``ask()`` gives the budgets of the coming round, ``tell(metrics, coefs,
alive)`` takes the round's validation metrics and every trajectory's coefficients (chart
coordinates, :mod:`aebench.ae.charts`) and returns a :class:`Decision`.

Rules here: :class:`AESwarmRule` (the theory's AE-Swarm). The baselines PBT, PBT without weight
copying and independent runs live in ``baselines/pbt.py`` and use the helpers of this module.

AE-Swarm, one round (the theory's "AE-Swarm" section, steps 1-6):

1. trajectory i trains B_i steps (the host, one trajectory at a time);
2. score s_i from its validation metric (:func:`normalise_scores`, below);
3. weights ``w = softmax(-beta s)`` (:func:`softmax_weights`);
4. next budgets ``B_i' = max(B_min, round(w_i B_total))``, the rounding drift repaired so that
   ``sum B_i' = B_total`` exactly (:func:`allocate_budgets`);
5. consensus nudge of the coefficients only: ``c_bar = sum_i w_i c_i``,
   ``c_i <- (1 - kappa) c_i + kappa c_bar`` for c in {log alpha, log 1/(1-beta1),
   log 1/(1-beta2), log eps, log lambda} (:func:`consensus_shifts`; betas in the horizon chart
   that AE-7 names, not in raw beta as in the reference code, so that every coordinate is
   unbounded and a convex combination stays inside a box of Omega);
6. optional rejuvenation dither of the worst trajectory (index in the decision; the host adds
   the noise). Model weights are never copied.

Score normalisation (so that beta means the same on every task): the task's metric is first
oriented by its mode (lower is better), then

* ``rank`` (default): ``s_i = rank_i / (n - 1)`` in [0, 1] over the n live trajectories with a
  finite metric, best 0, worst 1, ties sharing their mean rank. beta is then the log ratio of the
  best's weight to the worst's: beta = 5 (the theory's example value) gives the worst
  ``e^-5 ~ 0.7%`` of the best's weight on any task, whatever the metric's units or spread.
* ``zscore``: ``s_i = (x_i - mean) / std`` over the same set (std with ddof 0; 0 when all
  equal). beta then acts per standard deviation of the population: it keeps how much better a
  trajectory is, not only its place, but an outlier compresses the others.

A diverged trajectory (``alive`` false) or a non-finite metric gets ``s = +inf``, so ``w = 0``
exactly and its next budget is ``B_min``; it never enters the consensus mean and never stops the
others.

Budgets. The run's step budget N (total trajectory-steps, the compute of the whole population)
is split into R round totals that differ by at most one (:func:`round_totals`); the first round
is split equally. ``B_min = max(1, floor(min_share * floor(N / R) / M))``: a share of the equal
split (the theory's example uses 400 of an equal 1000, ``min_share = 0.4``).
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

#: the coefficient kinds the population rules act on (consensus, PBT explore, priors)
GENOTYPE: tuple[str, ...] = ("alpha", "beta1", "beta2", "eps", "weight_decay")
SCORES = ("rank", "zscore")


# --------------------------------------------------------------------------- helpers
def round_totals(total: int, rounds: int) -> list[int]:
    """``rounds`` round totals summing to ``total``, the first ``total % rounds`` one larger."""
    if rounds < 1 or total < rounds:
        raise ValueError(f"cannot split {total} steps into {rounds} rounds")
    q, r = divmod(total, rounds)
    return [q + (1 if i < r else 0) for i in range(rounds)]


def equal_split(total: int, size: int, offset: int = 0) -> list[int]:
    """``total`` steps over ``size`` trajectories: ``total % size`` of them, from index
    ``offset`` on (cyclically), get one step more. Rules advance the offset by that remainder
    every round, so over the rounds no trajectory is favoured by the rounding."""
    q, r = divmod(total, size)
    extra = {(offset + k) % size for k in range(r)}
    return [q + (1 if i in extra else 0) for i in range(size)]


def min_budget(min_share: float, round_total: int, size: int) -> int:
    """``B_min = max(1, floor(min_share * round_total / size))``."""
    return max(1, math.floor(min_share * round_total / size))


def oriented(metrics: Sequence[float], mode: str) -> list[float]:
    """The metrics with lower = better (``mode='max'`` negated); non-finite stays non-finite."""
    if mode not in ("min", "max"):
        raise ValueError(f"mode={mode!r}: min or max")
    return [float(m) if mode == "min" else -float(m) for m in metrics]


def normalise_scores(
    metrics: Sequence[float], mode: str, method: str = "rank", alive: Sequence[bool] | None = None
) -> list[float]:
    """Scores s_i (lower = better; module doc): ``rank`` in [0, 1] or ``zscore``; +inf for a
    trajectory that is not alive or whose metric is not finite."""
    if method not in SCORES:
        raise ValueError(f"score={method!r}: one of {', '.join(SCORES)}")
    x = oriented(metrics, mode)
    alive = [True] * len(x) if alive is None else list(alive)
    valid = [i for i, v in enumerate(x) if alive[i] and math.isfinite(v)]
    scores = [math.inf] * len(x)
    n = len(valid)
    if n == 0:
        return scores
    if method == "rank":
        order = sorted(valid, key=lambda i: x[i])
        pos = 0
        while pos < n:
            end = pos
            while end + 1 < n and x[order[end + 1]] == x[order[pos]]:
                end += 1
            mean_rank = (pos + end) / 2
            for k in range(pos, end + 1):
                scores[order[k]] = mean_rank / (n - 1) if n > 1 else 0.0
            pos = end + 1
        return scores
    mean = sum(x[i] for i in valid) / n
    std = math.sqrt(sum((x[i] - mean) ** 2 for i in valid) / n)
    for i in valid:
        scores[i] = (x[i] - mean) / std if std > 0 else 0.0
    return scores


def softmax_weights(scores: Sequence[float], beta: float) -> list[float]:
    """``w = softmax(-beta s)``; an infinite score gets weight exactly 0. With no finite score
    at all the weights are uniform (nothing is alive to prefer)."""
    finite = [s for s in scores if math.isfinite(s)]
    if not finite:
        return [1.0 / len(scores)] * len(scores)
    best = min(finite)
    e = [math.exp(-beta * (s - best)) if math.isfinite(s) else 0.0 for s in scores]
    z = sum(e)
    return [v / z for v in e]


def allocate_budgets(weights: Sequence[float], total: int, b_min: int) -> list[int]:
    """``B_i = max(b_min, round(w_i total))`` with the rounding drift repaired exactly.

    Rounding is half up (``floor(x + 0.5)``). A surplus (the sum above ``total``, from the floor
    or from rounding up) is taken one step at a time from the trajectory whose budget most
    exceeds its exact share ``w_i total`` among those above ``b_min``; a deficit is given to the
    one furthest below its share among those with a positive weight. Ties go to the lower index.
    Needs ``len(weights) * b_min <= total``; then the result sums to ``total``, every entry is at
    least ``b_min``, and a zero weight (a diverged trajectory) gets exactly ``b_min`` as long as
    some weight is positive.
    """
    m = len(weights)
    if m == 0:
        raise ValueError("no trajectories")
    if b_min < 0 or m * b_min > total:
        raise ValueError(f"b_min={b_min}: {m} trajectories need m * b_min <= total={total}")
    exact = [max(0.0, float(w)) * total if math.isfinite(w) else 0.0 for w in weights]
    budgets = [max(b_min, math.floor(e + 0.5)) for e in exact]
    diff = total - sum(budgets)
    while diff < 0:
        j = max(
            (i for i in range(m) if budgets[i] > b_min),
            key=lambda i: (budgets[i] - exact[i], -i),
        )
        budgets[j] -= 1
        diff += 1
    while diff > 0:  # positive weights first: a zero-weight (dead) trajectory keeps b_min
        j = max(range(m), key=lambda i: (exact[i] > 0, exact[i] - budgets[i], -i))
        budgets[j] += 1
        diff -= 1
    return budgets


def weighted_mean(
    coefs: Sequence[Mapping[str, float]], weights: Sequence[float]
) -> dict[str, float]:
    """``c_bar = sum_i w_i c_i / sum_i w_i`` per coefficient shared by every trajectory with
    positive weight (weights of dead trajectories are 0, so they never enter)."""
    members = [i for i, w in enumerate(weights) if w > 0 and math.isfinite(w)]
    if not members:
        return {}
    keys = set(coefs[members[0]])
    for i in members[1:]:
        keys &= set(coefs[i])
    wsum = sum(weights[i] for i in members)
    out: dict[str, float] = {}
    for k in sorted(keys):
        values = [coefs[i][k] for i in members]
        # equal values: their mean exactly (a weighted sum would add rounding noise)
        same = all(v == values[0] for v in values)
        out[k] = values[0] if same else sum(weights[i] * coefs[i][k] for i in members) / wsum
    return out


def consensus_shifts(
    coefs: Sequence[Mapping[str, float]],
    weights: Sequence[float],
    kappa: float,
    alive: Sequence[bool] | None = None,
) -> list[dict[str, float]]:
    """Chart offsets of the consensus nudge: ``dc_i = kappa (c_bar - c_i)``, so that
    ``c_i + dc_i = (1 - kappa) c_i + kappa c_bar`` exactly; ``{}`` for dead trajectories."""
    alive = [True] * len(coefs) if alive is None else list(alive)
    bar = weighted_mean(coefs, weights)
    out: list[dict[str, float]] = []
    for i, c in enumerate(coefs):
        if not alive[i]:
            out.append({})
            continue
        out.append({k: kappa * (bar[k] - c[k]) for k in bar if k in c})
    return out


def prior_positions(size: int, dims: Sequence[str], rng: random.Random) -> list[dict[str, float]]:
    """Positions ``u`` in [-1, 1] per trajectory and prior dimension: trajectory 0 at the centre
    (0: the configured values, so it is paired with the single-trajectory arm), the others a
    Latin hypercube (each dimension cut into ``size - 1`` equal strata, one uniform draw per
    stratum, strata shuffled per dimension independently)."""
    rows: list[dict[str, float]] = [dict.fromkeys(dims, 0.0)]
    n = size - 1
    if n <= 0:
        return rows[:size]
    cols: dict[str, list[float]] = {}
    for d in dims:
        strata = [(-1.0 + 2.0 * (j + rng.random()) / n) for j in range(n)]
        rng.shuffle(strata)
        cols[d] = strata
    for j in range(n):
        rows.append({d: cols[d][j] for d in dims})
    return rows


# --------------------------------------------------------------------------- rules
@dataclass(frozen=True)
class Coordinate:
    """One coefficient of the genotype in chart space: the centre of its prior box (the chart
    value of the configured coefficient), the half-width of that box (log of the spread factor)
    and the feasible bounds (``-inf``/``inf`` where unbounded)."""

    centre: float
    spread: float = 0.0
    lo: float = -math.inf
    hi: float = math.inf

    def clamp(self, z: float) -> float:
        return min(max(z, self.lo), self.hi)


@dataclass
class Decision:
    """What the host does after round ``round`` (0-based), in this order: copy the weights and
    training state of ``copies`` (recipient, donor), add ``shifts[i]`` to trajectory i's
    coefficients (chart coordinates), dither trajectory ``dither``; then train ``budgets`` (the
    next round's; empty after the last round, which takes no action)."""

    round: int
    scores: list[float]
    weights: list[float]
    budgets: list[int]
    shifts: list[dict[str, float]] = field(default_factory=list)
    copies: list[tuple[int, int]] = field(default_factory=list)
    dither: int | None = None
    #: per trajectory, the coefficients a rule resampled rather than perturbed (PBT), for logs
    resampled: list[list[str]] = field(default_factory=list)


@dataclass(frozen=True)
class Population:
    """What a rule is told at the start: the population size, the round totals (summing to the
    run's budget), the metric's mode, the genotype's coordinates and a seed for its own RNG."""

    size: int
    round_steps: tuple[int, ...]
    mode: str
    space: Mapping[str, Coordinate]
    seed: int


class PopulationRule:
    """Base class: equal budgets every round and no action (what independent runs do).

    Subclasses override :meth:`decide`. ``needs_ae`` says whether the rule only makes sense
    with the AE controller on every trajectory (checked by the config validation).
    """

    needs_ae: bool = False

    def __init__(self) -> None:
        self.pop: Population | None = None
        self.round = 0
        self._next: list[int] = []
        self._offset = 0
        self.rng = random.Random(0)

    def start(self, pop: Population) -> PopulationRule:
        if pop.size < 1 or len(pop.round_steps) < 1 or min(pop.round_steps) < pop.size:
            raise ValueError(
                f"every round needs at least one step per trajectory: {pop.size} trajectories, "
                f"round totals {list(pop.round_steps)}"
            )
        self.pop = pop
        self.round = 0
        self._offset = 0
        self._next = self.equal(pop.round_steps[0])
        self.rng = random.Random(pop.seed)
        return self

    def equal(self, total: int) -> list[int]:
        """An equal split of a round's total, the remainder rotating over the rounds."""
        assert self.pop is not None
        out = equal_split(total, self.pop.size, self._offset)
        self._offset = (self._offset + total % self.pop.size) % self.pop.size
        return out

    @property
    def rounds(self) -> int:
        assert self.pop is not None, "call start() first"
        return len(self.pop.round_steps)

    @property
    def done(self) -> bool:
        return self.pop is not None and self.round >= self.rounds

    def ask(self) -> list[int]:
        """The budgets of the coming round (``[]`` once every round has been told)."""
        return [] if self.done else list(self._next)

    def tell(
        self,
        metrics: Sequence[float],
        coefs: Sequence[Mapping[str, float]],
        alive: Sequence[bool] | None = None,
    ) -> Decision:
        """Record the round's validation metrics and coefficients; return the decision."""
        assert self.pop is not None, "call start() first"
        if self.done:
            raise RuntimeError("every round has been told")
        m = self.pop.size
        if len(metrics) != m or len(coefs) != m:
            raise ValueError(f"expected {m} metrics and coefficient sets")
        alive = [True] * m if alive is None else [bool(a) for a in alive]
        last = self.round == self.rounds - 1
        decision = self.decide(list(map(float, metrics)), list(coefs), alive, last)
        self._next = decision.budgets
        self.round += 1
        return decision

    def decide(
        self,
        metrics: list[float],
        coefs: list[Mapping[str, float]],
        alive: list[bool],
        last: bool,
    ) -> Decision:
        assert self.pop is not None
        scores = normalise_scores(metrics, self.pop.mode, "rank", alive)
        budgets = [] if last else self.equal(self.pop.round_steps[self.round + 1])
        weights = [1.0 / self.pop.size] * self.pop.size
        return Decision(self.round, scores, weights, budgets)


class AESwarmRule(PopulationRule):
    """AE-Swarm (module doc): soft selection of compute and a weighted consensus of the
    coefficients; never copies weights.

    Args:
        beta: softmax temperature on the normalised scores (0: equal weights).
        score: ``rank`` or ``zscore`` (module doc).
        min_share: B_min as a share of the equal split of a round.
        kappa: consensus step in [0, 1] (0: none; 1: every trajectory jumps to the mean).
        dither: rejuvenation dither of the worst live trajectory after each round (0: off);
            the host adds ``dither * max(RMS(p), 1e-3) * N(0, 1)`` to each parameter p (AE-4's
            relative noise form, :func:`aebench.ae.bindings.add_parameter_noise`).
    """

    needs_ae = True

    def __init__(
        self,
        beta: float = 5.0,
        score: str = "rank",
        min_share: float = 0.4,
        kappa: float = 0.05,
        dither: float = 0.0,
    ) -> None:
        super().__init__()
        if score not in SCORES:
            raise ValueError(f"score={score!r}: one of {', '.join(SCORES)}")
        self.beta, self.score, self.min_share = float(beta), score, float(min_share)
        self.kappa, self.dither = float(kappa), float(dither)

    def b_min(self) -> int:
        assert self.pop is not None
        return min_budget(self.min_share, min(self.pop.round_steps), self.pop.size)

    def decide(self, metrics, coefs, alive, last):  # noqa: ANN001, ANN201
        assert self.pop is not None
        scores = normalise_scores(metrics, self.pop.mode, self.score, alive)
        weights = softmax_weights(scores, self.beta)
        if last:
            return Decision(self.round, scores, weights, [])
        budgets = allocate_budgets(weights, self.pop.round_steps[self.round + 1], self.b_min())
        shifts = consensus_shifts(coefs, weights, self.kappa, alive) if self.kappa > 0 else []
        dither = None
        live = [i for i in range(len(scores)) if alive[i] and math.isfinite(scores[i])]
        if self.dither > 0 and len(live) >= 2:
            worst = max(scores[i] for i in live)
            dither = max(i for i in live if scores[i] == worst)
        return Decision(self.round, scores, weights, budgets, shifts=shifts, dither=dither)
