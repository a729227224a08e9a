"""Schemas of the ``swarm`` config group and their range checks (no torch: the command-line
preflight imports this module).

Every option of ``conf/swarm/`` extends one of these dataclasses (``defaults:
[/schema/swarm/<kind>@_here_]``). ``off`` is a single trajectory; the population options share
:class:`PopulationConfig` (size, rounds, priors) and differ by their ``rule``: a node with the
rule's ``_target_`` (a class of :mod:`aebench.swarm.scheduler` or ``baselines/pbt.py``, built
with ``_partial_`` and started by the host) and the rule's own keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from omegaconf import MISSING, DictConfig, OmegaConf

AESWARM_TARGET = "aebench.swarm.scheduler.AESwarmRule"
PBT_TARGET = "baselines.pbt.PBTRule"
INDEPENDENT_TARGET = "baselines.pbt.IndependentRule"


@dataclass
class SwarmConfig:
    """``swarm=off``: one trajectory, no population."""

    enabled: bool = False


@dataclass
class PriorsConfig:
    """Diversity of the initial population: trajectory i >= 1 multiplies a quantity by
    ``spread ** u_i`` with u_i in [-1, 1] from a Latin hypercube over the run seed (trajectory 0
    keeps the configured values, u = 0). A spread of 1 means no diversity on that axis.

    The coefficient spreads also define the prior box PBT resamples from.
    """

    #: base learning rate (and so the gauge's calibrated set point, which AE-8 measures at the
    #: trajectory's own initial steps)
    lr: float = 3.0
    #: the other coefficients in their AE chart: eps and weight decay multiplied, the momentum
    #: horizons 1/(1-beta1) and 1/(1-beta2) multiplied (each its own Latin-hypercube axis)
    coef: float = 1.0
    #: the AE meta-steps eta_a (AE-3), gauge.eta_gamma (AE-8) and noise.eta_sigma (AE-4): the
    #: controller's overall gains (ignored with ae=off)
    gains: float = 2.0


@dataclass
class AESwarmRuleConfig:
    """AE-Swarm's rule (:class:`aebench.swarm.scheduler.AESwarmRule`)."""

    _target_: str = AESWARM_TARGET
    _partial_: bool = True
    beta: float = 5.0
    score: str = "rank"
    min_share: float = 0.4
    kappa: float = 0.05
    dither: float = 0.0


@dataclass
class PBTRuleConfig:
    """PBT's rule (:class:`baselines.pbt.PBTRule`), Ray Tune's defaults."""

    _target_: str = PBT_TARGET
    _partial_: bool = True
    quantile: float = 0.25
    factors: list[float] = field(default_factory=lambda: [1.2, 0.8])
    resample: float = 0.25
    copy_weights: bool = True


@dataclass
class IndependentRuleConfig:
    """Independent runs (:class:`baselines.pbt.IndependentRule`): no keys of its own."""

    _target_: str = INDEPENDENT_TARGET
    _partial_: bool = True


@dataclass
class PopulationConfig(SwarmConfig):
    """A population of M trajectories trained in ``rounds`` rounds over the run's step budget,
    which counts total trajectory-steps (docs/records.md: populations count them in ``steps``)."""

    enabled: bool = True
    #: number of trajectories
    M: int = 4
    #: rounds over the budget; round r's total is budget/rounds (+1 for the first budget % rounds)
    rounds: int = 6
    priors: PriorsConfig = field(default_factory=PriorsConfig)
    rule: Any = MISSING


@dataclass
class AESwarmConfig(PopulationConfig):
    rule: AESwarmRuleConfig = field(default_factory=AESwarmRuleConfig)


@dataclass
class PBTConfig(PopulationConfig):
    rule: PBTRuleConfig = field(default_factory=PBTRuleConfig)


@dataclass
class IndependentConfig(PopulationConfig):
    rule: IndependentRuleConfig = field(default_factory=IndependentRuleConfig)


#: schema per kind, registered as ``schema/swarm/<kind>``
SWARM_SCHEMAS: dict[str, type] = {
    "off": SwarmConfig,
    "on": AESwarmConfig,
    "pbt": PBTConfig,
    "independent": IndependentConfig,
}


def validate_swarm(cfg: DictConfig, budget: int | None) -> str | None:
    """The first problem of ``cfg.swarm`` as one line (``key=value: what is allowed``), or None.

    ``budget`` is the run's step budget (total trajectory-steps), None if unknown.
    """
    sw = cfg.swarm
    if not sw.enabled:
        return None
    m, rounds = sw.M, sw.rounds
    if not (isinstance(m, int) and m >= 1):
        return f"swarm.M={m}: must be a positive integer (trajectories)"
    if not (isinstance(rounds, int) and rounds >= 1):
        return f"swarm.rounds={rounds}: must be a positive integer"
    if budget is not None and budget // rounds < m:
        return (
            f"swarm.rounds={rounds}: a round needs at least one step per trajectory (M={m}), "
            f"but the budget of {budget} steps gives {budget // rounds} per round; "
            "lower swarm.rounds or swarm.M, or raise steps"
        )
    for name in ("lr", "coef", "gains"):
        v = sw.priors[name]
        if not (math.isfinite(v) and v >= 1):
            return f"swarm.priors.{name}={v}: must be a spread factor >= 1 (1: no spread)"
    rule = sw.rule
    target = str(rule._target_)
    # read from the rule's source, not imported (rules import torch; the preflight must not)
    from aebench.schema import plugin_info

    info = plugin_info(target)
    if info is None or not {"ask", "tell"} <= info.methods:
        return f"swarm.rule._target_={target}: no population rule (a class with ask and tell)"
    checks: list[tuple[str, Any, bool, str]] = []
    keys = set(rule.keys())
    if "beta" in keys:
        checks.append(
            ("beta", rule.beta, math.isfinite(rule.beta) and rule.beta >= 0, "a finite number >= 0")
        )
    if "score" in keys:
        checks.append(("score", rule.score, rule.score in ("rank", "zscore"), "rank or zscore"))
    if "min_share" in keys:
        checks.append(
            (
                "min_share",
                rule.min_share,
                0 <= rule.min_share <= 1,
                "a share in [0, 1] of the equal split",
            )
        )
    if "kappa" in keys:
        checks.append(("kappa", rule.kappa, 0 <= rule.kappa <= 1, "a step in [0, 1]"))
    if "dither" in keys:
        checks.append(
            (
                "dither",
                rule.dither,
                math.isfinite(rule.dither) and rule.dither >= 0,
                "a finite number >= 0 (0: off)",
            )
        )
    if "quantile" in keys:
        checks.append(
            ("quantile", rule.quantile, 0 < rule.quantile <= 0.5, "a fraction in (0, 0.5]")
        )
    if "factors" in keys:
        factors = list(rule.factors)
        ok = bool(factors) and all(math.isfinite(f) and f > 0 for f in factors)
        checks.append(("factors", factors, ok, "positive numbers, at least one"))
    if "resample" in keys:
        checks.append(
            ("resample", rule.resample, 0 <= rule.resample <= 1, "a probability in [0, 1]")
        )
    for key, value, ok, allowed in checks:
        if not ok:
            return f"swarm.rule.{key}={value}: must be {allowed}"
    if info.traits.get("needs_ae") and not cfg.ae.enabled:
        return (
            f"ae.enabled=false: swarm.rule {target.rsplit('.', 1)[-1]} (AE-Swarm) runs the AE "
            "controller on every trajectory; add ae=on (swarm=pbt, pbt_nocopy and independent "
            "also run with ae=off)"
        )
    return None


def population_budget(cfg: DictConfig) -> int | None:
    """The run's step budget from the config alone (``steps`` or ``task.budget.<scale>``)."""
    if cfg.get("steps") is not None:
        return int(cfg.steps)
    value = OmegaConf.select(cfg, f"task.budget.{cfg.scale.name}", default=None)
    return int(value) if isinstance(value, int) else None
