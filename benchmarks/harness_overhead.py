"""Per-step cost of the suite against a raw PyTorch loop and a bare Lightning Trainer.

    python benchmarks/harness_overhead.py [--steps 1500] [--repeats 3] [--evals 50]

Three arms train the same model (same seed, same init) with AdamW on the regression task's
batches (``task.train_batches()``: one gather per epoch, a view per step):

* ``raw``: a plain PyTorch loop (forward, zero_grad, backward, step, one loss read per step);
* ``bare Lightning``: ``L.Trainer(barebones=True)`` running the suite's own
  :class:`aebench.module.TaskModule` (same optimizer, same schedule), no callbacks, no loss read:
  what Lightning itself costs on this module;
* ``suite``: ``aebench.runner.run_job`` itself (the run recorder, curves, record writing).

Setup (imports, Trainer construction, data generation) and the ``--evals`` evaluations (the same
number in a short and a long run) cancel: each arm's per-step time is the difference of a long
and a short run divided by the difference in steps; the median over ``--repeats`` interleaved
repeats. Goals (issue 15): suite <= 1.25x raw, suite <= 1.05x bare Lightning.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from hydra.utils import instantiate

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from goals import finish, report  # noqa: E402

from aebench.module import TaskModule  # noqa: E402
from aebench.runner import JobContext, build_model, build_task, run_job  # noqa: E402
from aebench.schema import optimizer_factory  # noqa: E402
from tests.helpers import compose_config  # noqa: E402

BASE = ["task=regression", "optimizer=adamw", "scale=cpu", "scale.progress_lines=0"]


def suite_seconds(steps: int, evals: int) -> float:
    overrides = [*BASE, f"steps={steps}", f"scale.evals={evals}"]
    cfg, choices = compose_config(overrides)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run_job(cfg, JobContext(Path(out), choices, overrides))
        return time.perf_counter() - t0


def bare_seconds(steps: int, evals: int) -> float:
    t0 = time.perf_counter()
    cfg, _ = compose_config([*BASE, f"steps={steps}"])
    task = build_task(cfg)
    model = build_model(task, cfg.seed)
    module = TaskModule(
        task,
        model,
        optimizer_factory(cfg.optimizer),
        instantiate(cfg.schedule, _convert_="all"),
        steps,
    )
    trainer = L.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        barebones=True,
        callbacks=[],
        default_root_dir=tempfile.gettempdir(),
    )

    class Batches:
        def __iter__(self):  # noqa: ANN204
            return task.train_batches()

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*(barebones|does not have many workers).*")
        trainer.fit(module, train_dataloaders=Batches())
    return time.perf_counter() - t0


def raw_seconds(steps: int, evals: int) -> float:
    t0 = time.perf_counter()
    cfg, _ = compose_config(["task=regression", "optimizer=adamw"])
    task = build_task(cfg)
    model = build_model(task, cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.optimizer.lr, weight_decay=0.01)
    batches = task.train_batches()
    every = max(1, steps // evals)
    for step in range(1, steps + 1):
        loss = task.loss(model, next(batches))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        loss.item()
        if step % every == 0:
            with torch.no_grad():
                task.evaluate(model)
    return time.perf_counter() - t0


def per_step(measure, short: int, long: int, evals: int) -> float:  # noqa: ANN001
    return (measure(long, evals) - measure(short, evals)) / (long - short)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1500)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--evals", type=int, default=50)
    args = parser.parse_args()
    short = max(args.evals, args.steps // 5)
    arms = {
        "raw PyTorch loop": raw_seconds,
        "bare Lightning": bare_seconds,
        "aebench (suite)": suite_seconds,
    }
    for measure in arms.values():  # warm-up: imports, allocator, thread pools
        measure(2 * args.evals, args.evals)
    times: dict[str, list[float]] = {name: [] for name in arms}
    for _ in range(args.repeats):
        for name, measure in arms.items():
            times[name].append(per_step(measure, short, args.steps, args.evals))
    med = {name: statistics.median(v) for name, v in times.items()}
    print(
        f"regression task, AdamW, {args.steps} steps, median of {args.repeats} repeats, "
        f"torch threads {torch.get_num_threads()}"
    )
    for name, t in med.items():
        print(f"{name:18s}: {t * 1e3:.3f} ms/step  ({t / med['raw PyTorch loop']:.3f}x raw)")
    suite = med["aebench (suite)"]
    report("harness.suite_vs_raw", suite / med["raw PyTorch loop"], 1.25)
    report("harness.suite_vs_bare_lightning", suite / med["bare Lightning"], 1.05)
    finish()


if __name__ == "__main__":
    main()
