"""Measured seconds per training step of every task at a scale, on this machine's device.

    python benchmarks/step_times.py [--scale paper] [--device cpu|cuda] [--steps 5]
        [--tasks regression,cifar_corruptions] [--out docs/step_times/paper-cpu.json]

Each task is composed as a suite job would be (``task=<name> scale=<scale>``, AdamW, AE off) and
its model trained for ``--warmup`` + ``--steps`` optimizer steps on its own batches; the median
time of the timed steps is written per task. Data: a task whose scale wants real data that is
not on this machine runs with ``task.data.source=synthetic`` instead (same model, same batch
shapes, so the same arithmetic per step; the JSON says which tasks did). Steps of CartPole are
episodes of the environment, which no accelerator speeds up.

``orchestration.paper_estimate`` turns these times into device-hours per experiment
(docs/paper_scale.md). The committed file was measured on the project's 2-core CPU machine; on
a GPU, run this with ``--device cuda`` and commit the ``paper-cuda.json`` it writes.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

#: tasks that want real data at some scale (a ``data.source`` key) fall back to synthetic
SYNTHETIC_FALLBACK = "task.data.source=synthetic"


def compose(task: str, scale: str, extra: list[str]):  # noqa: ANN201
    from orchestration.evidence import Composer

    composer = Composer()
    try:
        cfg = composer.compose([f"task={task}", f"scale={scale}", "optimizer=adamw", *extra])
    finally:
        composer.close()
    return cfg


def time_task(task_name: str, scale: str, device: str, steps: int, warmup: int) -> dict:
    import torch

    from aebench.runner import build_model, build_task
    from aebench.schema import optimizer_factory

    extra: list[str] = []
    fallback = False
    try:
        cfg = compose(task_name, scale, extra)
        task = build_task(cfg)
    except Exception:  # noqa: BLE001 - real data missing here: the same shapes, synthetic
        cfg = compose(task_name, scale, [SYNTHETIC_FALLBACK])
        task = build_task(cfg)
        fallback = True
    model = build_model(task, seed=0).to(device)
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = optimizer_factory(cfg.optimizer)(params)  # the suite's factory
    batches = task.train_batches()

    def one_step() -> float:
        batch = next(batches)
        if isinstance(batch, tuple | list):
            batch = type(batch)(b.to(device) if hasattr(b, "to") else b for b in batch)
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = task.loss(model, batch)
        loss.backward()
        optimizer.step()
        if device == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - t0

    for _ in range(warmup):
        one_step()
    times = [one_step() for _ in range(steps)]
    return {
        "seconds_per_step": statistics.median(times),
        "steps_timed": steps,
        "synthetic_stand_in": fallback,
        "batch_size": int(cfg.task.get("batch_size") or 0) or None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="paper")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tasks", default=None, help="comma-separated (default: every task)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(max(1, torch.get_num_threads()))
    from aebench.paths import config_dir

    names = (
        args.tasks.split(",")
        if args.tasks
        else sorted(p.stem for p in (config_dir() / "task").glob("*.yaml"))
    )
    out = args.out or ROOT / "docs" / "step_times" / f"{args.scale}-{args.device}.json"
    result = {
        "scale": args.scale,
        "device": args.device,
        "device_name": (
            torch.cuda.get_device_name(0) if args.device == "cuda" else platform.processor()
        ),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "measured": dt.date.today().isoformat(),
        "optimizer": "adamw, ae off",
        "tasks": {},
    }
    for name in names:
        t0 = time.perf_counter()
        try:
            result["tasks"][name] = time_task(
                name, args.scale, args.device, args.steps, args.warmup
            )
        except Exception as err:  # noqa: BLE001 - report the task and keep measuring the rest
            print(f"{name}: not measured: {type(err).__name__}: {err}", file=sys.stderr)
            continue
        s = result["tasks"][name]["seconds_per_step"]
        print(f"{name:20s} {s * 1e3:10.2f} ms/step  ({time.perf_counter() - t0:.0f} s)")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
