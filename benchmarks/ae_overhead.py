"""Cost of the AE controller: step time and memory with AE on vs off, as ratios in one run.

    python benchmarks/ae_overhead.py [--steps 300] [--repeats 3] [--every 1 16] [--only cnn]

Two models, each trained by AdamW on fixed pre-made batches in a plain loop, with and without
:class:`aebench.ae.controller.AEControl` (the code the Lightning callback runs): the regression
task's MLP (batch 256) and a tiny CNN on random 32x32 images (batch 128). Step time is the median
over repeats of the mean over ``--steps`` steps after a warm-up. The arms train side by side:
in rounds, each arm takes one untimed step and 10 timed ones, the order rotating, so that a
change in machine load hits every arm alike (one arm after the other, 18 s each on the CNN, gave
ratios that moved by +-10% between runs on the shared machine). Besides the wall time it prints
the thread's CPU time (``time.thread_time``), which preemption by other processes does not
inflate; the goals are on the wall time. Memory: on CUDA, peak allocated bytes; on CPU (no
allocator statistics), the bytes of persistent state (parameters, gradients, optimizer state, AE
state; a storage behind several views counted once), which is what AE could add. Three AE arms
per cadence: ``default`` (``ae=on`` as shipped: sigma may leave its floor once the noise law
drives it), ``floor`` (sigma held at its floor, 0: no noise is drawn;
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
import os
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
    """Bytes of the persistent tensors' storages (a storage behind several views counted once):
    parameters, gradients, optimizer state and the controller's gradient copy."""
    seen: set[int] = set()

    def add(t: object) -> int:
        if isinstance(t, torch.Tensor):
            storage = t.untyped_storage()
            if storage.data_ptr() not in seen:
                seen.add(storage.data_ptr())
                return storage.nbytes()
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


class Arm:
    """One arm's model, AdamW and controller (``every=0``: AE off), stepped in place."""

    def __init__(self, make, batches, loss_fn, arm: tuple[int, str], device, rho_buffer: str):  # noqa: ANN001
        every, sigma = arm
        torch.manual_seed(0)
        self.model = make().to(device)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=1e-3)
        self.ctl = (
            AEControl(self.opt, ae_config(every, rho_buffer, sigma), seed=0) if every else None
        )
        self.batches, self.loss_fn, self.i = batches, loss_fn, 0

    def step(self) -> None:
        x, y = self.batches[self.i % len(self.batches)]
        self.i += 1
        loss = self.loss_fn(self.model(x), y)
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.ctl is not None:
            self.ctl.before_step(loss.detach())
        self.opt.step()
        if self.ctl is not None:
            self.ctl.after_step()
        loss.item()


def measure(make, batches, loss_fn, arms, steps: int, device, rho_buffer: str, block: int = 10):  # noqa: ANN001, ANN201
    """Per arm: mean wall and thread-CPU seconds per step, and memory. The arms train side by
    side: in rounds, each arm takes one untimed step (its caches back after the other arms'
    steps) and ``block`` timed ones, the order rotating, so load changes hit every arm alike."""
    built = {k: Arm(make, batches, loss_fn, k, device, rho_buffer) for k in arms}
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    for arm in built.values():
        for _ in range(20):
            arm.step()
    wall = dict.fromkeys(arms, 0.0)
    cpu = dict.fromkeys(arms, 0.0)
    rounds = max(1, steps // block)
    for r in range(rounds):
        for j in range(len(arms)):
            k = arms[(r + j) % len(arms)]
            arm = built[k]
            arm.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            t0, c0 = time.perf_counter(), time.thread_time()
            for _ in range(block):
                arm.step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            wall[k] += time.perf_counter() - t0
            cpu[k] += time.thread_time() - c0
    n = rounds * block
    memory = {
        k: torch.cuda.max_memory_allocated()
        if device.type == "cuda"
        else state_bytes(a.model, a.opt, a.ctl)
        for k, a in built.items()
    }
    return {k: wall[k] / n for k in arms}, {k: cpu[k] / n for k in arms}, memory


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
        f"device {device}, {args.steps} steps per arm, arms side by side in rounds of 10, median "
        f"of {args.repeats} repeats, ae.rho_buffer={args.rho_buffer}, load average "
        f"{os.getloadavg()[0]:.2f}"
    )
    arms = [(0, "off")]
    for k in args.every:
        arms += [(k, "default"), (k, "floor")] + ([(k, "noise")] if k == 1 else [])
    goals = {"regression MLP": {1: 1.10, 16: 1.02}, "tiny CNN": {1: 1.02, 16: 1.005}}
    for name, (make, batches, loss_fn) in workloads(device).items():
        if args.only and args.only not in name.lower():
            continue
        times: dict[tuple[int, str], list[float]] = {k: [] for k in arms}
        cpus: dict[tuple[int, str], list[float]] = {k: [] for k in arms}
        draws: list[float] = []
        memory: dict[tuple[int, str], int] = {}
        n_params = sum(p.numel() for p in make().parameters())
        for _ in range(args.repeats):
            wall, cpu, memory = measure(
                make, batches, loss_fn, arms, args.steps, device, args.rho_buffer
            )
            for k in arms:
                times[k].append(wall[k])
                cpus[k].append(cpu[k])
            draws.append(draw_seconds(n_params, device))
        off = statistics.median(times[(0, "off")])
        off_cpu = statistics.median(cpus[(0, "off")])
        draw = statistics.median(draws)
        print(
            f"{name:15s} step {off * 1e3:8.3f} ms with AE off (thread CPU {off_cpu * 1e3:.3f} "
            f"ms); one Gaussian draw of its {n_params} parameters {draw * 1e6:.0f} us "
            f"({draw / off:.1%} of the step)"
        )
        key = "regression" if "regression" in name else "cnn"
        for k in arms[1:]:
            on = statistics.median(times[k])
            on_cpu = statistics.median(cpus[k])
            print(
                f"{'':15s} ae.every={k[0]:<3d} sigma {k[1]:8s} {on * 1e3:8.3f} ms: "
                f"time x{on / off:.3f} (thread CPU x{on_cpu / off_cpu:.3f}); "
                f"{what} x{memory[k] / memory[(0, 'off')]:.3f}"
            )
            goal = goals[name].get(k[0])
            if goal is None or k[1] == "default":
                continue
            if k[1] == "noise":
                goal += draw / off
            report(f"ae.{key}.every{k[0]}.{k[1]}", on / off, goal)
        mem_goal = 1.0 if args.rho_buffer == "momentum" else 1.25
        report(f"ae.{key}.state", memory[(args.every[0], "floor")] / memory[(0, "off")], mem_goal)
    print(f"load average at the end {os.getloadavg()[0]:.2f}")
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
