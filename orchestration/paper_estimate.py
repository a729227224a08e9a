"""Device-hours of every experiment at a scale, from measured step times (docs/paper_scale.md).

    python -m orchestration.paper_estimate [--scale paper] [--times docs/step_times/paper-cpu.json]
        [--out docs/paper_scale.md]

For each ``eNN_*`` experiment its jobs are expanded as ``aebench-evidence`` would run them; a job
costs ``steps x seconds_per_step(task)`` with the step time ``benchmarks/step_times.py`` measured
for the job's task (AdamW, AE off, the scale's model and batch). The estimate ignores
evaluation, AE's overhead (a few percent: docs/performance.md), batch-size overrides (e09) and
the ES arms' cost per generation, so it is a floor on a loaded machine's cost, not a quote.
Nothing here claims a result at that scale: it says what running one would cost. Torch-free.
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMES_DIR = ROOT / "docs" / "step_times"


def default_times(scale: str) -> Path:
    """The committed step times for a scale, measured on this project's 2-core CPU machine."""
    return TIMES_DIR / f"{scale}-cpu.json"


@dataclass
class Estimate:
    experiment: str
    jobs: int
    steps: int
    tasks: Counter
    hours: float | None
    missing: list[str]


def load_times(path: Path, scale: str | None = None) -> dict:
    """Read a step-times file; refuse one measured at another scale (other models, batches)."""
    data = json.loads(path.read_text())
    if "tasks" not in data:
        raise ValueError(f"{path}: not a step-times file (no 'tasks' key)")
    if scale is not None and data.get("scale") != scale:
        raise ValueError(
            f"--times {path}: measured at scale={data.get('scale')!r}, not scale={scale!r} "
            f"(run python benchmarks/step_times.py --scale {scale} --out <file>)"
        )
    return data


def estimates(scale: str, times: dict) -> list[Estimate]:
    """One estimate per experiment, in name order."""
    from orchestration.catalog import collect

    per_step = {t: v["seconds_per_step"] for t, v in times["tasks"].items()}
    out = []
    for entry in collect([]):
        tasks = Counter(entry.job_tasks[scale])
        steps = int(entry.steps[scale] or 0)
        missing = sorted(t for t in tasks if t not in per_step)
        hours = None
        if not missing:
            hours = sum(n * steps * per_step[t] for t, n in tasks.items()) / 3600
        out.append(Estimate(entry.name, entry.jobs[scale], steps, tasks, hours, missing))
    return out


def render(scale: str, times: dict, rows: list[Estimate], source: Path) -> str:
    total = sum(r.hours for r in rows if r.hours is not None)
    measured = ", ".join(
        f"{t} {v['seconds_per_step'] * 1e3:.1f} ms"
        + (" (synthetic stand-in, same shapes)" if v.get("synthetic_stand_in") else "")
        for t, v in sorted(times["tasks"].items())
    )
    lines = [
        f"# Cost of the protocol at scale={scale}",
        "",
        f"Estimated from step times measured on `{times['device']}` "
        f"({times.get('device_name') or 'unknown'}, {times.get('threads')} threads, torch "
        f"{times.get('torch')}, {times.get('measured')}), file `{source.relative_to(ROOT)}`, "
        "by `python -m orchestration.paper_estimate`. No experiment has been run at this scale "
        "by this project; these are costs, not results.",
        "",
        "Each job costs steps x the measured seconds per step of its task (AdamW, AE off); "
        "evaluation, AE's few percent, batch-size overrides and ES generations are not counted.",
        "",
        f"| experiment | jobs | steps per job | tasks | {times['device']}-hours |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        hours = f"{r.hours:.1f}" if r.hours is not None else "no step time: " + ", ".join(r.missing)
        tasks = ", ".join(f"{t} x{n}" for t, n in sorted(r.tasks.items()))
        lines.append(f"| {r.experiment} | {r.jobs} | {r.steps} | {tasks} | {hours} |")
    lines += [
        "",
        f"Total: {total:.0f} {times['device']}-hours for the experiments with step times.",
        "",
        f"Step times: {measured}.",
        "",
        "## Running it",
        "",
        "One GPU (every job in turn; add `JOBS=2` only if the GPU has memory for two):",
        "",
        "    make evidence SCALE=paper EXPERIMENTS=all ARGS='trainer.accelerator=gpu'",
        "",
        "A Slurm array, one job per run (the submitit launcher, `pip install 'aebench[cluster]'`):",
        "",
        "    aebench-evidence --experiments all --scale paper --out evidence/paper \\",
        "        --launcher slurm -- hydra.launcher.partition=gpu \\",
        "        hydra.launcher.gpus_per_node=1 hydra.launcher.timeout_min=600 \\",
        "        trainer.accelerator=gpu",
        "",
        "Both resume: run the same command again and only the missing jobs run. Paper scale "
        "needs the real data sets (CIFAR-10, CIFAR-10-C, WikiText-2: docs/data.md says where "
        "they go); a job whose data is missing fails within seconds naming the path. To measure "
        "the GPU's own step times first (about a minute), run "
        "`python benchmarks/step_times.py --device cuda` and then this page's command with "
        "`--times docs/step_times/paper-cuda.json`.",
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", default="paper")
    parser.add_argument(
        "--times", type=Path, default=None, help="default: docs/step_times/<scale>-cpu.json"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "paper_scale.md")
    args = parser.parse_args(argv)
    if args.times is None:
        args.times = default_times(args.scale)
    if not args.times.is_file():
        print(
            f"paper_estimate: error: --times {args.times}: no such file "
            f"(run python benchmarks/step_times.py --scale {args.scale} first)"
        )
        return 2
    try:
        times = load_times(args.times, args.scale)
    except ValueError as err:
        print(f"paper_estimate: error: {err}")
        return 2
    rows = estimates(args.scale, times)
    args.out.write_text(render(args.scale, times, rows, args.times.resolve()))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
