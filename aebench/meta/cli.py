"""``aebench-meta``: learn the AE gains on the tuning problems and write ``ae=meta``.

    aebench-meta --K 20 --horizon 200 --outer-steps 150 --seed 0

trains (:mod:`aebench.meta.train`), logs the outer loss per outer step (stdout and ``--log``,
one JSON object a line), evaluates default and learned gains on held-out seeds (full horizon, no
truncation), and writes

* ``conf/ae/meta.yaml``: ``ae=on`` plus the learned gains under their config keys (the
  command that produced them in its header), so ``ae=meta`` is ``ae=on`` with the gains loaded;
* ``conf/ae/meta_gains.json``: the gains, the settings, the command, the held-out evaluation,
  wall time and peak memory, and the outer-loss history.

``--dry-run`` writes nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import shlex
import sys
import time
from pathlib import Path

from aebench.meta.gains import nest
from aebench.meta.train import HELDOUT_SEED_BASE, MetaSettings, evaluate, meta_train


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _yaml_lines(node: dict, indent: int = 0) -> list[str]:
    out = []
    for k, v in node.items():
        if isinstance(v, dict):
            out.append(" " * indent + f"{k}:")
            out += _yaml_lines(v, indent + 2)
        else:
            out.append(" " * indent + f"{k}: {v!r}")
    return out


def render_yaml(gains: dict[str, float], command: str, summary: str) -> str:
    head = [
        "# ae=meta: ae=on with the AE gains learned by meta-gradient on the tuning problems",
        "# (regression, Rosenbrock; AE-9, docs/meta.md). GENERATED: do not edit by hand, rerun",
        f"#   {command}",
        f"# {summary}",
        "defaults:",
        '  - "on"',
        "  - _self_",
        "",
    ]
    return "\n".join(head + _yaml_lines(nest(gains))) + "\n"


def main(argv: list[str] | None = None) -> int:
    from aebench.paths import config_dir

    ap = argparse.ArgumentParser(prog="aebench-meta", description=__doc__.split("\n\n")[0])
    d = MetaSettings()
    ap.add_argument("--K", type=int, default=d.K, help="truncation window (inner steps)")
    ap.add_argument("--horizon", type=int, default=d.horizon, help="steps per trajectory")
    ap.add_argument("--outer-steps", type=int, default=d.outer_steps)
    ap.add_argument("--meta-lr", type=float, default=d.meta_lr)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--span", type=float, default=d.span, help="gain box: x/÷ span of default")
    ap.add_argument("--problems", default=",".join(d.problems))
    ap.add_argument("--optimizers", default=",".join(d.optimizers))
    ap.add_argument("--eval-seeds", type=int, default=4, help="held-out seeds to evaluate on")
    ap.add_argument("--out", type=Path, default=None, help="default: conf/ae/meta.yaml")
    ap.add_argument("--json", type=Path, default=None, help="default: conf/ae/meta_gains.json")
    ap.add_argument("--log", type=Path, default=None, help="outer-loss log (JSON lines)")
    ap.add_argument("--dry-run", action="store_true", help="train and evaluate, write nothing")
    a = ap.parse_args(argv)
    s = MetaSettings(
        K=a.K,
        horizon=a.horizon,
        outer_steps=a.outer_steps,
        meta_lr=a.meta_lr,
        seed=a.seed,
        span=a.span,
        problems=a.problems.split(","),
        optimizers=a.optimizers.split(","),
    )
    try:
        s.check()
    except ValueError as e:
        print(f"aebench-meta: {e}", file=sys.stderr)
        return 2
    command = "aebench-meta " + " ".join(
        shlex.quote(x) for x in (sys.argv[1:] if argv is None else argv)
    )
    logf = a.log.open("w") if a.log else None

    def log(row: dict) -> None:
        print(
            f"outer {row['outer_step']:4d}  loss {row['outer_loss']:+.5f}"
            + ("  (skipped: non-finite)" if row["skipped"] else ""),
            flush=True,
        )
        if logf:
            logf.write(json.dumps(row) + "\n")

    rss0 = _peak_rss_mib()
    t0 = time.perf_counter()
    gs, phi, history = meta_train(s, log=log)
    wall = time.perf_counter() - t0
    rss1 = _peak_rss_mib()
    if logf:
        logf.close()
    learned = gs.as_floats(phi)
    seeds = [HELDOUT_SEED_BASE + i for i in range(a.eval_seeds)]
    before = evaluate(None, s.problems, s.optimizers, s.horizon, seeds)
    after = evaluate(gs.values(phi), s.problems, s.optimizers, s.horizon, seeds)
    print("held-out final validation loss (geometric mean over seeds), default -> learned:")
    for k in before:
        print(f"  {k:22s} {before[k]:.5g} -> {after[k]:.5g}")
    print(f"meta-training wall {wall:.1f} s, peak RSS {rss1:.0f} MiB (before: {rss0:.0f} MiB)")
    if a.dry_run:
        return 0
    out = a.out or config_dir() / "ae" / "meta.yaml"
    js = a.json or config_dir() / "ae" / "meta_gains.json"
    summary = "held-out final val loss default -> learned: " + ", ".join(
        f"{k} {before[k]:.3g} -> {after[k]:.3g}" for k in before
    )
    out.write_text(render_yaml(learned, command, summary))
    js.write_text(
        json.dumps(
            {
                "command": command,
                "settings": s.__dict__,
                "gains": learned,
                "defaults": {k: float(v) for k, v in gs.values(gs.phi0).items()},
                "heldout_seeds": seeds,
                "heldout_default": before,
                "heldout_learned": after,
                "wall_s": round(wall, 2),
                "peak_rss_mib": round(rss1, 1),
                "rss_before_mib": round(rss0, 1),
                "history": history,
            },
            indent=1,
        )
        + "\n"
    )
    print(f"wrote {out} and {js}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
