"""Memory of AE-Swarm with M trajectories against one trajectory, as ratios in one run.

    python benchmarks/swarm_memory.py [--M 4] [--steps 96] [--hidden 1024] [--accelerator auto]

Three jobs through the real runner (``aebench.runner.run_job``), in one process, on the
regression task with a wider MLP (``--hidden``, so the model dominates memory), AdamW and
``ae=on``: a single run (``swarm=off``), the population host with one trajectory
(``swarm=on swarm.M=1``: the host's own overhead) and AE-Swarm with M trajectories
(``swarm=on swarm.M=<M>``), all at the same total trajectory-steps.

Measured, on CUDA (the claim: only the trajectory being trained is on the accelerator, so the
ratio stays near 1 whatever M):

* ``peak``: ``torch.cuda.max_memory_allocated`` over the job (reset before it);
* ``resident``: the largest ``torch.cuda.memory_allocated`` seen at the end of a training step,
  i.e. what stays on the device between steps (parameters, gradients, optimizer state, AE's
  gradient copy) plus the evaluation's leftovers.

Without CUDA there is no accelerator to spare: the population lives in host memory by design
(M models and optimizer states), and the script reports the bytes of every trajectory's training
state at the end of each step (``resident``, host) and says so; the ratio is then about M.

The regression task's ``evaluate`` keeps its validation tensors on the CPU; on CUDA the script
runs a subclass (:class:`DeviceRegression`) that moves them to the model's device, so that the
measurement is of the swarm and not of a task's device handling.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

import lightning as L
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aebench.runner as runner  # noqa: E402
from aebench.paths import config_dir  # noqa: E402
from aebench.schema import register_configs  # noqa: E402
from tasks.regression import RegressionTask  # noqa: E402


class DeviceRegression(RegressionTask):
    """The regression task with its validation set on the model's device (for CUDA)."""

    def evaluate(self, model: torch.nn.Module) -> float:
        device = next(model.parameters()).device
        if self.x_val.device != device:
            self.x_val, self.y_val = self.x_val.to(device), self.y_val.to(device)
        return super().evaluate(model)


def state_bytes(pl_module: L.LightningModule, trainer: L.Trainer) -> int:
    """Bytes of every trajectory's training state (parameters, gradients, optimizer state, AE
    gradient copies) wherever it lives."""
    seen: set[int] = set()

    def add(t: object) -> int:
        if isinstance(t, torch.Tensor) and id(t) not in seen:
            seen.add(id(t))
            return t.numel() * t.element_size()
        return 0

    population = getattr(pl_module, "population", None)
    if population is not None:
        members = [(t.model, t.optimizer, t.control) for t in population]
    else:
        controls = [getattr(c, "controls", {}) for c in trainer.callbacks]
        ctl = next((next(iter(c.values())) for c in controls if c), None)
        members = [(pl_module.model, trainer.optimizers[0], ctl)]
    total = 0
    for model, opt, ctl in members:
        total += sum(add(p) + add(p.grad) for p in model.parameters())
        total += sum(add(v) for s in opt.state.values() for v in s.values())
        if ctl is not None:
            total += sum(add(t) for gs in ctl.groups for t in gs.prev.values())
    return total


class Sampler(L.Callback):
    """Memory at the end of every training step."""

    def __init__(self) -> None:
        self.resident = 0

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        if torch.cuda.is_available() and pl_module.device.type == "cuda":
            now = torch.cuda.memory_allocated()
        else:
            now = state_bytes(pl_module, trainer)
        self.resident = max(self.resident, now)


def run(overrides: list[str], cuda: bool) -> dict[str, Any]:
    """One job through the runner with a :class:`Sampler` attached; its memory and record."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf, open_dict

    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    choices = OmegaConf.to_container(cfg.hydra.runtime.choices)
    with open_dict(cfg):
        del cfg["hydra"]
    sampler = Sampler()
    trainer_cls = runner.L.Trainer

    class SampledTrainer(trainer_cls):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, callbacks: list | None = None, **kwargs: Any) -> None:
            super().__init__(*args, callbacks=[*(callbacks or []), sampler], **kwargs)

    if cuda:
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    runner.L.Trainer = SampledTrainer
    try:
        with tempfile.TemporaryDirectory() as out:
            ctx = runner.JobContext(Path(out), choices, overrides, reraise=True)
            record = runner.run_job(cfg, ctx)
    finally:
        runner.L.Trainer = trainer_cls
    peak = torch.cuda.max_memory_allocated() if cuda else None
    return {
        "peak": peak,
        "resident": sampler.resident,
        "steps": record.steps,
        "final": record.metric.final,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--M", type=int, default=4, help="trajectories of the swarm")
    parser.add_argument("--steps", type=int, default=96, help="total trajectory-steps")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--hidden", type=int, default=1024, help="MLP width")
    parser.add_argument("--accelerator", default="auto", choices=["auto", "cpu", "gpu"])
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    cuda = args.accelerator == "gpu" or (args.accelerator == "auto" and torch.cuda.is_available())
    common = [
        "task=regression",
        "optimizer=adamw",
        "ae=on",
        "scale=smoke",
        f"steps={args.steps}",
        f"task.hidden=[{args.hidden},{args.hidden}]",
        f"trainer.threads={args.threads}",
        f"trainer.accelerator={'gpu' if cuda else 'cpu'}",
        "scale.progress_lines=0",
    ]
    if cuda:
        common.append(f"task._target_={__name__}.DeviceRegression")
    arms = {
        "single (swarm=off)": ["swarm=off"],
        "host, M=1": ["swarm=on", "swarm.M=1", f"swarm.rounds={args.rounds}"],
        f"swarm, M={args.M}": ["swarm=on", f"swarm.M={args.M}", f"swarm.rounds={args.rounds}"],
    }
    where = "CUDA (allocated bytes)" if cuda else "host: no accelerator; training-state bytes"
    print(
        f"regression MLP hidden {args.hidden}, AdamW + AE, {args.steps} total "
        f"trajectory-steps, memory on {where}"
    )
    results = {name: run(common + extra, cuda) for name, extra in arms.items()}
    base = results["single (swarm=off)"]
    for name, r in results.items():
        peak = (
            f"peak {r['peak'] / 2**20:8.2f} MiB (x{r['peak'] / base['peak']:.3f})"
            if cuda
            else "peak n/a"
        )
        print(
            f"{name:20s} steps {r['steps']:4d}  {peak}  resident {r['resident'] / 2**20:8.2f} "
            f"MiB (x{r['resident'] / base['resident']:.3f})"
        )
    swarm = results[f"swarm, M={args.M}"]
    if cuda:
        print(
            f"ratio swarm M={args.M} / single: peak x{swarm['peak'] / base['peak']:.3f}, "
            f"resident x{swarm['resident'] / base['resident']:.3f}"
        )
    else:
        print(
            f"ratio swarm M={args.M} / single: host state x"
            f"{swarm['resident'] / base['resident']:.3f} (the population lives in host memory; "
            "the accelerator claim needs CUDA)"
        )


if __name__ == "__main__":
    main()
