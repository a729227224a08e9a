"""One job, end to end: build the task, model, optimizer and schedule from the config, train
through Lightning with the run recorder, and write the run record.

``run_job`` is what the Hydra app calls; tests call it directly with a composed config.
"""

from __future__ import annotations

import logging
import time
import traceback
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from aebench.ae.config import AEConfig
from aebench.identity import GROUPS, ablation_name, job_identity  # noqa: F401 - re-exported
from aebench.module import TaskModule
from aebench.record import Metric, RunRecord, Target
from aebench.recorder import RunRecorder
from aebench.resume import clean_hydra_only, find_final, load_record, other_job_record
from aebench.schema import optimizer_factory
from aebench.seeding import derive_seed, tensor_hash
from aebench.task import Task
from aebench.validation import ConfigError, is_es_optimizer, validate_config

log = logging.getLogger(__name__)
# Lightning's start-up banners (GPU/TPU availability, tips) say nothing about the run
logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
logging.getLogger("lightning.fabric").setLevel(logging.WARNING)

#: task config keys that belong to the harness, not to the task's constructor; ``scales`` holds
#: per-scale presets that a task's YAML interpolates its keys from (``${task.scales.<scale>.x}``)
HARNESS_KEYS = ("name", "budget", "lr", "target", "scales")


@dataclass
class JobContext:
    """Where and how a job runs (from Hydra's runtime config, or given by a test)."""

    out_dir: Path
    choices: dict[str, str | None]
    overrides: list[str]
    #: in a sweep a failed job is recorded and the sweep goes on; alone it exits non-zero
    reraise: bool = True
    #: where ``resume=true`` looks for records of the same arm and seed besides ``out_dir``
    #: (the sweep folder, ``hydra.sweep.dir``; None: ``out_dir`` only)
    sweep_dir: Path | None = None


def step_budget(cfg: DictConfig) -> int:
    return int(cfg.steps) if cfg.steps is not None else int(cfg.task.budget[cfg.scale.name])


def build_task(cfg: DictConfig) -> Task:
    """The task object. Its constructor raises :class:`ConfigError` on values out of range."""
    params = OmegaConf.to_container(cfg.task, resolve=True)
    for key in HARNESS_KEYS:
        params.pop(key, None)
    try:
        return instantiate(params, seed=cfg.seed, _convert_="all")
    except InstantiationException as err:
        if isinstance(err.__cause__, ConfigError):
            raise err.__cause__ from None
        raise


def build_model(task: Task, seed: int) -> torch.nn.Module:
    """The task's model, initialised from the seed's ``init`` stream alone (pairing)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "init"))
        return task.build_model()


def _first_batch_hash(batch: Any) -> str:
    tensors = batch if isinstance(batch, tuple | list) else (batch,)
    return tensor_hash(*(t for t in tensors if isinstance(t, torch.Tensor)))


class _PeekedBatches:
    """Train batches with the first one remembered (hashed for the pairing proof)."""

    def __init__(self, task: Task) -> None:
        self.iterator = task.train_batches()
        self.first = next(self.iterator)

    def __iter__(self):  # noqa: ANN204
        yield self.first
        yield from self.iterator


def _wandb_sink(cfg: DictConfig, ctx: JobContext, arm: str) -> tuple[Callable, Callable]:
    from lightning.pytorch.loggers import WandbLogger

    logger = WandbLogger(
        project=cfg.logger.project,
        entity=cfg.logger.entity,
        offline=cfg.logger.offline,
        save_dir=str(ctx.out_dir),
        name=f"{arm}-s{cfg.seed}",
        group=arm,
        tags=list(cfg.logger.tags),
        config=OmegaConf.to_container(cfg, resolve=True),
    )

    def sink(step: int, values: dict[str, float]) -> None:
        logger.log_metrics(values, step=step)

    def close() -> None:
        logger.experiment.finish()

    return sink, close


def _resume(ctx: JobContext, arm: str, seed: int) -> RunRecord | None:
    """With ``resume=true``: the final record of this arm and seed if one exists (logged, the
    job's own folder left as found or, when the record lives elsewhere, removed if Hydra's files
    are all it holds); None when the job must run (aebench/resume.py says which records count).
    Raises :class:`ConfigError` rather than overwrite another job's record."""
    found = find_final(ctx.out_dir, ctx.sweep_dir, arm, seed)
    if found is None:
        clash = other_job_record(ctx.out_dir, list(ctx.overrides), arm, seed)
        if clash:
            raise ConfigError(clash)
        return None
    log.info("skip: %s seed=%d already %s in %s", arm, seed, found.status, found.path.parent)
    if found.path.parent.resolve() != ctx.out_dir.resolve():
        clean_hydra_only(ctx.out_dir)
    return load_record(found.path)


def _lr_range_test(
    cfg: DictConfig,
    range_test: Callable[..., Any],
    model: torch.nn.Module,
    module: TaskModule,
    trainer: L.Trainer,
    record: RunRecord,
    ctx: JobContext,
    label: str,
) -> None:
    """``schedule=lr_finder`` (baselines/lr_finder.py): the range test on a copy of the initial
    model and a fresh task, on the trainer's device; training then builds its optimizer at the
    suggested lr. The suggestion goes to ``extra.lr_finder``, the trace to ``lr_finder.csv``."""
    import functools

    from aebench.record import atomic_write_text

    test = range_test(
        lambda: build_task(cfg),
        model,
        module.make_optimizer,
        module.loss_scale,
        trainer.strategy.root_device,
        derive_seed(cfg.seed, "lr_finder"),
    )
    module.make_optimizer = functools.partial(module.make_optimizer, lr=test.lr)
    record.extra["lr_finder"] = test.summary()
    atomic_write_text(ctx.out_dir / "lr_finder.csv", test.to_csv())
    log.info(
        "%s lr range test: %d steps%s, suggested lr %.4g (%s; lowest smoothed loss at %.4g)",
        label,
        test.steps,
        " (stopped early)" if test.stopped_early else "",
        test.lr,
        test.rule,
        test.min_loss_lr,
    )


def new_record(cfg: DictConfig, ctx: JobContext, task: Task, budget: int, ident: Any) -> RunRecord:
    """The job's record before it trains: ``failed`` until the recorder says otherwise."""
    choices = ident.choices
    record = RunRecord(
        status="failed",
        task=str(choices["task"] or cfg.task.name),
        optimizer=str(choices["optimizer"]),
        schedule=str(choices["schedule"]),
        ae=ident.ae,
        ablation=str(choices["ablation"]),
        swarm=str(choices["swarm"]),
        scale=str(cfg.scale.name),
        seed=int(cfg.seed),
        arm=ident.arm,
        ae_arm=choices.get("ae"),
        overrides=list(ctx.overrides),
        config=ident.resolved,
        data_source=task.data_source,
        metric=Metric(name=task.metric_name, mode=task.metric_mode),
        target=Target(value=float(cfg.task.target)),
        budget=budget,
    )
    corpus = getattr(task, "corpus", None)  # real-data tasks name their corpus (docs/data.md)
    if task.data_source == "real" and corpus:
        record.extra["data"] = {"corpus": str(corpus)}
    return record


def build_training(
    cfg: DictConfig, task: Task, model: torch.nn.Module, batches: _PeekedBatches, budget: int,
    label: str, ae: AEConfig | None,
) -> tuple[L.LightningModule, Any, list[L.Callback], Any]:  # fmt: skip
    """``(module, recorder, callbacks, train data)``: a population (aebench/swarm, M
    trajectories, steps = total trajectory-steps) or a single run (one step = one optimizer
    step, or one ES generation with no backward), with AE's controller first when it is on
    (``ae``: the AE config :func:`validate_config` checked, None with AE off)."""
    if cfg.swarm.enabled:
        from aebench.swarm.callback import build_population, ticks

        module, recorder = build_population(
            cfg, task, model, batches, budget, lambda: build_task(cfg), label
        )
        return module, recorder, [recorder], ticks()
    module_cls = TaskModule
    if is_es_optimizer(cfg.optimizer):
        from aebench.es_module import ESTaskModule as module_cls
    module = module_cls(
        task,
        model,
        optimizer_factory(cfg.optimizer),
        instantiate(cfg.schedule, _convert_="all"),
        budget,
    )
    recorder = RunRecorder(
        task,
        total_steps=budget,
        eval_every=max(1, budget // cfg.scale.evals),
        log_every=cfg.scale.log_every,
        target=float(cfg.task.target),
        divergence_factor=cfg.divergence.factor,
        divergence_floor=cfg.divergence.floor,
        progress_every=max(1, budget // cfg.scale.progress_lines)
        if cfg.scale.progress_lines
        else 0,
        label=label,
    )
    callbacks: list[L.Callback] = [recorder]
    if ae is not None:
        from aebench.ae.callback import AEController

        callbacks.insert(0, AEController(ae, seed=cfg.seed))
    return module, recorder, callbacks, batches


def make_trainer(cfg: DictConfig, ctx: JobContext, budget: int, callbacks: list) -> L.Trainer:
    return L.Trainer(
        max_steps=budget,
        accelerator=cfg.trainer.accelerator,
        devices=1,
        deterministic=cfg.trainer.deterministic,
        barebones=True,
        callbacks=callbacks,
        default_root_dir=str(ctx.out_dir),
    )


def fit(trainer: L.Trainer, module: L.LightningModule, data: Any) -> None:
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=".*(barebones|does not have many workers|LeafSpec).*"
        )
        trainer.fit(module, train_dataloaders=data)


class _Job:
    """What the ``finally`` of :func:`run_job` needs, whether or not training got that far."""

    module: L.LightningModule | None = None
    trainer: L.Trainer | None = None
    close_sink: Callable[[], None] | None = None


def _close(job: _Job, record: RunRecord, ctx: JobContext, t0: float) -> None:
    """Write the record and the curves, whatever happened (a failed job is data too)."""
    record.steps = job.trainer.global_step if job.trainer is not None else 0
    record.fitness_evaluations = int(getattr(job.module, "fitness_evaluations", 0) or 0)
    record.wall_s = round(time.perf_counter() - t0, 4)
    if job.module is not None:
        job.module.curves.write(str(ctx.out_dir / "curves.csv"))
    record.write(ctx.out_dir)
    if job.close_sink is not None:
        job.close_sink()


def _seeded_start(
    cfg: DictConfig, task: Task, record: RunRecord
) -> tuple[torch.nn.Module, _PeekedBatches]:
    """Threads, the global seed, the model and the first batch, hashed into ``record.pairing``
    (arms with the same seed must start from the same weights and data)."""
    if cfg.trainer.threads:
        torch.set_num_threads(int(cfg.trainer.threads))
    L.seed_everything(derive_seed(cfg.seed, "global") % 2**32, workers=True, verbose=False)
    model = build_model(task, cfg.seed)
    batches = _PeekedBatches(task)
    record.pairing = {
        "init_hash": tensor_hash(*model.state_dict().values()),
        "first_batch_hash": _first_batch_hash(batches.first),
    }
    return model, batches


def _read_results(
    record: RunRecord, recorder: Any, callbacks: list, population: bool, module: Any, task: Task
) -> None:
    """What training produced: status, AUC, compute spent, AE's summary, the population's
    ledger. Compute is in forward-equivalents (a gradient step costs 3, an ES generation of N
    members N + 1) and, for RL tasks, environment steps: the axis ES-vs-gradient comparisons
    are matched on."""
    record.status = recorder.status
    spent = getattr(module, "forward_equivalents", None)
    if spent is not None:
        record.extra["compute"] = {
            "forward_equivalents": float(spent),
            "env_steps": int(getattr(task, "env_steps", 0)),
        }
    for cb in callbacks:  # AE: gauge set points, mean guard and budget multipliers
        if callable(getattr(cb, "summary", None)):
            record.extra["ae"] = cb.summary()
    record.auc = recorder.auc()
    if population:
        record.population = recorder.population()


def run_job(cfg: DictConfig, ctx: JobContext) -> RunRecord:
    """Validate, train and record one job. A bad config raises before anything is written."""
    ae = validate_config(cfg)  # the AE config, checked once here for its controller
    t0 = time.perf_counter()
    ident = job_identity(cfg, ctx.choices)
    if cfg.resume and (done := _resume(ctx, ident.arm, int(cfg.seed))) is not None:
        return done
    task = build_task(cfg)  # tasks raise ConfigError on bad values: still nothing written
    budget = step_budget(cfg)
    record = new_record(cfg, ctx, task, budget, ident)
    ctx.out_dir.mkdir(parents=True, exist_ok=True)
    job = _Job()
    try:
        model, batches = _seeded_start(cfg, task, record)
        label = f"[{ident.arm.rsplit('-', 1)[0]} seed={cfg.seed}]"
        job.module, recorder, callbacks, data = build_training(
            cfg, task, model, batches, budget, label, ae
        )
        record.metric, record.target = recorder.metric, recorder.target
        record.incidents = recorder.incidents
        if cfg.logger.kind == "wandb":
            sink, job.close_sink = _wandb_sink(cfg, ctx, ident.arm)
            job.module.curves.sinks.append(sink)
        job.trainer = make_trainer(cfg, ctx, budget, callbacks)
        range_test = getattr(getattr(job.module, "make_schedule", None), "range_test", None)
        if range_test is not None and not cfg.swarm.enabled:  # schedule=lr_finder
            _lr_range_test(cfg, range_test, model, job.module, job.trainer, record, ctx, label)
        fit(job.trainer, job.module, data)
        recorder.finish()
        _read_results(record, recorder, callbacks, cfg.swarm.enabled, job.module, task)
    except Exception:
        record.error = traceback.format_exc()
        log.error("job failed:\n%s", record.error)
        if ctx.reraise:
            raise
    finally:
        _close(job, record, ctx, t0)
    log.info(
        "%s: %s after %d steps, final val_%s %s (record: %s)",
        ident.arm, record.status, record.steps, record.metric.name, record.metric.final,
        ctx.out_dir / "result.json",
    )  # fmt: skip
    return record
