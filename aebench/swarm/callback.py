"""Lightning hosting of a population: AE-Swarm (``swarm=on``) and the population baselines.

Design. A thin LightningModule, :class:`PopulationModule`, holds the M trajectories and takes one
*trajectory-step* per Lightning step: the step of the trajectory that is active. A callback,
:class:`SwarmCallback`, hosts the population rule (ask/tell, :mod:`aebench.swarm.scheduler`):
it decides which trajectory is active for how many steps, runs each trajectory's AE controller
around its optimizer step, evaluates, ends the rounds (tells the rule and applies its decision:
consensus shifts, PBT copies, dither), keeps only the active trajectory on the accelerator and
records everything. Why a module plus a callback rather than a callback alone: Lightning owns
the step loop, the device and the optimizer step (and calls ``on_before_optimizer_step`` there,
where AE must act, with the gradients present, as in :mod:`aebench.ae.callback`), so the
population's models and optimizers must be the module's; but the trajectories are kept in a
plain list, not as registered submodules, so that Lightning does not move them all to the
accelerator: the callback moves the active one there at the start of its slice (model,
optimizer state, AE gradient copies) and back to the CPU at its end. Only one trajectory's
training state is ever on the accelerator; the others wait in host memory.

One Lightning step = one trajectory-step, so ``trainer.global_step`` counts total
trajectory-steps: the run's budget (``steps`` or ``task.budget.<scale>``) is the compute of the
*whole population*, and every population arm (and a single-trajectory run) at the same budget
has the same compute. The record's ``steps`` is what was spent: a diverged trajectory is retired
(a NaN model stays NaN), its later slices are not trained, and the run ends with fewer steps, as
a diverged single run does.

Each trajectory has its own task instance (a task may keep state: an RL task counts its
episodes), built from the run seed, so every trajectory sees the same data, validation set and
batch order; its own model, optimizer, schedule (over its equal share, budget / M steps: a
trajectory that AE-Swarm gives more compute holds the value of the schedule's last step from
then on (the value the step ``budget / M`` of a single run of that length uses: positive, where a
cosine's value after its horizon would be 0), one given less never reaches it; the default
schedule is constant) and AE controller. Seeds, all
derived from the run seed by :func:`aebench.seeding.derive_seed`: trajectory 0 *is* the
single-trajectory run of the seed (same init stream ``init``, same AE noise seed, the
configured coefficients: paired by hash with ``swarm=off``); trajectory i >= 1 initialises from
``init/traj<i>`` and draws AE noise from ``noise/traj<i>``; the priors' Latin hypercube from
``swarm/priors``, the rule's choices (PBT) from ``swarm/rule`` and the dither from
``swarm/dither``. So every population arm of a seed
starts from the same population and differs only by its rule.

Evaluations: the active trajectory every ``budget / scale.evals`` global steps and at the end of
each of its slices (its score for the round). The population's curve ``val_<metric>`` at a step
is the best latest evaluation among the live trajectories (what the population could deploy
then); ``metric``, ``target`` (time-to-target in total trajectory-steps) and ``auc`` come from
it. At the end the selected trajectory is the live one with the best final evaluation (selection
and report on the same evaluation metric, as PBT does; the same rule for every arm): its value is
``metric.final``; ``population`` in the record holds the mean and every trajectory's final
metric, status, priors, coefficients and incidents.

Curves (``/traj<i>`` suffix; docs/records.md): per logged step of trajectory i
``train_loss/traj<i>``,
the coefficients it used (``lr/traj<i>``, ``beta1/traj<i>``, ...), AE's signals (``gamma/traj<i>``,
...) every ``ae.log_every`` steps, and ``val_<metric>/traj<i>`` at its evaluations; at a round's
end ``round``, ``score/traj<i>``, ``weight/traj<i>``, every trajectory's coefficients after the
round's actions, and ``donor/traj<i>`` where PBT copied; at a round's start ``budget/traj<i>``
(steps of that round; the round-end row of round r holds round r's weights and round r+1's
budgets). Incidents: summed over trajectories; ``divergence`` counts trajectory divergences.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
import math
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.fabric.utilities.apply_func import move_data_to_device
from omegaconf import DictConfig
from torch import nn
from torch.optim import Optimizer

from aebench.ae.bindings import add_parameter_noise
from aebench.ae.config import AEConfig
from aebench.ae.config import validate as validate_ae
from aebench.ae.controller import SIGNAL_COLUMNS, AEControl
from aebench.curves import CurveBuffer
from aebench.record import Incidents
from aebench.recorder import Recorder, check_divergence, count_cliffs, finite_or_none
from aebench.schema import optimizer_factory
from aebench.seeding import derive_seed, tensor_hash
from aebench.swarm.coefficients import Coefficients
from aebench.swarm.scheduler import (
    GENOTYPE,
    Coordinate,
    Decision,
    Population,
    PopulationRule,
    prior_positions,
    round_totals,
)
from aebench.task import Task

log = logging.getLogger(__name__)

#: the rejuvenation dither's RMS floor (as AE-4's noise form, ae.noise.rms_floor's default)
DITHER_RMS_FLOOR = 1e-3
#: prior axes: the genotype's kinds and the AE gains
PRIOR_AXES: tuple[str, ...] = (*GENOTYPE, "gains")


@dataclass
class Trajectory:
    """One member of the population and its bookkeeping."""

    index: int
    task: Task
    model: nn.Module
    optimizer: Optimizer
    schedule: Any
    control: AEControl | None
    coefs: Coefficients
    batches: Iterator[Any]
    seed: int
    #: multiplier per prior axis (spread ** u)
    priors: dict[str, float]
    init_hash: str
    #: the schedule's horizon (the equal share budget / M); steps beyond it use its last value
    schedule_steps: int = 1
    status: str = "alive"
    steps: int = 0
    first_loss: float | None = None
    evals: list[tuple[int, float]] = field(default_factory=list)
    best: float | None = None
    incidents: Incidents = field(default_factory=Incidents)
    prev_log_lr: list[float] | None = None
    device: str = "cpu"

    @property
    def alive(self) -> bool:
        return self.status == "alive"

    @property
    def latest(self) -> float:
        return self.evals[-1][1] if self.evals else math.nan


# ------------------------------------------------------------------------ device moves
def move_state(traj: Trajectory, device: torch.device | str) -> None:
    """Move a trajectory's training state (model, optimizer state but its ``step`` counters,
    which torch keeps on the CPU, and the AE controller's gradient copies) to ``device``."""
    device = torch.device(device)
    traj.model.to(device)
    for state in traj.optimizer.state.values():
        for key, value in state.items():
            if key != "step" and isinstance(value, torch.Tensor):
                state[key] = value.to(device)
    if traj.control is not None:
        for gs in traj.control.groups:
            for key, value in gs.prev.items():
                gs.prev[key] = value.to(device)
    traj.device = str(device)


def copy_training_state(dst: Trajectory, src: Trajectory) -> None:
    """PBT's exploit: ``dst`` continues from ``src``'s weights, optimizer state (with its
    coefficients), schedule state and AE controller state; ``dst`` keeps its own AE gains, noise
    generator, task instance and data stream. The AE gradient copy is dropped (rebuilt at the
    next step: rho compares gradients of one model only)."""
    dst.model.load_state_dict(src.model.state_dict())
    dst.optimizer.load_state_dict(copy.deepcopy(src.optimizer.state_dict()))
    if dst.schedule is not None and src.schedule is not None:
        dst.schedule.load_state_dict(copy.deepcopy(src.schedule.state_dict()))
    if dst.control is not None and src.control is not None:
        state = copy.deepcopy(src.control.state_dict())
        state.pop("generators", None)
        dst.control.load_state_dict(state)
        for gs in dst.control.groups:
            gs.prev.clear()
    dst.status = src.status


# ------------------------------------------------------------------------ module
class PopulationModule(L.LightningModule):
    """Holds the population (a plain list: Lightning does not move it) and takes one step of
    the active trajectory per Lightning step, with manual optimization in the order of
    :class:`aebench.module.TaskModule`: loss, ``last_loss``, backward, optimizer step (AE acts in
    ``on_before_optimizer_step``), schedule step."""

    def __init__(self, trajectories: list[Trajectory], metric_name: str) -> None:
        super().__init__()
        self.automatic_optimization = False
        self.population = trajectories
        #: index of the trajectory the next step trains (set by the callback)
        self.active = 0
        self.last_loss: torch.Tensor = torch.tensor(float("nan"))
        self.last_reward: torch.Tensor | None = None
        self.curves = CurveBuffer(first_columns=(f"val_{metric_name}",))

    @property
    def model(self) -> nn.Module:
        """The active trajectory's model."""
        return self.population[self.active].model

    def configure_optimizers(self) -> Any:
        return [t.optimizer for t in self.population]

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        traj = self.population[self.active]
        opts = self.optimizers()
        opt = opts[self.active] if isinstance(opts, list) else opts
        data = move_data_to_device(next(traj.batches), self.device)
        loss = traj.task.loss(traj.model, data) * traj.task.loss_scale
        self.last_loss = loss.detach()
        reward = traj.task.reward()
        self.last_reward = None if reward is None else torch.tensor(float(reward))
        opt.zero_grad(set_to_none=True)
        self.manual_backward(loss)
        opt.step()
        if traj.schedule.last_epoch < traj.schedule_steps - 1:
            traj.schedule.step()  # beyond its horizon the schedule holds its last value
        return self.last_loss


def ticks() -> Iterator[int]:
    """The Trainer's data: one tick per step; each trajectory draws its own batches."""
    n = 0
    while True:
        yield n
        n += 1


# ------------------------------------------------------------------------ callback
class SwarmCallback(Recorder):
    """Runs the rounds of a population rule (module doc) and records the run.

    A :class:`aebench.recorder.Recorder` (the runner reads it as it reads a single run's):
    ``metric``, ``target``, ``incidents``, ``status``, :meth:`finish`, :meth:`auc` on the
    population's curve ``evals``, plus :meth:`population`.
    """

    def __init__(
        self,
        trajectories: list[Trajectory],
        rule: PopulationRule,
        *,
        total_steps: int,
        eval_every: int,
        log_every: int,
        ae_log_every: int,
        target: float,
        metric_name: str,
        mode: str,
        divergence_factor: float,
        divergence_floor: float,
        progress_every: int,
        label: str,
        dither_seed: int,
    ) -> None:
        super().__init__(
            metric_name=metric_name,
            mode=mode,
            target=target,
            total_steps=total_steps,
            eval_every=eval_every,
            log_every=log_every,
            divergence_factor=divergence_factor,
            divergence_floor=divergence_floor,
            progress_every=progress_every,
            label=label,
        )
        self.trajs = trajectories
        self.rule = rule
        self.ae_log_every = ae_log_every
        # self.evals: the population's curve, (step, best latest evaluation among live ones)
        self.round_budgets: list[list[int]] = []
        self.decisions: list[Decision] = []
        self.copies = 0
        self.active: int | None = None
        self.left = 0
        self.plan: list[tuple[int, int]] = []
        self.device = torch.device("cpu")
        self.offload = torch.device("cpu")
        self.pending: dict[str, float] = {}
        self.dither_gen = torch.Generator().manual_seed(dither_seed)
        self._handles: list[Any] = []

    # ------------------------------------------------------------------ helpers
    def _activate(self, pl_module: PopulationModule, i: int) -> None:
        if self.active is not None and self.active != i:
            move_state(self.trajs[self.active], self.offload)
        move_state(self.trajs[i], self.device)
        self.active = i
        pl_module.active = i

    def _evaluate(self, pl_module: PopulationModule, t: Trajectory, step: int) -> float:
        model = t.model
        was_training = model.training
        model.eval()
        with torch.no_grad():
            value = float(t.task.evaluate(model))
        model.train(was_training)
        t.evals.append((step, value))
        if math.isfinite(value) and (t.best is None or self._better(value, t.best)):
            t.best = value
        pl_module.curves.log(step, **{f"val_{self.metric.name}/traj{t.index}": value})
        self._population_point(pl_module, step)
        return value

    def _population_value(self) -> tuple[int | None, float]:
        """``(index, value)`` of the best latest evaluation among live trajectories."""
        best: tuple[int | None, float] = (None, math.nan)
        for t in self.trajs:
            v = t.latest
            if t.alive and math.isfinite(v) and (best[0] is None or self._better(v, best[1])):
                best = (t.index, v)
        return best

    def _population_point(self, pl_module: PopulationModule, step: int) -> None:
        _, value = self._population_value()
        if self.evals and self.evals[-1][0] == step:
            self.evals[-1] = (step, value)
        else:
            self.evals.append((step, value))
        pl_module.curves.log(step, **{f"val_{self.metric.name}": value})
        self._track(value, step)

    def _used_coefficients(self, t: Trajectory) -> dict[str, float]:
        """The coefficients the coming optimizer step uses (read after AE wrote them)."""
        b = t.coefs.binding
        out: dict[str, float] = {}
        for g, group in enumerate(t.optimizer.param_groups):
            sfx = "" if g == 0 else f"/pg{g}"
            for kind in b.kinds:
                if kind != "sigma":
                    out[b.columns[kind] + sfx] = b.read(group, kind)
            if t.control is not None:
                out["sigma" + sfx] = float(t.control.groups[g].sigma)
        return out

    def _count_cliffs(self, t: Trajectory) -> None:
        t.prev_log_lr = count_cliffs(t.optimizer, t.prev_log_lr, t.incidents)

    @staticmethod
    def _suffixed(values: dict[str, float], i: int) -> dict[str, float]:
        return {f"{k}/traj{i}": v for k, v in values.items()}

    def _log_coefficients(self, pl_module: PopulationModule, step: int) -> None:
        for t in self.trajs:
            pl_module.curves.log(step, **self._suffixed(t.coefs.values(), t.index))

    # ------------------------------------------------------------------ rounds
    def _start_round(self, trainer: L.Trainer, pl_module: PopulationModule, step: int) -> None:
        budgets = self.rule.ask()
        if not budgets:
            trainer.should_stop = True
            return
        self.round_budgets.append(list(budgets))
        pl_module.curves.log(step, **{f"budget/traj{i}": b for i, b in enumerate(budgets)})
        self.plan = [(i, b) for i, b in enumerate(budgets) if b > 0 and self.trajs[i].alive]
        if not self._next_slice(pl_module):
            trainer.should_stop = True

    def _next_slice(self, pl_module: PopulationModule) -> bool:
        while self.plan:
            i, b = self.plan.pop(0)
            if self.trajs[i].alive:
                self.left = b
                self._activate(pl_module, i)
                return True
        return False

    def _end_round(self, trainer: L.Trainer, pl_module: PopulationModule, step: int) -> None:
        if self.active is not None:
            move_state(self.trajs[self.active], self.offload)
            self.active = None
        metrics = [t.latest for t in self.trajs]
        alive = [t.alive for t in self.trajs]
        coefs = [t.coefs.read() for t in self.trajs]
        d = self.rule.tell(metrics, coefs, alive)
        self.decisions.append(d)
        curves = pl_module.curves
        donors: dict[str, float] = {}
        for dst, src in d.copies:
            copy_training_state(self.trajs[dst], self.trajs[src])
            value = self.trajs[src].latest  # the same weights: the same evaluation
            self.trajs[dst].evals.append((step, value))
            curves.log(step, **{f"val_{self.metric.name}/traj{dst}": value})
            donors[f"donor/traj{dst}"] = float(src)
            self.copies += 1
        for i, shift in enumerate(d.shifts):
            if shift and self.trajs[i].alive:
                self.trajs[i].coefs.shift(shift)
        if d.dither is not None and self.trajs[d.dither].alive:
            params = [p for p in self.trajs[d.dither].model.parameters() if p.requires_grad]
            dither = float(getattr(self.rule, "dither", 0.0))
            add_parameter_noise(params, dither, DITHER_RMS_FLOOR, self.dither_gen)
        curves.log(step, round=float(d.round + 1), **donors)
        curves.log(step, **{f"score/traj{i}": s for i, s in enumerate(d.scores)})
        curves.log(step, **{f"weight/traj{i}": w for i, w in enumerate(d.weights)})
        self._log_coefficients(pl_module, step)
        self._population_point(pl_module, step)
        if not any(t.alive for t in self.trajs):
            self.status = "diverged"
            trainer.should_stop = True
            return
        self._start_round(trainer, pl_module, step)

    # ------------------------------------------------------------------ hooks
    def on_train_start(self, trainer: L.Trainer, pl_module: PopulationModule) -> None:
        self.t0 = time.perf_counter()
        self.device = pl_module.device
        for t in self.trajs:
            if t.control is not None:
                ctl = t.control
                self._handles.append(
                    t.optimizer.register_step_post_hook(lambda *_a, c=ctl: c.after_step())
                )
            move_state(t, self.device)
            self._count_cliffs(t)
            self._evaluate(pl_module, t, 0)
            move_state(t, self.offload)
        self._log_coefficients(pl_module, 0)
        self._start_round(trainer, pl_module, 0)

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:  # noqa: ANN001
        t = self.trajs[pl_module.active]
        row: dict[str, float] = {}
        if t.control is not None:
            row = t.control.before_step(pl_module.last_loss, pl_module.last_reward)
        step = trainer.global_step + 1
        self._count_cliffs(t)
        self.pending = {}
        if step % self.log_every == 0 or step >= self.total_steps:
            self.pending.update(self._used_coefficients(t))
        if row and step % self.ae_log_every == 0:
            self.pending.update({k: v for k, v in row.items() if k.split("/")[0] in SIGNAL_COLUMNS})

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        step = trainer.global_step
        t = self.trajs[pl_module.active]
        t.steps += 1
        self.left -= 1
        loss = float(pl_module.last_loss)
        diverged, t.first_loss = check_divergence(
            loss, t.first_loss, t.incidents, self.divergence_factor, self.divergence_floor
        )
        last = step >= self.total_steps
        if diverged or last or step % self.log_every == 0:
            values = {"train_loss": loss, **self.pending}
            phase = t.task.drift_phase(t.steps)
            if phase is not None:
                values["drift_phase"] = phase
            values.update(t.task.train_log())
            pl_module.curves.log(step, **self._suffixed(values, t.index))
        elif self.pending:
            pl_module.curves.log(step, **self._suffixed(self.pending, t.index))
        self.pending = {}
        if diverged:
            t.status = "diverged"
            t.incidents.divergence = 1
            self._evaluate(pl_module, t, step)
            self.left = 0
            log.warning(
                "%s trajectory %d diverged at step %d (train loss %.4g): retired",
                self.label,
                t.index,
                step,
                loss,
            )
        elif step % self.eval_every == 0:
            self._evaluate(pl_module, t, step)
        if self.left <= 0:
            if t.alive and (not t.evals or t.evals[-1][0] != step):
                self._evaluate(pl_module, t, step)
            if not self._next_slice(pl_module):
                self._end_round(trainer, pl_module, step)
        if self.progress_every and (step % self.progress_every == 0 or last):
            _, value = self._population_value()
            log.info(
                "%s step %d/%d  round %d  alive %d/%d  val_%s %.4g  (%.1f s)",
                self.label,
                step,
                self.total_steps,
                len(self.round_budgets),
                sum(x.alive for x in self.trajs),
                len(self.trajs),
                self.metric.name,
                value,
                self.wall_s,
            )

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        for t in self.trajs:
            move_state(t, self.offload)
        self.active = None

    # ------------------------------------------------------------------ results
    def selected(self) -> int | None:
        """The live trajectory with the best final evaluation (None if none is alive)."""
        return self._population_value()[0]

    def finish(self) -> None:
        """Fill the incidents, ``metric.final`` and the status once training has ended."""
        self.incidents.nonfinite = sum(t.incidents.nonfinite for t in self.trajs)
        self.incidents.divergence = sum(t.incidents.divergence for t in self.trajs)
        self.incidents.lr_cliffs = sum(t.incidents.lr_cliffs for t in self.trajs)
        if not any(t.alive for t in self.trajs):
            self.status = "diverged"
        sel = self.selected()
        self.metric.final = finite_or_none(self.trajs[sel].latest) if sel is not None else None
        self.metric.best = finite_or_none(self.metric.best)

    def population(self) -> dict[str, Any]:
        """The record's ``population`` field (module doc); non-finite numbers become null (the
        record is strict JSON)."""
        finals = [t.latest for t in self.trajs if t.alive and math.isfinite(t.latest)]
        pop = self.rule.pop
        return _json_safe(
            {
                "rule": type(self.rule).__name__,
                "size": len(self.trajs),
                "rounds": len(pop.round_steps) if pop is not None else None,
                "round_steps": list(pop.round_steps) if pop is not None else None,
                "b_min": self.rule.b_min() if hasattr(self.rule, "b_min") else None,
                "budgets": self.round_budgets,
                "copies": self.copies,
                "selected": self.selected(),
                "mean_final": finite_or_none(sum(finals) / len(finals)) if finals else None,
                "n_final": len(finals),
                "per_trajectory": [
                    {
                        "index": t.index,
                        "status": t.status,
                        "steps": t.steps,
                        "final": finite_or_none(t.latest),
                        "best": finite_or_none(t.best),
                        "priors": t.priors,
                        "coefficients": t.coefs.values(),
                        "incidents": dataclasses.asdict(t.incidents),
                        "init_hash": t.init_hash,
                        "seed": t.seed,
                    }
                    for t in self.trajs
                ],
            }
        )


def _json_safe(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None, recursively."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    return value


# ------------------------------------------------------------------------ building
def _ae_with_gains(cfg: AEConfig, gain: float) -> AEConfig:
    """``cfg`` with its meta-steps (AE-3 eta_a, AE-8 eta_gamma, AE-4 eta_sigma) times ``gain``."""
    return dataclasses.replace(
        cfg,
        eta_a=cfg.eta_a * gain,
        gauge=dataclasses.replace(cfg.gauge, eta_gamma=cfg.gauge.eta_gamma * gain),
        noise=dataclasses.replace(cfg.noise, eta_sigma=cfg.noise.eta_sigma * gain),
    )


def build_population(
    cfg: DictConfig,
    task: Task,
    model: nn.Module,
    batches: Any,
    budget: int,
    make_task: Callable[[], Task],
    label: str,
) -> tuple[PopulationModule, SwarmCallback]:
    """The module and callback of a population run (module doc for every choice).

    ``task``, ``model`` and ``batches`` are the runner's (trajectory 0: the paired single run);
    ``make_task`` builds the task afresh from the config for the other trajectories.
    """
    sw = cfg.swarm
    size = int(sw.M)
    ae_cfg = validate_ae(cfg.ae)
    make_opt = optimizer_factory(cfg.optimizer)
    make_sched = instantiate(cfg.schedule, _convert_="all")
    share = max(1, budget // size)
    positions = prior_positions(
        size, PRIOR_AXES, random.Random(derive_seed(cfg.seed, "swarm/priors"))
    )
    spread = {k: float(sw.priors.coef) for k in GENOTYPE}
    spread["alpha"] = float(sw.priors.lr)
    spread["gains"] = float(sw.priors.gains)
    trajs: list[Trajectory] = []
    space: dict[str, Coordinate] = {}
    for i in range(size):
        if i == 0:
            t_task, t_model, t_batches, seed = task, model, iter(batches), int(cfg.seed)
        else:
            with torch.random.fork_rng(devices=[]):
                t_task = make_task()
                torch.manual_seed(derive_seed(cfg.seed, f"init/traj{i}"))
                t_model = t_task.build_model()
            t_batches = t_task.train_batches()
            seed = derive_seed(cfg.seed, f"noise/traj{i}") % 2**31
        opt = make_opt(t_model.parameters())
        plain = Coefficients(opt, ae_cfg=ae_cfg)
        if i == 0:
            for key, z in plain.read().items():
                kind = plain.keys[key][1]
                lo, hi = plain.feasible(kind)
                space[key] = Coordinate(z, math.log(spread[kind]), lo, hi)
        u = positions[i]
        plain.shift({key: u[k] * math.log(spread[k]) for key, (_, k) in plain.keys.items()})
        sched = make_sched(opt, total_steps=share)
        control = None
        gain = spread["gains"] ** u["gains"]
        if cfg.ae.enabled:
            # the task's model coefficients (gates, dropout, l1) join each trajectory's
            # controller, as in a single run (aebench.ae.callback.AEController)
            mcs = list(t_task.coefficients(t_model)) if hasattr(t_task, "coefficients") else []
            control = AEControl(
                opt, _ae_with_gains(ae_cfg, gain), seed=seed, model_coefficients=mcs
            )
        priors = {k: spread[k] ** u[k] for k in GENOTYPE}
        priors["gains"] = gain if control is not None else 1.0
        trajs.append(
            Trajectory(
                index=i,
                task=t_task,
                model=t_model,
                optimizer=opt,
                schedule=sched,
                control=control,
                coefs=Coefficients(opt, sched, control, ae_cfg),
                batches=t_batches,
                seed=seed,
                priors=priors,
                init_hash=tensor_hash(*t_model.state_dict().values()),
                schedule_steps=share,
            )
        )
    rule: PopulationRule = instantiate(sw.rule, _convert_="all")()
    rule.start(
        Population(
            size=size,
            round_steps=tuple(round_totals(budget, int(sw.rounds))),
            mode=task.metric_mode,
            space=space,
            seed=derive_seed(cfg.seed, "swarm/rule"),
        )
    )
    module = PopulationModule(trajs, task.metric_name)
    callback = SwarmCallback(
        trajs,
        rule,
        total_steps=budget,
        eval_every=max(1, budget // cfg.scale.evals),
        log_every=int(cfg.scale.log_every),
        ae_log_every=int(cfg.ae.log_every),
        target=float(cfg.task.target),
        metric_name=task.metric_name,
        mode=task.metric_mode,
        divergence_factor=float(cfg.divergence.factor),
        divergence_floor=float(cfg.divergence.floor),
        progress_every=max(1, budget // cfg.scale.progress_lines)
        if cfg.scale.progress_lines
        else 0,
        label=label,
        dither_seed=derive_seed(cfg.seed, "swarm/dither"),
    )
    return module, callback
