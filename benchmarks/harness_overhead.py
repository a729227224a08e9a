"""Per-step cost of the suite against a raw PyTorch loop, on the regression task.

    python benchmarks/harness_overhead.py [--steps 1500] [--repeats 3]

Both sides train the same model (same seed, same init) on the same pre-made batches with AdamW,
read the loss every step and evaluate the validation MSE ``scale.evals`` times. The suite side is
``aebench.runner.run_job`` itself (Lightning, run recorder, record writing). Setup cost (imports,
Trainer construction, data generation) is cancelled by timing a short and a long run and dividing
the difference by the difference in steps. Reported as a ratio measured in one process; the
issue's target is at most 1.3x.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aebench.runner import JobContext, build_model, build_task, run_job  # noqa: E402
from tests.helpers import compose_config  # noqa: E402


def suite_seconds(steps: int, evals: int) -> float:
    overrides = [
        "task=regression",
        "optimizer=adamw",
        "scale=cpu",
        f"steps={steps}",
        f"scale.evals={evals}",
        "scale.progress_lines=0",
    ]
    cfg, choices = compose_config(overrides)
    with tempfile.TemporaryDirectory() as out:
        t0 = time.perf_counter()
        run_job(cfg, JobContext(Path(out), choices, overrides))
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
    short = max(1, args.steps // 5)
    suite_seconds(20, 2)  # warm-up: imports, allocator, thread pools
    raw_seconds(20, 2)
    suite, raw = [], []
    for _ in range(args.repeats):
        raw.append(per_step(raw_seconds, short, args.steps, args.evals))
        suite.append(per_step(suite_seconds, short, args.steps, args.evals))
    s, r = statistics.median(suite), statistics.median(raw)
    print(f"regression task, AdamW, {args.steps} steps, median of {args.repeats} repeats")
    print(f"raw PyTorch loop : {r * 1e3:.3f} ms/step")
    print(f"aebench (suite)  : {s * 1e3:.3f} ms/step")
    print(f"overhead ratio   : {s / r:.2f}x  (target <= 1.3x)")


if __name__ == "__main__":
    main()
