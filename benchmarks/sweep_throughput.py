"""Sweep throughput: jobs/hour of ``aebench-evidence`` at 1 and 2 workers, and the per-job
overhead inside a sweep.

    python benchmarks/sweep_throughput.py [--experiment e07_induced_oscillation] [--scale smoke]

Runs one experiment's sweep (20 jobs at smoke scale for e07) twice from scratch into temporary
folders, ``--jobs 1`` (the joblib launcher with one worker) and ``--jobs 2`` (two worker
processes), ``--no-analyze``, and reads every job's ``result.json``:

* ``jobs/hour`` = jobs / sweep wall time, per worker count, and their ratio (goal: two workers
  keep both cores busy, >= 1.7x one worker on a 2-core machine; the goal is ``cores``-aware:
  ``min(2, cores) * 0.85``);
* cores busy = CPU seconds of the sweep's processes / wall time: what the sweep could use of
  the machine (on a shared machine the other processes' load caps it: read it with the load);
* per-job overhead after the first job, one worker: ``(wall - first) / (n - 1) - mean(job)``,
  where ``first`` is the first job's completion time after the sweep started and ``job`` a
  job's own ``wall_s`` (``run_job`` from start to record written): what a job costs in the sweep
  beyond its own training (Hydra's job setup, config, logging, the launcher). Goal <= 0.3 s.

The load average (``os.getloadavg``) is printed before and after: other processes on a shared
machine slow both arms.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from goals import finish, report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


def sweep(experiment: str, scale: str, jobs: int) -> tuple[float, list[dict], float]:
    """One sweep from scratch: its wall time, its records and the CPU seconds of the sweep's
    processes (the launcher and its workers, all reaped children)."""
    exe = Path(sys.executable).parent / "aebench-evidence"
    with tempfile.TemporaryDirectory() as out:
        cmd = [
            str(exe),
            "--experiments",
            experiment,
            "--scale",
            scale,
            "--out",
            out,
            "--jobs",
            str(jobs),
            "--no-analyze",
            "--poll",
            "1",
        ]
        env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.time()
        subprocess.run(
            cmd, check=True, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wall = time.time() - t0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        records = []
        for path in Path(out).rglob("result.json"):
            rec = json.loads(path.read_text())
            rec["_mtime"] = path.stat().st_mtime - t0
            records.append(rec)
    return wall, records, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--experiment", default="e07_induced_oscillation")
    parser.add_argument("--scale", default="smoke")
    args = parser.parse_args()
    cores = os.cpu_count() or 1
    print(f"load average before: {os.getloadavg()}, {cores} cores")
    results = {}
    for jobs in (1, 2):
        wall, records, cpu = sweep(args.experiment, args.scale, jobs)
        n = len(records)
        results[jobs] = (wall, records)
        job_wall = sum(r["wall_s"] for r in records) / max(n, 1)
        print(
            f"--jobs {jobs}: {n} jobs in {wall:.1f} s = {3600 * n / wall:.0f} jobs/hour "
            f"(mean job wall_s {job_wall:.2f} s); CPU {cpu:.1f} s = {cpu / wall:.2f} cores busy "
            f"on average; load average now {os.getloadavg()[0]:.2f}"
        )
    wall1, rec1 = results[1]
    wall2, rec2 = results[2]
    n = len(rec1)
    first = min(r["_mtime"] for r in rec1)
    overhead = (wall1 - first) / max(n - 1, 1) - sum(r["wall_s"] for r in rec1) / n
    print(
        f"per-job overhead after the first job (one worker): {overhead:.3f} s "
        f"(first job done {first:.1f} s after the start)"
    )
    print(f"load average after: {os.getloadavg()}")
    speedup = (len(rec2) / wall2) / (len(rec1) / wall1)
    goal = min(2, cores) * 0.85
    # lower is better for report(): the shortfall of the speed-up against the goal
    report("sweep.two_workers_shortfall", goal / speedup, 1.0)
    print(f"two workers: {speedup:.2f}x the jobs/hour of one (goal >= {goal:.2f}x)")
    report("sweep.per_job_overhead_s", overhead, 0.3)
    finish()


if __name__ == "__main__":
    main()
