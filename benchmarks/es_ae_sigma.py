"""AE's noise law on ES with the ES-native sigma signal (docs/es.md), as a prototype of the
controller change proposed in issue 21, against AE's current inputs and against AE off.

    python benchmarks/es_ae_sigma.py [--task regression] [--steps 300] [--kstar 0.5] [--seed 0]

Three in-process runs of ``optimizer=eggroll`` on one seed: ``ae=off``; ``ae=on`` as the
controller is today (AE-4 reads the loss variance V and the gradient-noise S); and ``ae=on`` with
the reading proposed for ES: AE-4's variance input ``V/V* := LP(K^2) / K*^2`` (K the curvature
ratio ``es_curvature`` of :mod:`aebench.es_module`, LP with ``ae.signals.tc_var``) and its S term
off. The proposal is emulated by wrapping :func:`aebench.ae.laws.noise_drive` (only the noise law
sees the new inputs; the drive of alpha, the resonance switch and the budget are untouched), so
this script measures the proposal, it does not ship it. Printed per run: final and best val
metric, time-to-target step, sigma's range and whether it touched the box walls
(``ae.coefs.es_sigma``: [0.1, 10] x the configured sigma). ``--kstar`` was picked a priori from
the sigma table in docs/es.md (the estimate's cosine falls once K passes ~0.6), not tuned.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aebench.es_module as es_module  # noqa: E402
from aebench.ae import laws  # noqa: E402
from tests.helpers import run_in_process  # noqa: E402


def run(overrides: list[str], proposed: bool, kstar: float, tc: float) -> dict:
    orig_drive, orig_ratio = laws.noise_drive, es_module.curvature_ratio
    state = {"k2": None}

    def ratio(fitness, center):  # noqa: ANN001, ANN202
        k = orig_ratio(fitness, center)
        if math.isfinite(k):
            prev = state["k2"]
            state["k2"] = k * k if prev is None else prev + (k * k - prev) / tc
        return k

    def drive(T, V, S, rho, k, eps_T, v_star, s_star, a_star):  # noqa: ANN001, ANN202, N803
        if state["k2"] is None:
            return orig_drive(T, V, S, rho, k, eps_T, v_star, s_star, a_star)
        v_es = state["k2"] / kstar**2 * v_star
        return orig_drive(T, v_es, 0.0, rho, k, eps_T, v_star, s_star, a_star)

    if proposed:
        es_module.curvature_ratio, laws.noise_drive = ratio, drive
    try:
        with tempfile.TemporaryDirectory() as tmp:
            _, disk = run_in_process(overrides, Path(tmp))
            with open(Path(tmp) / "curves.csv") as f:
                rows = list(csv.DictReader(f))
    finally:
        es_module.curvature_ratio, laws.noise_drive = orig_ratio, orig_drive
    sig = [float(r["sigma"]) for r in rows if r.get("sigma")]
    return {
        "final": disk["metric"]["final"],
        "best": disk["metric"]["best"],
        "target_step": disk.get("target", {}).get("step"),
        "sigma": sig,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--task", default="regression")
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--kstar", type=float, default=0.5)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    base = [
        "optimizer=eggroll",
        f"task={args.task}",
        "scale=cpu",
        f"steps={args.steps}",
        f"seed={args.seed}",
        "trainer.threads=1",
    ]
    if args.task == "rosenbrock":
        base.append("task.dim=10")
    arms = {
        "ae=off": (["ae=off"], False),
        "ae=on (today)": (["ae=on"], False),
        "ae=on (K signal)": (["ae=on"], True),
    }
    print(f"{args.task}, eggroll, {args.steps} generations, seed {args.seed}, K* {args.kstar}")
    print(
        f"{'arm':>17} {'final':>9} {'best':>9} {'tt-target':>9} {'sigma min':>9} "
        f"{'sigma max':>9} {'sigma end':>9} walls"
    )
    for name, (extra, proposed) in arms.items():
        out = run(base + extra, proposed, args.kstar, 20.0)
        s = out["sigma"]
        s0 = s[0]
        walls = any(v <= 0.1 * s0 * (1 + 1e-9) or v >= 10 * s0 * (1 - 1e-9) for v in s)
        print(
            f"{name:>17} {out['final']:>9.4g} {out['best']:>9.4g} {str(out['target_step']):>9} "
            f"{min(s):>9.3g} {max(s):>9.3g} {s[-1]:>9.3g} {'yes' if walls else 'no'}"
        )


if __name__ == "__main__":
    main()
