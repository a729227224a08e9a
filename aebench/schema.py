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
    #: the LR-free and self-tuning optimizers (baselines/lr_free.py, baselines/hypergradient.py)
    #: default to a documented start, not a tuned value: schedule-free AdamW from the task's
    #: AdamW lr (the schedule-free authors find its best lr at 1-10x AdamW's: a tune_lr grid
    #: upward from here is the way to tune it); Prodigy's lr is a multiplier of its estimated
    #: step, 1.0 by its authors' convention; SGD-HD and Adam-HD start alpha_0 from the tuned
    #: SGD and Adam lr (the same start as the fixed-lr baseline they are compared with)
    schedulefree_adamw: float = "${.adamw}"  # type: ignore[assignment]
    prodigy: float = 1.0
    sgd_hd: float = "${.sgd}"  # type: ignore[assignment]
    adam_hd: float = "${.adam}"  # type: ignore[assignment]
    #: Evolution Strategies (baselines/es/): alpha of OpenAI-ES and of EGGROLL, and ``es_sigma``,
    #: the perturbation std both start from (absolute, parameter units; not an lr, but tuned in
    #: the same grid). null where ES is not set up for the task: an ES run then fails its
    #: preflight with one line unless ``optimizer.lr`` / ``optimizer.sigma`` are given
    openai_es: float | None = None
    eggroll: float | None = None
    es_sigma: float | None = None


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
class GatedDepthTaskConfig(TaskConfig):
    in_dim: int = 8
    classes: int = 4
    turns: float = 2.0
    noise: float = 0.03
    nuisance: float = 0.05
    n_train: int = 4096
    n_val: int = 2048
    n_test: int = 2048
    #: the split evaluate() scores: test (reported) | val (calibrating targets and LRs)
    eval_split: str = "test"
    width: int = 32
    #: hidden units per block; a gate keeps the first gate * units of them
    units: int = 32
    blocks: int = 6
    #: one prior for every gate, or a list of one per block
    gate_init: Any = 0.5
    dropout: float = 0.1
    burst_every: int = 0
    burst_len: int = 0
    burst_flip: float = 0.5


@dataclass
class BasisEquationTaskConfig(TaskConfig):
    basis: list[str] = field(
        default_factory=lambda: [
            "one",
            "x",
            "x2",
            "x3",
            "x4",
            "sin",
            "cos",
            "sin2",
            "gauss",
            "abs",
            "tanh",
        ]
    )
    x_max: float = 3.0
    noise: float = 0.5
    n_train: int = 128
    n_val: int = 1024
    n_test: int = 1024
    #: the split evaluate() scores: test (reported) | val (calibrating targets and LRs)
    eval_split: str = "test"
    l1: float = 1e-2
    select_threshold: float = 0.05


@dataclass
class RewardPhaseConfig:
    """One drift phase of an RL task: the agent sees ``scale * r + shift``; ``length``,
    ``force_mag``, ``gravity`` (null: unchanged) set CartPole's physics (a dynamics drift)."""

    scale: float = 1.0
    shift: float = 0.0
    length: float | None = None
    force_mag: float | None = None
    gravity: float | None = None


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
    #: the loss value AE and the recorder read: shortfall | critic | surrogate
    ae_loss: str = "shortfall"
    #: divide the gradient by the phase's reward gain (the oracle schedule lr / (scale + shift))
    oracle: bool = False
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
class FmnistDataConfig:
    """``fmnist``'s data: the folder of the four IDX files (tasks/fmnist.py)."""

    #: synthetic (same schema) | real (the IDX files at ``path``)
    source: str = "synthetic"
    path: str | None = "/usr/share/datasets/fashion-mnist"
    #: the corpus's name, recorded in the run's config
    name: str = "Fashion-MNIST"


@dataclass
class FmnistScaleConfig:
    """One scale's preset of ``fmnist`` (the task keys interpolate from it)."""

    source: str = MISSING
    model: str = MISSING
    batch_size: int = MISSING
    drift_every: int = MISSING
    n_train: int | None = MISSING
    n_test: int | None = MISSING
    target: float = MISSING


@dataclass
class FmnistScalesConfig:
    smoke: FmnistScaleConfig = field(default_factory=FmnistScaleConfig)
    cpu: FmnistScaleConfig = field(default_factory=FmnistScaleConfig)
    paper: FmnistScaleConfig = field(default_factory=FmnistScaleConfig)


@dataclass
class FmnistTaskConfig(TaskConfig):
    #: stable | rotating | class_shift
    mode: str = "stable"
    corruptions: list[str] = MISSING
    severity: int = 3
    drift_every: int = MISSING
    shift_classes: int = 3
    shift_skew: float = 0.8
    #: 2c2d | mlp
    model: str = MISSING
    n_train: int | None = None
    n_test: int | None = None
    rolling: int = 50
    data: FmnistDataConfig = field(default_factory=FmnistDataConfig)
    scales: FmnistScalesConfig = field(default_factory=FmnistScalesConfig)


@dataclass
class WikiTextDataConfig(DataConfig):
    text_column: str = "text"
    #: source=text_files: UTF-8 files or globs (tasks/text_files.py)
    files: list[str] = field(default_factory=list)
    #: source=text_files: every val_every-th file of the sorted list is validation
    val_every: int = 10


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


@dataclass
class ScheduleFreeAdamWConfig:
    """``baselines.lr_free.schedulefree_adamw`` (schedulefree.AdamWScheduleFree)."""

    _target_: str = "baselines.lr_free.schedulefree_adamw"
    _partial_: bool = True
    lr: float = MISSING
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0
    #: the optimizer's internal linear warmup, a fraction of the run's step budget
    warmup_frac: float = 0.05
    r: float = 0.0
    weight_lr_power: float = 2.0
    #: the run's budget, interpolated (``${steps}``, ``${task.budget.${scale.name}}``)
    run_steps: int | None = None
    budget: int | None = None


@dataclass
class ProdigyConfig:
    """``prodigyopt.Prodigy``: Adam with a D-Adaptation step size d * lr."""

    _target_: str = "prodigyopt.Prodigy"
    _partial_: bool = True
    lr: float = MISSING
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    beta3: float | None = None
    eps: float = 1e-8
    weight_decay: float = 0.0
    decouple: bool = True
    use_bias_correction: bool = False
    safeguard_warmup: bool = False
    d0: float = 1e-6
    d_coef: float = 1.0
    # growth_rate stays at the package's unbounded default (inf is not valid JSON in a record)


@dataclass
class SGDHDConfig:
    """``baselines.hypergradient.SGDHD``: SGD whose lr follows its hypergradient."""

    _target_: str = "baselines.hypergradient.SGDHD"
    _partial_: bool = True
    lr: float = MISSING
    hypergrad_lr: float = 1e-3
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0


@dataclass
class AdamHDConfig:
    """``baselines.hypergradient.AdamHD``: Adam whose lr follows its hypergradient."""

    _target_: str = "baselines.hypergradient.AdamHD"
    _partial_: bool = True
    lr: float = MISSING
    hypergrad_lr: float = 1e-7
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    weight_decay: float = 0.0


@dataclass
class OpenAIESConfig:
    """``baselines.es.OpenAIES``: full-rank mirrored-sampling ES (one step = one generation)."""

    _target_: str = "baselines.es.OpenAIES"
    _partial_: bool = True
    lr: float | None = MISSING
    #: perturbation std, absolute (parameter units)
    sigma: float | None = MISSING
    population: int = 32
    antithetic: bool = True
    #: centered_ranks | none
    shaping: str = "centered_ranks"
    weight_decay: float = 0.0
    #: sgd | adam: how the ES estimate is applied (Adam: the OpenAI-ES paper's setting)
    update: str = "sgd"
    #: Adam's (beta1, beta2) and eps (update=adam only)
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    #: divide the rank-shaped estimate by the configured sigma, not the drawn one (step
    #: independent of sigma when AE moves it; identical while sigma stays at its configured value)
    decouple: bool = True
    #: the tuning search space of this optimizer (read by rulesets; not passed to it)
    search_space: dict[str, Any] = field(default_factory=dict)


@dataclass
class EGGROLLConfig(OpenAIESConfig):
    """``baselines.es.EGGROLL``: low-rank perturbations A B^T / sqrt(r) per weight matrix."""

    _target_: str = "baselines.es.EGGROLL"
    rank: int = 1


@dataclass
class CMAESConfig:
    """``baselines.es.CMAES``: pycma's CMA-ES (ask/tell), for small parameter counts."""

    _target_: str = "baselines.es.CMAES"
    _partial_: bool = True
    #: initial step size, absolute (parameter units)
    sigma0: float = 0.5
    #: pycma's popsize; null: its default 4 + floor(3 ln n)
    population: int | None = None
    #: pycma's CMA_cmean (learning rate of the mean)
    lr: float = 1.0
    #: the largest parameter count accepted (full covariance: O(n^2) memory, O(n^3) time)
    max_dim: int = 1000
    #: further pycma options (cma.CMAOptions), e.g. {tolfun: 1e-12}
    options: dict[str, Any] = field(default_factory=dict)
    #: IPOP restarts allowed once pycma's termination criteria fire (0: freeze instead)
    restarts: int = 0
    #: population factor per restart
    incpopsize: float = 2.0
    #: the tuning search space of this optimizer (read by rulesets; not passed to it)
    search_space: dict[str, Any] = field(default_factory=dict)


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


@dataclass
class LRFinderScheduleConfig:
    """``baselines.lr_finder.LRFinderSchedule``: an LR range test before training, then
    ``then`` at the suggested lr (every key documented in ``conf/schedule/lr_finder.yaml``)."""

    _target_: str = "baselines.lr_finder.LRFinderSchedule"
    _partial_: bool = False
    min_lr: float = 1e-6
    max_lr: float = 10.0
    num_steps: int = 100
    smooth: float = 0.9
    diverge_factor: float = 4.0
    #: min_div10 | steepest
    suggestion: str = "min_div10"
    #: constant | cosine
    then: str = "constant"
    warmup_frac: float = 0.05
    min_lr_frac: float = 0.0


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
    #: the tuning ruleset (conf/ruleset: self_tuning or external; aebench/tuning.py)
    ruleset: Any = None
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
        "fmnist": FmnistTaskConfig,
        "gated_depth": GatedDepthTaskConfig,
        "basis_equation": BasisEquationTaskConfig,
    },
    "optimizer": {
        "sgd": SGDConfig,
        "adam": AdamConfig,
        "adafactor": AdafactorConfig,
        "schedulefree_adamw": ScheduleFreeAdamWConfig,
        "prodigy": ProdigyConfig,
        "sgd_hd": SGDHDConfig,
        "adam_hd": AdamHDConfig,
        "openai_es": OpenAIESConfig,
        "eggroll": EGGROLLConfig,
        "cma_es": CMAESConfig,
    },
    "schedule": {
        "constant": ConstantScheduleConfig,
        "cosine": CosineScheduleConfig,
        "step": StepScheduleConfig,
        "onecycle": OneCycleScheduleConfig,
        "lr_finder": LRFinderScheduleConfig,
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
