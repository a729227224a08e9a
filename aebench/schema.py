"""Structured-config schemas, registered in Hydra's ConfigStore.

Every YAML option extends one of these dataclasses (``defaults: [/schema/<group>/<kind>@_here_]``),
so a typo'd key or a value of the wrong type fails at composition, before any training, with a
message naming the key. Range checks that a type cannot express live in ``aebench.validation``.
The schemas sit in the ``schema/`` group, out of the user's groups, so ``task='glob(*)'`` sweeps
only real options.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from aebench.ae.config import AEConfig
from aebench.swarm.config import SWARM_SCHEMAS


# ---------------------------------------------------------------- task
@dataclass
class BudgetConfig:
    """Default step budget of a task at each scale (``steps=`` overrides it)."""

    smoke: int = MISSING
    cpu: int = MISSING
    paper: int = MISSING


@dataclass
class SuggestedLRConfig:
    """The task's tuned base learning rate per optimizer family; ``optimizer.lr`` defaults to it.

    Each task says in its YAML how these were chosen (a small LR sweep of the *vanilla*
    optimizer, never of AE), so baselines start well tuned.
    """

    sgd: float = MISSING
    sgdm: float = MISSING
    adam: float = MISSING
    adamw: float = MISSING
    adafactor: float = MISSING


@dataclass
class TaskConfig:
    _target_: str = MISSING
    name: str = MISSING
    batch_size: int = MISSING
    loss_scale: float = 1.0
    #: time-to-target threshold on the task's evaluation metric
    target: float = MISSING
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    lr: SuggestedLRConfig = field(default_factory=SuggestedLRConfig)


@dataclass
class RegressionTaskConfig(TaskConfig):
    in_dim: int = 32
    out_dim: int = 8
    hidden: list[int] = field(default_factory=lambda: [256, 256])
    n_train: int = 8192
    n_val: int = 2048
    noise: float = 0.1


@dataclass
class RosenbrockTaskConfig(TaskConfig):
    dim: int = 2
    start: list[float] = field(default_factory=lambda: [-1.2, 1.0])
    start_jitter: float = 0.1
    grad_noise: float = 0.0


@dataclass
class QuadraticDelayTaskConfig(TaskConfig):
    dim: int = 50
    condition: float = 1000.0
    delay: int = 4
    rotate: bool = True
    start_distance: float = 10.0
    grad_noise: float = 0.0


@dataclass
class PlateauTaskConfig(TaskConfig):
    in_dim: int = 16
    hidden: int = 32
    teacher_hidden: int = 32
    teacher_gain: float = 4.0
    noise: float = 0.05
    n_train: int = 4096
    n_val: int = 2048
    init_offset: float = 10.0
    exit_fraction: float = 0.5


@dataclass
class RewardPhaseConfig:
    """One drift phase of an RL task: the agent sees ``scale * r + shift``."""

    scale: float = 1.0
    shift: float = 0.0


@dataclass
class EpisodesPerScaleConfig:
    """A count of episodes at each scale (like :class:`BudgetConfig` for steps)."""

    smoke: int = MISSING
    cpu: int = MISSING
    paper: int = MISSING


@dataclass
class RewardDriftConfig:
    every_episodes: EpisodesPerScaleConfig = field(default_factory=EpisodesPerScaleConfig)
    phases: list[RewardPhaseConfig] = field(default_factory=lambda: [RewardPhaseConfig()])


@dataclass
class CartPoleDriftTaskConfig(TaskConfig):
    #: the scale name, which picks ``drift.every_episodes.<scale>``
    run_scale: str = "${scale.name}"
    env_id: str = "CartPole-v1"
    hidden: int = 64
    gamma: float = 0.99
    value_scale: float = 100.0
    vf_coef: float = 0.5
    ent_coef: float = 0.0
    eval_episodes: int = 10
    eval_policy: str = "greedy"
    drift: RewardDriftConfig = field(default_factory=RewardDriftConfig)


@dataclass
class DataConfig:
    """Where a real-data task's data comes from (``tasks/hf_data.py``)."""

    #: synthetic (the labelled stand-in) | real (Hugging Face datasets)
    source: str = "synthetic"
    #: a save_to_disk folder or a folder of data files; null: the HF cache, or the Hub if online
    path: str | None = None
    #: the Hub id of the data set
    name: str = MISSING
    #: the Hub config (subset) name; null for none
    config: str | None = None
    #: the datasets cache folder; null: $HF_DATASETS_CACHE
    cache_dir: str | None = None
    #: may the Hub be contacted when the data is neither at ``path`` nor in the cache
    online: bool = False


@dataclass
class CifarDataConfig(DataConfig):
    image_column: str = "img"
    label_column: str = "label"


@dataclass
class CifarScaleConfig:
    """One scale's preset of ``cifar_corruptions`` (the task keys interpolate from it)."""

    source: str = MISSING
    model: str = MISSING
    width: int = MISSING
    batch_size: int = MISSING
    augment: bool = MISSING
    drift_every: int = MISSING
    n_train: int | None = MISSING
    n_test: int | None = MISSING
    target: float = MISSING


@dataclass
class CifarScalesConfig:
    smoke: CifarScaleConfig = field(default_factory=CifarScaleConfig)
    cpu: CifarScaleConfig = field(default_factory=CifarScaleConfig)
    paper: CifarScaleConfig = field(default_factory=CifarScaleConfig)


@dataclass
class CifarCorruptionsTaskConfig(TaskConfig):
    #: stable | rotating | class_shift
    mode: str = "rotating"
    corruptions: list[str] = MISSING
    severity: int = 3
    drift_every: int = MISSING
    shift_classes: int = 3
    shift_skew: float = 0.8
    #: tiny_cnn | resnet20 | resnet18
    model: str = MISSING
    width: int = MISSING
    augment: bool = MISSING
    n_train: int | None = None
    n_test: int | None = None
    rolling: int = 50
    data: CifarDataConfig = field(default_factory=CifarDataConfig)
    scales: CifarScalesConfig = field(default_factory=CifarScalesConfig)


@dataclass
class WikiTextDataConfig(DataConfig):
    text_column: str = "text"


@dataclass
class MarkovConfig:
    """The synthetic text source of ``wikitext``: a Markov chain with a known entropy rate."""

    symbols: int = 32
    order: int = 2
    concentration: float = 0.1
    #: order 2: weight of the first-order part of each row (the rest depends on the pair)
    blend: float = 0.7


@dataclass
class WikiTextScaleConfig:
    """One scale's preset of ``wikitext`` (the task keys interpolate from it)."""

    source: str = MISSING
    tokenizer: str = MISSING
    batch_size: int = MISSING
    seq_len: int = MISSING
    d_model: int = MISSING
    n_layers: int = MISSING
    n_heads: int = MISSING
    dropout: float = MISSING
    eval_tokens: int | None = MISSING
    n_train_tokens: int | None = MISSING
    target: float = MISSING


@dataclass
class WikiTextScalesConfig:
    smoke: WikiTextScaleConfig = field(default_factory=WikiTextScaleConfig)
    cpu: WikiTextScaleConfig = field(default_factory=WikiTextScaleConfig)
    paper: WikiTextScaleConfig = field(default_factory=WikiTextScaleConfig)


@dataclass
class WikiTextTaskConfig(TaskConfig):
    #: byte | word
    tokenizer: str = MISSING
    min_count: int = 3
    seq_len: int = MISSING
    d_model: int = MISSING
    n_layers: int = MISSING
    n_heads: int = MISSING
    dropout: float = MISSING
    tie: bool = True
    eval_tokens: int | None = MISSING
    n_train_tokens: int | None = MISSING
    markov: MarkovConfig = field(default_factory=MarkovConfig)
    data: WikiTextDataConfig = field(default_factory=WikiTextDataConfig)
    scales: WikiTextScalesConfig = field(default_factory=WikiTextScalesConfig)


# ---------------------------------------------------------------- optimizer
@dataclass
class SGDConfig:
    _target_: str = "torch.optim.SGD"
    _partial_: bool = True
    lr: float = MISSING
    momentum: float = 0.0
    dampening: float = 0.0
    weight_decay: float = 0.0
    nesterov: bool = False


@dataclass
class AdamConfig:
    _target_: str = "torch.optim.Adam"
    _partial_: bool = True
    lr: float = MISSING
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    amsgrad: bool = False


@dataclass
class AdafactorConfig:
    _target_: str = "torch.optim.Adafactor"
    _partial_: bool = True
    lr: float = MISSING
    beta2_decay: float = -0.8
    #: (eps1 for the denominator, eps2 for the relative step); eps1 None means machine epsilon
    eps: list[Any] = field(default_factory=lambda: [None, 1e-3])
    d: float = 1.0
    weight_decay: float = 0.0


# ---------------------------------------------------------------- schedule
@dataclass
class ConstantScheduleConfig:
    _target_: str = "baselines.schedules.constant"
    _partial_: bool = True


@dataclass
class CosineScheduleConfig:
    _target_: str = "baselines.schedules.cosine"
    _partial_: bool = True
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.0


@dataclass
class StepScheduleConfig:
    _target_: str = "baselines.schedules.step"
    _partial_: bool = True
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75])
    gamma: float = 0.1


@dataclass
class OneCycleScheduleConfig:
    _target_: str = "baselines.schedules.onecycle"
    _partial_: bool = True
    pct_start: float = 0.3
    div_factor: float = 25.0
    final_div_factor: float = 1e4
    anneal_strategy: str = "cos"
    cycle_momentum: bool = False


# ---------------------------------------------------------------- scale, logger
# (the ae schema: aebench.ae.config; the swarm schemas: aebench.swarm.config)
@dataclass
class ScaleConfig:
    #: smoke | cpu | paper: picks ``task.budget.<name>``
    name: str = MISSING
    #: evaluations of the metric over the budget (plus one at step 0)
    evals: int = MISSING
    #: a curves.csv row every this many steps
    log_every: int = MISSING
    #: progress lines on the console over the budget
    progress_lines: int = 10


@dataclass
class CSVLoggerConfig:
    """curves.csv and result.json only (they are always written)."""

    kind: str = "csv"


@dataclass
class WandbLoggerConfig:
    """Also stream the curves to Weights & Biases (offline unless ``offline=false``)."""

    kind: str = "wandb"
    project: str = "aebench"
    entity: str | None = None
    offline: bool = True
    tags: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- top level
@dataclass
class TrainerConfig:
    #: cpu | gpu | auto (Lightning accelerator)
    accelerator: str = "cpu"
    #: torch.use_deterministic_algorithms; same config + seed => identical curves on CPU
    deterministic: bool = True
    #: torch intra-op threads; null leaves torch's default
    threads: int | None = None


@dataclass
class DivergenceConfig:
    """When a run stops itself as ``diverged`` (see ``aebench.recorder``)."""

    #: the training loss is non-finite, or |loss| > factor * max(|first loss|, floor)
    factor: float = 1e4
    floor: float = 1e-6


@dataclass
class Config:
    task: Any = MISSING
    optimizer: Any = MISSING
    schedule: Any = MISSING
    scale: ScaleConfig = MISSING
    logger: Any = MISSING
    ae: AEConfig = MISSING
    #: ``SwarmConfig`` (``off``) or a population subclass of it (aebench.swarm.config)
    swarm: Any = MISSING
    #: the run seed; every random stream derives from it (aebench.seeding)
    seed: int = 0
    #: step budget; null takes ``task.budget.<scale.name>``
    steps: int | None = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)
    #: skip the job when its arm and seed already have a completed or diverged record in its
    #: folder or under the sweep folder (aebench/resume.py); not part of the arm
    resume: bool = False


SCHEMAS: dict[str, dict[str, type]] = {
    "task": {
        "regression": RegressionTaskConfig,
        "rosenbrock": RosenbrockTaskConfig,
        "quadratic_delay": QuadraticDelayTaskConfig,
        "plateau": PlateauTaskConfig,
        "cartpole_drift": CartPoleDriftTaskConfig,
        "cifar_corruptions": CifarCorruptionsTaskConfig,
        "wikitext": WikiTextTaskConfig,
    },
    "optimizer": {"sgd": SGDConfig, "adam": AdamConfig, "adafactor": AdafactorConfig},
    "schedule": {
        "constant": ConstantScheduleConfig,
        "cosine": CosineScheduleConfig,
        "step": StepScheduleConfig,
        "onecycle": OneCycleScheduleConfig,
    },
    "logger": {"csv": CSVLoggerConfig, "wandb": WandbLoggerConfig},
    "swarm": SWARM_SCHEMAS,
}


def register_configs() -> None:
    """Store the top-level schema as ``base_config`` and each group schema under ``schema/``.

    ``scale`` and ``ae`` are typed directly in :class:`Config`, so their YAML options need no
    schema line of their own; ``swarm`` options differ in shape (a single trajectory or a
    population rule) and extend ``schema/swarm/<kind>`` like tasks do.
    """
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, kinds in SCHEMAS.items():
        for kind, node in kinds.items():
            cs.store(group=f"schema/{group}", name=kind, node=node)
