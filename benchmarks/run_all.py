"""Run every benchmark and print one table of ratios against their goals (``make bench``).

    python benchmarks/run_all.py [--quick]

Each benchmark prints ``RATIO <name> <measured> <goal> <verdict>`` lines
(:mod:`benchmarks.goals`); this collects them into one table. Exit status 1 when any ratio
missed its goal by more than 20% (or a benchmark failed to run): a performance regression is
seen. Not part of CI (timings on a shared machine are not a test). ``--quick`` runs shorter
measurements (noisier).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: benchmark script -> (arguments, quick arguments); each states its goals in its docstring
BENCHMARKS: dict[str, tuple[list[str], list[str]]] = {
    "ae_overhead.py": ([], ["--steps", "150", "--repeats", "3"]),
    "harness_overhead.py": ([], ["--steps", "600", "--repeats", "3"]),
    # the issue's measurement is a 20-job cpu sweep; at smoke scale (0.07 s jobs) the workers'
    # start-up is the whole sweep and two workers cannot beat one, so smoke is for --quick only
    "sweep_throughput.py": (["--scale", "cpu"], []),
    "es_throughput.py": ([], []),
    "swarm_memory.py": ([], []),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="+", help="benchmark scripts to run")
    args = parser.parse_args()
    env = {
        **os.environ,
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1"),
        "WANDB_MODE": "offline",
    }
    rows: list[tuple[str, str, str, str, str]] = []
    failed: list[str] = []
    print(f"load average at start: {os.getloadavg()}")
    for script, (full, quick) in BENCHMARKS.items():
        if args.only and script not in args.only:
            continue
        cmd = [sys.executable, str(HERE / script), *(quick if args.quick else full)]
        print(f"$ {' '.join(cmd[1:])}", flush=True)
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=HERE.parent)
        ratios = [line.split() for line in proc.stdout.splitlines() if line.startswith("RATIO ")]
        for _, name, measured, goal, verdict in ratios:
            rows.append((script, name, measured, goal, verdict))
        if proc.returncode != 0 and not ratios:
            failed.append(script)
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            print(f"  {script} exited {proc.returncode} with no ratio: {' | '.join(tail)}")
        elif not ratios:
            print(f"  {script}: no RATIO lines (measures without a goal)")
        print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)
    print(f"\n{'benchmark':22s} {'ratio':40s} {'measured':>9s} {'goal':>8s}  verdict")
    for script, name, measured, goal, verdict in rows:
        print(f"{script:22s} {name:40s} {float(measured):9.3f} {float(goal):8.3f}  {verdict}")
    print(f"load average at end: {os.getloadavg()}")
    bad = [r for r in rows if r[4] == "FAIL"]
    if bad or failed:
        print(
            f"{len(bad)} ratio(s) missed by more than 20%; failed to run: {failed or 'none'}",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
