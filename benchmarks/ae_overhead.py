"""Cost of the AE controller: step time and memory with AE on vs off, as ratios in one run.

    python benchmarks/ae_overhead.py [--steps 300] [--repeats 3] [--every 1 16] [--only cnn]

Two models, each trained by AdamW on fixed pre-made batches in a plain loop, with and without
:class:`aebench.ae.controller.AEControl` (the code the Lightning callback runs): the regression
task's MLP (batch 256) and a tiny CNN on random 32x32 images (batch 128). Step time is the median
over repeats of the mean over ``--steps`` steps after a warm-up, arms interleaved so that drift in
machine load hits both. Memory: on CUDA, peak allocated bytes; on CPU (no allocator statistics),
the bytes of persistent state (parameters, gradients, optimizer state, AE state), which is what
AE could add. Three AE arms per cadence: ``default`` (``ae=on`` as shipped: sigma may leave its
floor once the noise law drives it), ``floor`` (sigma held at its floor, 0: no noise is drawn;
the controller's own cost) and, for ``ae.every=1``, ``noise`` (sigma held at 1e-4 > 0: one
Gaussian draw per parameter every step). Goals (issue 15), ratios to AE off in the same run:
``floor`` every=1 <= 1.10 (regression MLP) / 1.02 (tiny CNN), every=16 <= 1.02 / 1.005; ``noise``
every=1 <= the floor goal plus the cost of one Gaussian draw per parameter (measured here, in
the same run, as ``torch.randn`` of the model's size); persistent state <= 1.25 (rho's copy: one
gradient-sized buffer) with ``rho_buffer=copy`` and 1.0 with ``momentum``.

The controller's cost per update is roughly fixed (measurement passes over the gradient, the law
arithmetic on a handful of coefficients, and, once sigma > 0, one Gaussian draw per parameter), so
its share of a step shrinks with the model; ``--every`` also measures the cadence ``ae.every = k``
(one update per k steps), which is how a model whose step takes well under a millisecond gets the
overhead down.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from goals import finish, report  # noqa: E402

from aebench.ae.config import AEConfig  # noqa: E402
from aebench.ae.controller import AEControl  # noqa: E402
from tasks.regression import RegressionTask  # noqa: E402


def tiny_cnn() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(64, 128, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        nn.Flatten(), nn.Linear(128, 10),
    )  # fmt: skip


def workloads(device: torch.device):  # noqa: ANN201
    task = RegressionTask(seed=0)
    batches = task.train_batches()
    reg = [tuple(t.to(device) for t in next(batches)) for _ in range(32)]
    g = torch.Generator().manual_seed(0)
    cnn = [
        (torch.randn(128, 3, 32, 32, generator=g).to(device),
         torch.randint(0, 10, (128,), generator=g).to(device))
        for _ in range(8)
    ]  # fmt: skip
    return {
        "regression MLP": (task.build_model, reg, nn.functional.mse_loss),
        "tiny CNN": (tiny_cnn, cnn, nn.functional.cross_entropy),
    }


def state_bytes(model: nn.Module, opt: torch.optim.Optimizer, ctl: AEControl | None) -> int:
    seen: set[int] = set()

    def add(t: object) -> int:
        if isinstance(t, torch.Tensor) and id(t) not in seen:
            seen.add(id(t))
            return t.numel() * t.element_size()
        return 0

    total = sum(add(p) + add(p.grad) for p in model.parameters())
    total += sum(add(v) for s in opt.state.values() for v in s.values())
    if ctl is not None:
        total += sum(add(t) for gs in ctl.groups for t in gs.prev.values())
    return total


def ae_config(every: int, rho_buffer: str, sigma: str) -> AEConfig:
    """``sigma``: ``default`` (as shipped), ``floor`` (held at 0) or ``noise`` (held at 1e-4)."""
    cfg = AEConfig(enabled=True, rho_buffer=rho_buffer, every=every)
    if sigma != "default":
        cfg.coefs.sigma.adapt = False
        cfg.noise.sigma_init = 0.0 if sigma == "floor" else 1e-4
    return cfg


def run(make, batches, loss_fn, arm: tuple[int, str], steps: int, device, rho_buffer: str):  # noqa: ANN001, ANN201
    """Mean step time and memory; ``arm = (every, sigma)``, ``every=0`` is AE off."""
    every, sigma = arm
    torch.manual_seed(0)
    model = make().to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    ctl = None
    if every:
        ctl = AEControl(opt, ae_config(every, rho_buffer, sigma), seed=0)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()

    def step(i: int) -> None:
        x, y = batches[i % len(batches)]
        loss = loss_fn(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if ctl is not None:
            ctl.before_step(loss.detach())
        opt.step()
        if ctl is not None:
            ctl.after_step()
        loss.item()

    for i in range(20):
        step(i)
    t0 = time.perf_counter()
    for i in range(steps):
        step(i)
    if device.type == "cuda":
        torch.cuda.synchronize()
        memory = torch.cuda.max_memory_allocated()
    else:
        memory = state_bytes(model, opt, ctl)
    return (time.perf_counter() - t0) / steps, memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument(
        "--rho-buffer", default="copy", choices=["copy", "momentum"], help="ae.rho_buffer"
    )
    parser.add_argument("--every", type=int, nargs="+", default=[1, 16], help="ae.every values")
    parser.add_argument("--only", choices=["regression", "cnn"], help="one workload only")
    args = parser.parse_args()
    device = torch.device(args.device)
    what = "peak allocated" if device.type == "cuda" else "persistent state"
    print(
        f"device {device}, {args.steps} steps, median of {args.repeats} interleaved repeats, "
        f"ae.rho_buffer={args.rho_buffer}"
    )
    arms = [(0, "off")]
    for k in args.every:
        arms += [(k, "default"), (k, "floor")] + ([(k, "noise")] if k == 1 else [])
    goals = {"regression MLP": {1: 1.10, 16: 1.02}, "tiny CNN": {1: 1.02, 16: 1.005}}
    for name, (make, batches, loss_fn) in workloads(device).items():
        if args.only and args.only not in name.lower():
            continue
        times: dict[tuple[int, str], list[float]] = {k: [] for k in arms}
        draws: list[float] = []
        memory: dict[tuple[int, str], int] = {}
        n_params = sum(p.numel() for p in make().parameters())
        for _ in range(args.repeats):
            for k in arms:
                t, m = run(make, batches, loss_fn, k, args.steps, device, args.rho_buffer)
                times[k].append(t)
                memory[k] = m
            draws.append(draw_seconds(n_params, device))
        off = statistics.median(times[(0, "off")])
        draw = statistics.median(draws)
        print(
            f"{name:15s} step {off * 1e3:8.3f} ms with AE off; one Gaussian draw of its "
            f"{n_params} parameters {draw * 1e6:.0f} us ({draw / off:.1%} of the step)"
        )
        key = "regression" if "regression" in name else "cnn"
        for k in arms[1:]:
            on = statistics.median(times[k])
            print(
                f"{'':15s} ae.every={k[0]:<3d} sigma {k[1]:8s} {on * 1e3:8.3f} ms: "
                f"time x{on / off:.3f}; {what} x{memory[k] / memory[(0, 'off')]:.3f}"
            )
            goal = goals[name].get(k[0])
            if goal is None or k[1] == "default":
                continue
            if k[1] == "noise":
                goal += draw / off
            report(f"ae.{key}.every{k[0]}.{k[1]}", on / off, goal)
        mem_goal = 1.0 if args.rho_buffer == "momentum" else 1.25
        report(f"ae.{key}.state", memory[(args.every[0], "floor")] / memory[(0, "off")], mem_goal)
    finish()


def draw_seconds(n: int, device: torch.device, reps: int = 50) -> float:
    """One Gaussian draw of n numbers (the noise floor the goal allows for)."""
    gen = torch.Generator(device=device).manual_seed(0)
    torch.randn(n, generator=gen, device=device)
    t0 = time.perf_counter()
    for _ in range(reps):
        torch.randn(n, generator=gen, device=device)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / reps


if __name__ == "__main__":
    main()
