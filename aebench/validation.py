"""Range checks that a type cannot express. They run before anything is written (in the
command-line preflight and again at the start of every job), and fail with one line naming the
key, the value and what is allowed."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from omegaconf import DictConfig, OmegaConf

if TYPE_CHECKING:
    from aebench.ae.config import AEConfig


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
    ("optimizer.hypergrad_lr", lambda v: v >= 0, "a non-negative number"),
    ("optimizer.warmup_frac", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("optimizer.d0", lambda v: v > 0, "a positive number"),
    ("optimizer.d_coef", lambda v: v > 0, "a positive number"),
    ("schedule.min_lr", lambda v: v > 0, "a positive number"),
    ("schedule.max_lr", lambda v: v > 0, "a positive number"),
    ("schedule.num_steps", lambda v: v >= 2, "an integer >= 2"),
    ("schedule.smooth", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("schedule.diverge_factor", lambda v: v > 1, "a number > 1"),
    ("optimizer.sigma", lambda v: v > 0, "a positive number"),
    ("optimizer.sigma0", lambda v: v > 0, "a positive number"),
    ("optimizer.rank", lambda v: v >= 1, "a positive integer"),
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


def validate_config(cfg: DictConfig) -> AEConfig | None:
    """Raise :class:`ConfigError` on the first value out of its allowed range. Returns the AE
    config it checked (None with AE off), for the controller: it does not check it again
    (:func:`aebench.ae.config.validated`)."""
    if cfg.scale.name not in SCALES:
        raise ConfigError(f"scale.name={cfg.scale.name}: must be one of {', '.join(SCALES)}")
    if cfg.trainer.accelerator not in ACCELERATORS:
        raise ConfigError(
            f"trainer.accelerator={cfg.trainer.accelerator}: must be one of "
            + ", ".join(ACCELERATORS)
        )
    ae = None
    if cfg.ae.enabled:
        from aebench.ae.config import validate as validate_ae

        try:
            ae = validate_ae(cfg.ae)
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
    _check_choices(cfg)
    _check_lr_owners(cfg)
    _check_es(cfg)
    return ae


def _traits(cfg: DictConfig, group: str) -> dict:
    from aebench.schema import traits_of

    return traits_of(OmegaConf.select(cfg, f"{group}._target_", default=""))


def _has(cfg: DictConfig, group: str, method: str) -> bool:
    from aebench.schema import plugin_info

    info = plugin_info(str(OmegaConf.select(cfg, f"{group}._target_", default="")))
    return info is not None and method in info.methods


def _name(cfg: DictConfig, group: str) -> str:
    from aebench.schema import option_name

    return option_name(cfg, group)


def _options(group: str, keep: Callable[[str], bool]) -> str:
    """The options of ``group`` in the config tree whose ``_target_`` passes ``keep``, for a
    message that names what would do (read from the tree: the core keeps no list of them)."""
    import yaml

    from aebench.paths import config_dir

    names = []
    for path in sorted((config_dir() / group).glob("*.yaml")):
        try:
            option = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        target = option.get("_target_") if isinstance(option, dict) else None
        if target is not None and keep(str(target)):
            names.append(path.stem)
    return ", ".join(names)


def _ae_optimizers() -> str:
    from aebench.schema import traits_of

    return _options("optimizer", lambda t: not traits_of(t).get("self_tuning"))


def _fixed_schedules(own_lr: bool) -> str:
    """The schedules an optimizer that sets its own step size takes: those that keep the lr
    constant if it keeps its own lr, else every one but a range test."""
    from aebench.schema import plugin_info, traits_of

    if own_lr:
        return _options("schedule", lambda t: bool(traits_of(t).get("constant_lr")))
    return _options(
        "schedule", lambda t: "range_test" not in getattr(plugin_info(t), "methods", ())
    )


def _check_choices(cfg: DictConfig) -> None:
    """The string keys a plug-in restricts (its ``choices`` trait)."""
    for group in ("task", "optimizer", "schedule"):
        node = cfg.get(group)
        if not isinstance(node, DictConfig):
            continue
        for key, allowed in (_traits(cfg, group).get("choices") or {}).items():
            value = node.get(key)
            if key in node and value not in allowed:
                raise ConfigError(f"{group}.{key}={value}: must be one of " + ", ".join(allowed))


def _check_lr_owners(cfg: DictConfig) -> None:
    """What composes with an optimizer that sets its own step size (trait ``self_tuning``) or
    keeps its own lr (``own_lr``), and with a schedule that runs a range test first."""
    opt, sched = _traits(cfg, "optimizer"), _traits(cfg, "schedule")
    range_test = _has(cfg, "schedule", "range_test")
    schedule = _name(cfg, "schedule")
    swarm = cfg.get("swarm") is not None and cfg.swarm.get("enabled")
    es = is_es_optimizer(cfg.optimizer)
    if es and swarm:
        raise ConfigError(
            f"swarm with optimizer._target_={cfg.optimizer._target_}: population arms train "
            "gradient trajectories; an ES is its own population, use swarm=off"
        )
    if opt.get("self_tuning"):
        name = _name(cfg, "optimizer")
        if cfg.ae.enabled:
            raise ConfigError(
                f"ae=on with optimizer={name}: it sets its own step size, AE has no binding for "
                f"it; AE runs with {_ae_optimizers()} (or use ae=off)"
            )
        if swarm:
            raise ConfigError(
                f"swarm with optimizer={name}: population arms perturb the lr it sets itself; "
                "use swarm=off"
            )
        if range_test:
            raise ConfigError(
                f"schedule={schedule} with optimizer={name}: it sets its own step size, a range "
                f"test cannot tune it; use schedule={_fixed_schedules(bool(opt.get('own_lr')))}"
            )
        if opt.get("own_lr") and not sched.get("constant_lr"):
            raise ConfigError(
                f"schedule={schedule} with optimizer={name}: it keeps its own lr; use "
                f"schedule={_fixed_schedules(True)}"
            )
    if range_test:
        if es:
            raise ConfigError(
                f"schedule={schedule} with optimizer._target_={cfg.optimizer._target_}: the "
                "range test takes gradient steps; use it with a gradient optimizer"
            )
        if swarm:
            raise ConfigError(
                f"schedule={schedule} with a swarm: the range test tunes a single run; use "
                "swarm=off"
            )
        sched_cfg = cfg.schedule
        if "min_lr" in sched_cfg and not float(sched_cfg.min_lr) < float(sched_cfg.max_lr):
            raise ConfigError(
                f"schedule.max_lr={sched_cfg.max_lr}: must be above schedule.min_lr="
                f"{sched_cfg.min_lr}"
            )


def is_es_optimizer(optimizer: DictConfig) -> bool:
    """Whether an optimizer config is an Evolution Strategy (its step is a generation): its
    class has the ask/tell cycle of aebench/es_module.py."""
    from aebench.schema import plugin_info

    info = plugin_info(str(optimizer.get("_target_", "")))
    return info is not None and info.es


def _check_es(cfg: DictConfig) -> None:
    """What composes with an Evolution Strategy (an optimizer with ask and tell)."""
    if not is_es_optimizer(cfg.optimizer):
        return
    opt = cfg.optimizer
    for key in ("lr", "sigma"):
        if key in opt and opt[key] is None:
            family = _interpolated_family(opt, key)
            tuned = ", ".join(tasks_tuned_for(family)) or "none"
            raise ConfigError(
                f"optimizer.{key}=null: task={cfg.task.name} has no tuned task.lr.{family} "
                f"(tasks with one: {tuned}); give optimizer.{key}=<value> to try it anyway"
            )
    pop = opt.get("population")
    if pop is not None and (int(pop) < 2 or (opt.get("antithetic") and int(pop) % 2)):
        allowed = "an integer >= 2 (even with antithetic=true)"
        if "antithetic" not in opt:
            allowed = "null or an integer >= 2"
        raise ConfigError(f"optimizer.population={pop}: must be {allowed}")
    if "shaping" in opt and opt.shaping not in ("centered_ranks", "none"):
        raise ConfigError(f"optimizer.shaping={opt.shaping}: must be one of centered_ranks, none")
    if opt.get("noise_stream") is not None and int(opt.noise_stream) < 0:
        raise ConfigError(
            f"optimizer.noise_stream={opt.noise_stream}: must be an integer >= 0 "
            "(0: the run's stream es; k > 0: the replicate stream es/k)"
        )
    if cfg.ae.enabled and float(cfg.ae.noise.sigma_init) > 0:
        raise ConfigError(
            f"ae.noise.sigma_init={cfg.ae.noise.sigma_init}: must be 0 with an ES optimizer (AE "
            "drives the ES perturbation scale optimizer.sigma, ae.coefs.es_sigma, and adds no "
            "parameter noise of its own)"
        )


def _interpolated_family(opt: DictConfig, key: str) -> str:
    """The ``<family>`` of an optimizer key set to ``${task.lr.<family>}`` in its YAML (so the
    message names the entry the task lacks, whatever optimizer it is)."""
    raw = str(opt._get_node(key)._value())  # the interpolation string, unresolved
    found = re.search(r"task\.lr\.(\w+)", raw)
    return found.group(1) if found else key


def tasks_tuned_for(family: str) -> list[str]:
    """The task options whose YAML gives a tuned ``lr.<family>``, read from the config tree (so
    the message names what is there, not a list kept here)."""
    import yaml

    from aebench.paths import config_dir

    names = []
    for path in sorted((config_dir() / "task").glob("*.yaml")):
        try:
            lr = (yaml.safe_load(path.read_text()) or {}).get("lr") or {}
        except (OSError, yaml.YAMLError):
            continue
        if isinstance(lr, dict) and lr.get(family) is not None:
            names.append(path.stem)
    return names
