"""How long ``aebench-analyze`` takes on a large sweep: 10,000 synthetic run records.

    python benchmarks/analyze_scale.py [--runs 10000] [--rows 101] [--dir /tmp/analyze_scale]

Writes ``--runs`` run folders in the real record schema (the writer's own ``RunRecord`` and
``CurveBuffer``): 5 tasks x 20 arms (2 optimizers x 2 schedules x {ae=off, AE, AE without
noise, gauge, resonance}) x seeds, each ``curves.csv`` with ``--rows`` logged steps (101: a
1,000-step run logged every 10 steps) and the columns the suite logs (train loss, evaluation
metric every 10th row, coefficients, AE signals for AE runs, a drift phase on one task). Then
runs ``aebench-analyze`` on them in this process, every prediction and every figure included,
and prints the wall time of the whole analysis and of its stages, and the CPU time of the
process (the figure to read when other jobs share the machine). Generation is not timed.
Target (issue 14): 10,000 records with figures in at most 30 s.

``--baseline COMMIT`` also times the analysis of that commit on the same records in the same
run (a ``git worktree`` of COMMIT at ``<dir>/baseline``, its own copy of this benchmark run
with ``--keep``) and prints the ratio ``baseline wall / this wall``. The old path is the old
code itself, not a copy: e.g. ``--baseline 018d5b9~1`` is the analysis before issue 14.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from aebench.curves import CurveBuffer  # noqa: E402
from aebench.record import Incidents, Metric, RunRecord, Target, arm_id  # noqa: E402

TASKS = ("regression", "rosenbrock", "quadratic", "plateau", "drifting")
OPTIMIZERS = ("sgdm", "adamw")
SCHEDULES = ("constant", "cosine")
ARMS = (
    (False, "none"),
    (True, "none"),
    (True, "no_noise"),
    (True, "no_gauge"),
    (True, "no_resonance"),
)


def config(task: str, optimizer: str, schedule: str, ae: bool, ablation: str, seed: int) -> dict:
    law = ablation[3:] if ablation != "none" else None
    laws = {k: k != law for k in ("noise", "resonance", "budget", "gauge", "coupling")}
    return {
        "task": {"name": task, "batch_size": 256, "loss_scale": 1.0, "target": 0.05},
        "optimizer": {"_target_": optimizer, "lr": 0.01, "betas": [0.9, 0.999]},
        "schedule": {"_target_": schedule},
        "scale": {"name": "cpu", "evals": 10, "log_every": 10},
        "logger": {"kind": "csv"},
        "ae": {"enabled": ae, "laws": laws, "eta_a": 0.01, "coefs": {"alpha": {"w_p": 0.5}}},
        "swarm": {"enabled": False},
        "seed": seed,
        "trainer": {"threads": 1},
    }


def write_one(
    root: Path,
    i: int,
    task: str,
    opt: str,
    sched: str,
    ae: bool,
    ablation: str,
    seed: int,
    rows: int,
    rng: np.random.Generator,
) -> None:
    cfg = config(task, opt, sched, ae, ablation, seed)
    choices = {
        "task": task,
        "optimizer": opt,
        "schedule": sched,
        "ablation": ablation,
        "swarm": "off",
        "scale": "cpu",
    }
    budget = 10 * (rows - 1)
    speed = 1.0 + 0.3 * ae - 0.1 * (ablation != "none") + 0.05 * rng.standard_normal()
    steps = np.arange(rows) * 10
    loss = np.exp(-speed * 4 * steps / budget) * np.exp(0.05 * rng.standard_normal(rows))
    hit = np.flatnonzero(loss < 0.05)
    folder = root / f"{i:05d}"
    folder.mkdir()
    RunRecord(
        status="completed",
        task=task,
        optimizer=opt,
        schedule=sched,
        ae=ae,
        ablation=ablation,
        swarm="off",
        scale="cpu",
        seed=seed,
        arm=arm_id(choices, cfg, ae),
        overrides=[
            f"task={task}",
            f"optimizer={opt}",
            f"schedule={sched}",
            f"ae={'on' if ae else 'off'}",
            f"ablation={ablation}",
            f"seed={seed}",
        ],
        config=cfg,
        data_source="synthetic",
        metric=Metric("mse", "min", float(loss[-1]), float(loss.min())),
        target=Target(0.05, bool(hit.size), int(steps[hit[0]]) if hit.size else None),
        budget=budget,
        steps=budget,
        wall_s=1.0,
        auc=float(loss.mean()),
        incidents=Incidents(),
        versions={},
        git={"commit": None, "dirty": None},
        # the AE controller's summary (aebench/ae/controller.py), read by the knock-out report
        extra={
            "ae": {"guard_mean": [0.1 + 0.4 * (ablation == "no_noise")], "budget_mult_mean": [0.9]}
        }
        if ae
        else {},  # fmt: skip
    ).write(folder)
    buf = CurveBuffer()
    for k in range(rows):
        values = {
            "train_loss": loss[k],
            "lr": 0.01 * (1 + 0.1 * ae * k / rows),
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1e-8,
            "weight_decay": 0.01,
        }
        if ae:
            values.update(
                T=-0.01,
                V=0.02,
                R=0.0,
                rho=0.1,
                S=0.5,
                gamma=0.1 * loss[k] ** 0.5,
                sigma=1e-6,
                budget_lambda=0.0,
                energy=loss[k],
            )
        if task == "drifting":
            values["drift_phase"] = float(k // 25)
        if k % 10 == 0:
            values["val_mse"] = loss[k] * 1.05
        buf.log(int(steps[k]), **values)
    buf.write(str(folder / "curves.csv"))


def generate(root: Path, runs: int, rows: int) -> None:
    rng = np.random.default_rng(0)
    combos = [
        (t, o, s, ae, ab) for t in TASKS for o in OPTIMIZERS for s in SCHEDULES for ae, ab in ARMS
    ]
    seeds = -(-runs // len(combos))
    i = 0
    for seed in range(seeds):
        for combo in combos:
            if i == runs:
                return
            write_one(root, i, *combo, seed=seed, rows=rows, rng=rng)
            i += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--rows", type=int, default=101)
    parser.add_argument("--dir", default="/tmp/analyze_scale")
    parser.add_argument("--keep", action="store_true", help="reuse records already in --dir")
    parser.add_argument("--baseline", help="a commit whose analysis to time on the same records")
    args = parser.parse_args()
    root = Path(args.dir)
    records = root / "records"
    if not (args.keep and records.is_dir()):
        shutil.rmtree(root, ignore_errors=True)
        records.mkdir(parents=True)
        t0 = time.perf_counter()
        generate(records, args.runs, args.rows)
        print(f"generated {args.runs} records in {time.perf_counter() - t0:.1f} s (not timed)")

    from analysis import cli
    from analysis.collect import load_runs

    stages: dict[str, tuple[float, float]] = {}
    cpu0 = time.process_time()
    t0 = time.perf_counter()
    t, c = time.perf_counter(), time.process_time()
    runset = load_runs([records])
    stages["read records and curves, per-run metrics"] = (
        time.perf_counter() - t,
        time.process_time() - c,
    )
    t, c = time.perf_counter(), time.process_time()
    namespace = cli.parse_args([str(records), "--out", str(root / "report"), "--quiet"])
    from analysis.predictions import default_predictions_dir, load_predictions

    res = cli.analyse(namespace, load_predictions([default_predictions_dir()]), runset)
    stages["tables, comparisons, verdicts"] = (time.perf_counter() - t, time.process_time() - c)
    t, c = time.perf_counter(), time.process_time()
    cli.write_outputs(res, root / "report", figures=True)
    stages["outputs and figures"] = (time.perf_counter() - t, time.process_time() - c)
    total = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    n = len(runset.table)
    print(
        f"aebench-analyze on {n} records ({args.rows} curve rows each): {total:.1f} s wall, "
        f"{cpu:.1f} s CPU of this process (load average {os.getloadavg()[0]:.1f} on "
        f"{os.cpu_count()} cores: wall exceeds CPU when other jobs share the machine)"
    )
    for name, (wall, cpu_s) in stages.items():
        print(f"  {name}: {wall:.1f} s wall, {cpu_s:.1f} s CPU")
    print(
        f"  figures: {len(res.figures)}, comparisons: {len(res.comparisons)}, "
        f"verdicts: {len(res.verdicts)}"
    )
    print(f"target <= 30 s: {'met' if total <= 30 else 'MISSED'}")
    if args.baseline:
        old, old_cpu = baseline_wall(args.baseline, root)
        print(
            f"baseline {args.baseline}: {old:.1f} s wall, {old_cpu:.1f} s CPU; ratio baseline / "
            f"this = {old / total:.2f} (wall), {old_cpu / cpu:.2f} (CPU: read this one on a "
            "shared machine)"
        )


def baseline_wall(commit: str, root: Path) -> tuple[float, float]:
    """Wall and CPU seconds of ``commit``'s analysis on the records in ``root`` (its own benchmark
    script, ``--keep``), from a temporary git worktree removed afterwards."""
    repo = Path(__file__).resolve().parent.parent
    tree = root / "baseline"
    if tree.exists():
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)])
    subprocess.run(
        ["git", "-C", str(repo), "worktree", "add", "--detach", str(tree), commit],
        check=True,
        capture_output=True,
    )
    try:
        done = subprocess.run(
            [sys.executable, "benchmarks/analyze_scale.py", "--keep", "--dir", str(root)],
            cwd=tree,
            capture_output=True,
            text=True,
            check=True,
        )
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(tree)])
    print("  baseline: " + done.stdout.strip().splitlines()[-1])
    match = re.search(r"records \(.*?\): ([0-9.]+) s wall, ([0-9.]+) s CPU", done.stdout)
    if not match:
        raise SystemExit(f"baseline output not understood:\n{done.stdout[-2000:]}")
    return float(match.group(1)), float(match.group(2))


if __name__ == "__main__":
    main()
