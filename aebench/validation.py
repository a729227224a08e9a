"""Range checks that a type cannot express. They run before anything is written (in the
command-line preflight and again at the start of every job), and fail with one line naming the
key, the value and what is allowed."""

from __future__ import annotations

import math
from collections.abc import Callable

from omegaconf import DictConfig, OmegaConf


class ConfigError(ValueError):
    """A bad config value; its message is one line: ``key=value: what is allowed``."""


Check = tuple[str, Callable[[float], bool], str]

#: (dotted key, predicate on each numeric value, what is allowed); missing keys are skipped
RULES: list[Check] = [
    ("seed", lambda v: v >= 0, "a non-negative integer"),
    ("steps", lambda v: v >= 1, "null or a positive integer"),
    ("optimizer.lr", lambda v: v > 0, "a positive number"),
    ("optimizer.momentum", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("optimizer.dampening", lambda v: 0 <= v <= 1, "a number in [0, 1]"),
    ("optimizer.betas", lambda v: 0 <= v < 1, "numbers in [0, 1)"),
    ("optimizer.eps", lambda v: v > 0, "a positive number"),
    ("optimizer.weight_decay", lambda v: v >= 0, "a non-negative number"),
    ("task.batch_size", lambda v: v >= 1, "a positive integer"),
    ("task.loss_scale", lambda v: v > 0, "a positive number"),
    ("task.budget.smoke", lambda v: v >= 1, "a positive integer"),
    ("task.budget.cpu", lambda v: v >= 1, "a positive integer"),
    ("task.budget.paper", lambda v: v >= 1, "a positive integer"),
    ("scale.evals", lambda v: v >= 1, "a positive integer"),
    ("scale.log_every", lambda v: v >= 1, "a positive integer"),
    ("scale.progress_lines", lambda v: v >= 0, "a non-negative integer"),
    ("divergence.factor", lambda v: v > 1, "a number > 1"),
    ("divergence.floor", lambda v: v > 0, "a positive number"),
    ("trainer.threads", lambda v: v >= 1, "null or a positive integer"),
]

SCALES = ("smoke", "cpu", "paper")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "auto")


def _numbers(value: object) -> list[float]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, int | float):
        return [float(value)]
    if isinstance(value, list | tuple):
        return [float(v) for v in value if isinstance(v, int | float) and not isinstance(v, bool)]
    return []


def validate_config(cfg: DictConfig) -> None:
    """Raise :class:`ConfigError` on the first value out of its allowed range."""
    if cfg.scale.name not in SCALES:
        raise ConfigError(f"scale.name={cfg.scale.name}: must be one of {', '.join(SCALES)}")
    if cfg.trainer.accelerator not in ACCELERATORS:
        raise ConfigError(
            f"trainer.accelerator={cfg.trainer.accelerator}: must be one of "
            + ", ".join(ACCELERATORS)
        )
    if cfg.ae.enabled:
        from aebench.ae.config import validate as validate_ae

        try:
            validate_ae(cfg.ae)
        except ValueError as err:
            raise ConfigError(str(err).splitlines()[0]) from None
    if cfg.get("swarm") is not None and cfg.swarm.get("enabled"):
        from aebench.swarm.config import population_budget, validate_swarm

        problem = validate_swarm(cfg, population_budget(cfg))
        if problem is not None:
            raise ConfigError(problem)
    for key, ok, allowed in RULES:
        value = OmegaConf.select(cfg, key, default=None)
        if isinstance(value, DictConfig):
            continue
        if OmegaConf.is_list(value):
            value = OmegaConf.to_container(value)
        for v in _numbers(value):
            if not math.isfinite(v) or not ok(v):
                shown = value if not isinstance(value, list) else list(value)
                raise ConfigError(f"{key}={shown}: must be {allowed}")
