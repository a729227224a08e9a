"""Range checks that a type cannot express. They run before anything is written (in the
command-line preflight and again at the start of every job), and fail with one line naming the
key, the value and what is allowed."""

from __future__ import annotations

import math
import re
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
    ("optimizer.hypergrad_lr", lambda v: v >= 0, "a non-negative number"),
    ("optimizer.warmup_frac", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("optimizer.d0", lambda v: v > 0, "a positive number"),
    ("optimizer.d_coef", lambda v: v > 0, "a positive number"),
    ("schedule.min_lr", lambda v: v > 0, "a positive number"),
    ("schedule.max_lr", lambda v: v > 0, "a positive number"),
    ("schedule.num_steps", lambda v: v >= 2, "an integer >= 2"),
    ("schedule.smooth", lambda v: 0 <= v < 1, "a number in [0, 1)"),
    ("schedule.diverge_factor", lambda v: v > 1, "a number > 1"),
]

#: optimizers that set their own step size (baselines/lr_free.py, baselines/hypergradient.py),
#: by ``_target_``, with their option names: AE has no binding for them, population arms would
#: perturb an lr they override, and a range test cannot tune them
SELF_TUNING = {
    "baselines.lr_free.schedulefree_adamw": "schedulefree_adamw",
    "prodigyopt.Prodigy": "prodigy",
    "baselines.hypergradient.SGDHD": "sgd_hd",
    "baselines.hypergradient.AdamHD": "adam_hd",
}
#: of those, the ones that keep their own lr and so take no schedule but ``constant``
OWN_LR = ("schedulefree_adamw", "sgd_hd", "adam_hd")
CONSTANT_SCHEDULE = "baselines.schedules.constant"
LR_FINDER = "baselines.lr_finder.LRFinderSchedule"
LR_FINDER_SUGGESTIONS = ("min_div10", "steepest")
LR_FINDER_THEN = ("constant", "cosine")

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
    _check_lr_owners(cfg)
    _check_es(cfg)


def _schedule_name(cfg: DictConfig) -> str:
    target = str(OmegaConf.select(cfg, "schedule._target_", default="") or "")
    return "lr_finder" if target == LR_FINDER else target.rsplit(".", 1)[-1]


def _check_lr_owners(cfg: DictConfig) -> None:
    """What composes with the self-tuning optimizers and with ``schedule=lr_finder``."""
    target = OmegaConf.select(cfg, "optimizer._target_", default=None)
    name = SELF_TUNING.get(str(target))
    schedule = _schedule_name(cfg)
    swarm = cfg.get("swarm") is not None and cfg.swarm.get("enabled")
    if name is not None:
        if cfg.ae.enabled:
            raise ConfigError(
                f"ae=on with optimizer={name}: AE has no binding for an optimizer that sets its "
                "own step size; AE runs with sgd, sgdm, adam, adamw or adafactor (or use ae=off)"
            )
        if swarm:
            raise ConfigError(
                f"swarm with optimizer={name}: population arms perturb the lr it sets itself; "
                "use swarm=off"
            )
        if schedule == "lr_finder":
            fixed = "constant" if name in OWN_LR else "constant, cosine, step or onecycle"
            raise ConfigError(
                f"schedule=lr_finder with optimizer={name}: it sets its own step size, a range "
                f"test cannot tune it; use schedule={fixed}"
            )
        if name in OWN_LR and str(OmegaConf.select(cfg, "schedule._target_")) != CONSTANT_SCHEDULE:
            raise ConfigError(
                f"schedule={schedule} with optimizer={name}: it adapts its own lr; use "
                "schedule=constant"
            )
    if schedule == "lr_finder":
        if is_es_optimizer(cfg.optimizer):
            raise ConfigError(
                f"schedule=lr_finder with optimizer._target_={cfg.optimizer._target_}: the range "
                "test takes gradient steps; use it with sgd, sgdm, adam, adamw or adafactor"
            )
        if swarm:
            raise ConfigError(
                "schedule=lr_finder with a swarm: the range test tunes a single run; use swarm=off"
            )
        sched = cfg.schedule
        if sched.suggestion not in LR_FINDER_SUGGESTIONS:
            raise ConfigError(
                f"schedule.suggestion={sched.suggestion}: must be one of "
                + ", ".join(LR_FINDER_SUGGESTIONS)
            )
        if sched.then not in LR_FINDER_THEN:
            raise ConfigError(
                f"schedule.then={sched.then}: must be one of " + ", ".join(LR_FINDER_THEN)
            )
        if not float(sched.min_lr) < float(sched.max_lr):
            raise ConfigError(
                f"schedule.max_lr={sched.max_lr}: must be above schedule.min_lr={sched.min_lr}"
            )


#: ``_target_`` prefix of the Evolution Strategies optimizers (baselines/es/)
ES_PREFIX = "baselines.es."


def is_es_optimizer(optimizer: DictConfig) -> bool:
    """Whether an optimizer config is an Evolution Strategy (its step is a generation)."""
    return str(optimizer.get("_target_", "")).startswith(ES_PREFIX)


def _check_es(cfg: DictConfig) -> None:
    """What composes with the ES optimizers (``openai_es``, ``eggroll``, ``cma_es``)."""
    if not is_es_optimizer(cfg.optimizer):
        return
    opt = cfg.optimizer
    cma = "sigma0" in opt  # an ES that adapts its own step size and covariance (cma_es)
    if cfg.get("swarm") is not None and cfg.swarm.get("enabled"):
        raise ConfigError(
            f"swarm with optimizer._target_={opt._target_}: population arms train gradient "
            "trajectories; an ES is its own population, use swarm=off"
        )
    if cma:
        if cfg.ae.enabled:
            raise ConfigError(
                "ae=on with optimizer=cma_es: CMA-ES adapts its own step size and covariance, "
                "AE has no binding for it; use ae=off (or openai_es / eggroll with ae=on)"
            )
        if str(OmegaConf.select(cfg, "schedule._target_")) != CONSTANT_SCHEDULE:
            raise ConfigError(
                f"schedule={_schedule_name(cfg)} with optimizer=cma_es: its lr (pycma's "
                "CMA_cmean) is read once; use schedule=constant"
            )
        pop = opt.get("population")
        if pop is not None and int(pop) < 2:
            raise ConfigError(f"optimizer.population={pop}: must be null or an integer >= 2")
        if not float(opt.sigma0) > 0:
            raise ConfigError(f"optimizer.sigma0={opt.sigma0}: must be a positive number")
        return
    if opt.lr is None or opt.sigma is None:
        key = "lr" if opt.lr is None else "sigma"
        family = _interpolated_family(opt, key)
        tuned = ", ".join(tasks_tuned_for(family)) or "none"
        raise ConfigError(
            f"optimizer.{key}=null: task={cfg.task.name} has no tuned task.lr.{family} (tasks "
            f"with one: {tuned}); give optimizer.{key}=<value> to try it anyway"
        )
    if not float(opt.sigma) > 0:
        raise ConfigError(f"optimizer.sigma={opt.sigma}: must be a positive number")
    pop = int(opt.population)
    if pop < 2 or (opt.antithetic and pop % 2):
        raise ConfigError(
            f"optimizer.population={pop}: must be an integer >= 2 (even with antithetic=true)"
        )
    if opt.shaping not in ("centered_ranks", "none"):
        raise ConfigError(f"optimizer.shaping={opt.shaping}: must be one of centered_ranks, none")
    if opt.get("rank") is not None and int(opt.rank) < 1:
        raise ConfigError(f"optimizer.rank={opt.rank}: must be a positive integer")
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
