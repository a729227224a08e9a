"""AE on ES against vanilla ES on the tuning problems (issue 21 item 3; docs/es.md, "AE on ES").

    python benchmarks/es_ae_sigma.py [--tasks regression rosenbrock] [--seeds 0 1 2 3 4]
        [--steps 300] [--arms sigma full] [--extra KEY=VALUE ...]

EGGROLL at scale=cpu, one torch thread, in process, for each task, seed and arm of
:mod:`tests.es.arms`: ``vanilla`` (ae=off) and its null control ``replicate`` (vanilla on another
noise stream) always, and the AE arms asked for: ``sigma`` (AE adapts sigma alone) and ``full``
(the default ae=on). ``--extra`` adds overrides to the AE arms (diagnostics). Printed per task
and arm: the time-to-target ratio against vanilla ES per seed at two targets, the best value
vanilla reached by 40% and by 80% of the horizon (``>``: not reached within the horizon, a lower
bound), their geometric mean over seeds and, for the AE arms, that mean over the replicate's
(``over null``: 1 = as far from vanilla as vanilla's own replicate), the ratio of the last five
evaluations, and sigma's range in units of the configured value and as a position in its box
in log units (0 = the lower wall, 1 = the upper wall; the box is ``ae.coefs.es_sigma``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.es.arms import (  # noqa: E402
    ARMS,
    BOX,
    TASKS,
    box_position,
    compare,
    excess,
    geometric_mean,
    run_arm,
)

FRACS = (0.4, 0.8)
#: the arms every comparison needs: the reference and its null control
NULL_ARMS = ("vanilla", "replicate")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    ap.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    ap.add_argument("--steps", type=int, default=300)
    ae_arms = [a for a in ARMS if a not in NULL_ARMS]
    ap.add_argument("--arms", nargs="+", default=ae_arms, choices=ae_arms)
    ap.add_argument("--extra", nargs="*", default=[], help="overrides for the AE arms")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(f"load average at start: {os.getloadavg()}; box {BOX[0]:g} .. {BOX[1]:g} x")
    print(f"EGGROLL, scale=cpu, {args.steps} generations, seeds {args.seeds}, extra {args.extra}")
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            runs = {}
            for seed in args.seeds:
                for arm in [*NULL_ARMS, *args.arms]:
                    extra = tuple(args.extra) if arm not in NULL_ARMS else ()
                    out = Path(tmp) / f"{task}-{arm}-{seed}"
                    runs[arm, seed] = run_arm(task, arm, seed, args.steps, out, extra)
            print(f"\n{task}: vanilla last-5 per seed ", end="")
            print(" ".join(f"{runs['vanilla', s].last_mean():.4g}" for s in args.seeds))
            null: dict[float, list[float]] = {}
            for arm in ["replicate", *args.arms]:
                print(f"  {arm}:")
                by_frac = {f: [] for f in FRACS}
                finals = []
                for seed in args.seeds:
                    run, van = runs[arm, seed], runs["vanilla", seed]
                    cs = {f: compare(van, run, f) for f in FRACS}
                    for f, c in cs.items():
                        by_frac[f].append(c.ratio)
                    finals.append(cs[FRACS[0]].final_ratio)
                    rel = [v for _, v in run.sigma] or [1.0]
                    lo, hi = box_position(rel)
                    lrs = [v for _, v in run.lr] or [1.0]
                    print(
                        f"    seed {seed} {run.status:>9}: time-to-target "
                        + " ".join(f"@{f:.0%} {cs[f].text():>6}" for f in FRACS)
                        + f"  last-5 {run.last_mean():.4g} ({cs[FRACS[0]].final_ratio:.2f}x)"
                        f"  sigma {min(rel):.3g} .. {max(rel):.3g} x (box {lo:.2f} .. {hi:.2f})"
                        f"  lr {min(lrs):.3g} .. {max(lrs):.3g} x"
                    )
                over_null = ""
                if arm == "replicate":
                    null = by_frac
                else:
                    over_null = "  over null " + " ".join(
                        f"@{f:.0%} {excess(by_frac[f], null[f]):.2f}" for f in FRACS
                    )
                print(
                    "    geometric mean: time-to-target "
                    + " ".join(f"@{f:.0%} {geometric_mean(by_frac[f]):.2f}" for f in FRACS)
                    + f"  (max {max(by_frac[FRACS[1]]):.2f}),"
                    f"  last-5 {geometric_mean(finals):.2f}x" + over_null
                )
    print(f"\nwall {time.perf_counter() - t0:.0f} s; load average at end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
