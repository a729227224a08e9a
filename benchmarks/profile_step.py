"""Where the time of one AE update and of one harness step goes (issue 15's profile).

    python benchmarks/profile_step.py [--workload regression|cnn] [--sigma floor|noise|default]
        [--steps 300] [--table 15] [--cprofile] [--skip-harness]

1. AE update, AdamW, ``ae.every=1``, on the regression MLP (76k parameters) or the tiny CNN
   (94k) of ``benchmarks/ae_overhead.py``: the median thread-CPU time per step of each part of a
   training step over ``--steps`` steps (forward+backward, the controller's measurement, the
   host read, rho's copy, the coefficient update and its law arithmetic, the row, the optimizer
   step, the sigma noise), timed in place by wrapping the controller's methods (each wrapper
   adds ~1-2 us to its caller), then ``torch.profiler`` over 20 steps with the AE calls
   labelled: the ops by self CPU time; ``--cprofile``: cProfile of the controller's calls.
   Thread-CPU time (``time.thread_time``) is not inflated by preemption on a shared machine.
2. Harness step: ``cProfile`` of the suite's run (``run_job``, 600 steps, the regression task)
   for the functions of aebench and Lightning by cumulative time per step.

It prints tables; no goals (the ratios are in ae_overhead.py and harness_overhead.py).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from contextlib import nullcontext
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ae_overhead import ae_config, workloads  # noqa: E402

import aebench.ae.controller as controller_module  # noqa: E402
from aebench.ae.controller import AEControl  # noqa: E402

#: the controller's parts, timed in place: (label, attribute of the controller or of its module)
PARTS = (
    ("  measurement (Reading on the device)", "_measure"),
    ("  host read (one stack + tolist)", "read_update"),
    ("  rho's copy", "_keep_grad"),
    ("  rho's copy from the gradients", "_store_prev"),
    ("  coefficient update (_update_group)", "_update_group"),
    ("    of which the law arithmetic", "_laws"),
    ("  logged row", "_row"),
    ("  sigma noise (add_parameter_noise)", "add_parameter_noise"),
)


def ae_parts(workload: str, steps: int, table: int, sigma: str, with_cprofile: bool) -> None:
    name = "regression MLP" if workload == "regression" else "tiny CNN"
    make, batches, loss_fn = workloads(torch.device("cpu"))[name]
    torch.manual_seed(0)
    model = make()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ctl = AEControl(opt, ae_config(1, "copy", sigma), seed=0)
    spent: dict[str, list[float]] = defaultdict(list)
    clock = time.thread_time

    def timed(label: str, fn):  # noqa: ANN001, ANN202
        def wrapper(*a, **k):  # noqa: ANN002, ANN003, ANN202
            t0 = clock()
            out = fn(*a, **k)
            spent[label].append(clock() - t0)
            return out

        return wrapper

    for label, attr in PARTS:
        owner = ctl if hasattr(ctl, attr) else controller_module
        if hasattr(owner, attr):  # (an older controller lacks some: their rows stay empty)
            setattr(owner, attr, timed(label, getattr(owner, attr)))

    def step(i: int, label: bool = False) -> None:
        x, y = batches[i % len(batches)]
        t0 = clock()
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t1 = clock()
        with torch.profiler.record_function("AE.before_step") if label else nullcontext():
            ctl.before_step(loss.detach())
        t2 = clock()
        opt.step()
        t3 = clock()
        with torch.profiler.record_function("AE.after_step") if label else nullcontext():
            ctl.after_step()
        t4 = clock()
        loss.item()
        spent["forward + backward"].append(t1 - t0)
        spent["AE before_step (all)"].append(t2 - t1)
        spent["optimizer step"].append(t3 - t2)
        spent["AE after_step (all)"].append(t4 - t3)

    for i in range(30):
        step(i)
    spent.clear()
    for i in range(steps):
        step(i)
    print(
        f"AE update, {name}, AdamW, ae.every=1, sigma {sigma} (now {ctl.groups[0].sigma:.3g}), "
        f"median thread-CPU time per step over {steps} steps:"
    )
    labels = ["forward + backward", "optimizer step", "AE before_step (all)"]
    labels += [label for label, _ in PARTS[:-1]] + ["AE after_step (all)", PARTS[-1][0]]
    for label in labels:
        if spent.get(label):
            print(f"  {label:40s} {statistics.median(spent[label]) * 1e6:9.1f} us")
    if with_cprofile:
        pr = cProfile.Profile()
        for i in range(steps):
            x, y = batches[i % len(batches)]
            loss = loss_fn(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            pr.enable()
            ctl.before_step(loss.detach())
            pr.disable()
            opt.step()
            pr.enable()
            ctl.after_step()
            pr.disable()
        print(f"cProfile of the controller's calls, {steps} steps (tottime):")
        pstats.Stats(pr).sort_stats("tottime").print_stats(table)
    from torch.profiler import profile

    with profile() as prof:
        for i in range(20):
            step(i, label=True)
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
    parser.add_argument("--workload", default="regression", choices=["regression", "cnn"])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--table", type=int, default=15)
    parser.add_argument("--sigma", default="floor", choices=["default", "floor", "noise"])
    parser.add_argument("--cprofile", action="store_true", help="cProfile of the AE calls")
    parser.add_argument("--skip-harness", action="store_true")
    args = parser.parse_args()
    ae_parts(args.workload, args.steps, args.table, args.sigma, args.cprofile)
    if not args.skip_harness:
        harness(600, args.table)


if __name__ == "__main__":
    main()
