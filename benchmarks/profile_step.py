"""Where the time of one AE update and of one harness step goes (issue 15's profile).

    python benchmarks/profile_step.py [--steps 300] [--table 15]

1. AE update, regression MLP (76k parameters), AdamW, ``ae.every=1``: the mean wall time of
   each part of a training step over ``--steps`` steps (forward+backward, the controller's
   measurement, its coefficient update, the optimizer step, the sigma noise), timed in place by
   wrapping the controller's methods, then ``torch.profiler`` over 20 steps: the ops by self CPU
   time.
2. Harness step: ``cProfile`` of the suite's run (``run_job``, 600 steps, the regression task)
   for the functions of aebench and Lightning by cumulative time per step.

It prints tables; no goals (the ratios are in ae_overhead.py and harness_overhead.py).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aebench.ae.config import AEConfig  # noqa: E402
from aebench.ae.controller import AEControl  # noqa: E402
from tasks.regression import RegressionTask  # noqa: E402


def ae_parts(steps: int, table: int, sigma: str) -> None:
    torch.manual_seed(0)
    task = RegressionTask(seed=0)
    it = task.train_batches()
    batches = [next(it) for _ in range(16)]
    model = task.build_model()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cfg = AEConfig(enabled=True)
    if sigma != "default":
        cfg.coefs.sigma.adapt = False
        cfg.noise.sigma_init = 0.0 if sigma == "floor" else 1e-4
    ctl = AEControl(opt, cfg, seed=0)
    spent: dict[str, float] = defaultdict(float)

    def timed(name: str, fn):  # noqa: ANN001, ANN202
        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t0 = time.perf_counter()
            out = fn(*a, **k)
            spent[name] += time.perf_counter() - t0
            return out

        return wrapper

    ctl._measure = timed("  measure (gradient statistics)", ctl._measure)
    ctl._update_group = timed("  coefficient update (laws)", ctl._update_group)
    ctl._store_prev = timed("  rho copy", ctl._store_prev)

    def step(i: int) -> None:
        x, y = batches[i % len(batches)]
        t0 = time.perf_counter()
        loss = nn.functional.mse_loss(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t1 = time.perf_counter()
        ctl.before_step(loss.detach())
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        ctl.after_step()
        t4 = time.perf_counter()
        loss.item()
        spent["forward + backward"] += t1 - t0
        spent["AE before_step (all)"] += t2 - t1
        spent["optimizer step"] += t3 - t2
        spent["AE after_step (sigma noise)"] += t4 - t3

    for i in range(30):
        step(i)
    spent.clear()
    for i in range(steps):
        step(i)
    print(
        f"AE update, regression MLP, AdamW, ae.every=1, sigma {sigma} "
        f"(now {ctl.groups[0].sigma:.3g}), mean of {steps} steps:"
    )
    for name in (
        "forward + backward",
        "optimizer step",
        "AE before_step (all)",
        "  measure (gradient statistics)",
        "  coefficient update (laws)",
        "  rho copy",
        "AE after_step (sigma noise)",
    ):
        print(f"  {name:34s} {spent[name] / steps * 1e6:8.1f} us")
    from torch.profiler import profile

    with profile() as prof:
        for i in range(20):
            step(i)
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=table))


def harness(steps: int, table: int) -> None:
    from aebench.runner import JobContext, run_job
    from tests.helpers import compose_config

    overrides = [
        "task=regression",
        "optimizer=adamw",
        "scale=cpu",
        f"steps={steps}",
        "scale.progress_lines=0",
    ]
    cfg, choices = compose_config(overrides)
    pr = cProfile.Profile()
    with tempfile.TemporaryDirectory() as out:
        pr.enable()
        run_job(cfg, JobContext(Path(out), choices, overrides))
        pr.disable()
    print(
        f"harness: run_job, regression, AdamW, {steps} steps (cProfile, cumulative, "
        "aebench and lightning functions):"
    )
    pstats.Stats(pr).sort_stats("cumtime").print_stats(
        "aebench|lightning/pytorch/(loops|core|strategies|plugins)", table
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--table", type=int, default=15)
    parser.add_argument("--sigma", default="floor", choices=["default", "floor", "noise"])
    parser.add_argument("--skip-harness", action="store_true")
    args = parser.parse_args()
    ae_parts(args.steps, args.table, args.sigma)
    if not args.skip_harness:
        harness(600, args.table)


if __name__ == "__main__":
    main()
