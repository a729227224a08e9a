"""AE on ES against vanilla ES on the tuning problems (issue 21 item 3): one EGGROLL run per arm
and the comparison, shared by ``tests/es/test_ae_acceptance.py`` and
``benchmarks/es_ae_sigma.py`` (docs/es.md, "AE on ES").

Arms (:data:`ARMS`): ``vanilla`` (``ae=off``), ``replicate`` (vanilla ES on another noise
stream, ``optimizer.noise_stream=1``: the same initialisation and batches, other perturbations;
the null control that says how far a comparison with vanilla moves when nothing but the ES noise
changes), ``sigma`` (AE adapts sigma alone: alpha held at its configured value) and ``full``
(the default ``ae=on``). Tasks (:data:`TASKS`): the regression
MLP and Rosenbrock d = 10, both tuning problems of the ES settings (conf/task/*.yaml).

Time-to-target. Neither task's own target (val MSE 0.015, f 1e-3) is reached by ES within a few
hundred generations, so the target is vanilla ES's own progress: for a seed and a fraction
``frac`` of the horizon H, the target is the best value vanilla reached by generation
``frac * H``; an arm's time-to-target is its first evaluation at or below it (the recorder's
definition of time-to-target, first evaluation <= target), and its ratio is that time over
vanilla's. An arm that never reaches it within H is censored: its ratio is at least
``H / t_vanilla`` (reported with ``>``). Every arm costs the same per generation (population + 1
forward passes), so a ratio in generations is a ratio in forward-equivalents.

The null control. The target is vanilla's own best so far, an order statistic of *its* noisy
curve, so another run with the same mean curve reaches it later: on a plateau often never. The
``replicate`` arm measures that bias; :func:`excess` is an arm's ratio over the replicate's.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass
from pathlib import Path

from aebench.ae.config import validate
from tests.helpers import read_curves, run_in_process

#: arm -> overrides
ARMS: dict[str, tuple[str, ...]] = {
    "vanilla": ("ae=off",),
    "replicate": ("ae=off", "optimizer.noise_stream=1"),
    "sigma": ("ae=on", "ae.coefs.alpha.adapt=false"),
    "full": ("ae=on",),
}
#: task -> overrides
TASKS: dict[str, tuple[str, ...]] = {
    "regression": ("task=regression",),
    "rosenbrock": ("task=rosenbrock", "task.dim=10"),
}
#: es_sigma's box in units of the configured sigma (the default ``ae.coefs.es_sigma``)
BOX: tuple[float, float] = (
    validate({"enabled": True}).coefs.es_sigma.lo,
    validate({"enabled": True}).coefs.es_sigma.hi,
)


@dataclass
class ArmRun:
    """One run's curves: evaluations ``(generation, value)``, and sigma and lr per logged
    generation in units of their configured values."""

    status: str
    evals: list[tuple[int, float]]
    sigma: list[tuple[int, float]]
    lr: list[tuple[int, float]]
    steps: int

    def last_mean(self, k: int = 5) -> float:
        """The mean of the last ``k`` evaluations (Rosenbrock's value zig-zags in the valley)."""
        return statistics.mean(v for _, v in self.evals[-k:])

    def best_by(self, step: float) -> float:
        """The best value of the evaluations at generations <= ``step``."""
        return min(v for s, v in self.evals if s <= step)

    def first_hit(self, target: float) -> int | None:
        """The first evaluated generation with value <= ``target`` (None: never)."""
        return next((s for s, v in self.evals if v <= target), None)


def run_arm(
    task: str,
    arm: str,
    seed: int,
    steps: int,
    out_dir: Path,
    extra: tuple[str, ...] = (),
    optimizer: str = "eggroll",
) -> ArmRun:
    """One ``optimizer`` run at cpu scale (one torch thread) of ``task`` and ``arm``."""
    overrides = [
        f"optimizer={optimizer}",
        "scale=cpu",
        f"steps={steps}",
        f"seed={seed}",
        "trainer.threads=1",
        *TASKS[task],
        *ARMS[arm],
        *extra,
    ]
    record, _ = run_in_process(overrides, out_dir)
    rows = read_curves(out_dir / "curves.csv")
    metric = next(k for k in rows[0] if k.startswith("val_"))

    def series(column: str) -> list[tuple[int, float]]:
        return [(int(r["step"]), float(r[column])) for r in rows if r.get(column)]

    evals = series(metric)
    sigma, lr = series("sigma"), series("lr")
    return ArmRun(
        status=record.status,
        evals=evals,
        sigma=[(s, v / sigma[0][1]) for s, v in sigma],
        lr=[(s, v / lr[0][1]) for s, v in lr],
        steps=steps,
    )


@dataclass
class Comparison:
    """An arm against vanilla ES on one seed."""

    ratio: float  # time-to-target over vanilla's (a lower bound when censored)
    censored: bool
    final_ratio: float  # mean of the last five evaluations over vanilla's

    def text(self) -> str:
        return f"{'>' if self.censored else ''}{self.ratio:.2f}"


def compare(vanilla: ArmRun, arm: ArmRun, frac: float) -> Comparison:
    """Time-to-target ratio at the target vanilla reached by ``frac`` of the horizon (module
    docstring) and the ratio of the last five evaluations."""
    target = vanilla.best_by(frac * vanilla.steps)
    t_vanilla = vanilla.first_hit(target)
    assert t_vanilla is not None and t_vanilla > 0, "vanilla ES made no progress"
    t_arm = arm.first_hit(target)
    censored = t_arm is None
    ratio = (arm.steps if censored else t_arm) / t_vanilla
    return Comparison(ratio, censored, arm.last_mean() / vanilla.last_mean())


def box_position(rel_sigma: list[float], box: tuple[float, float] = BOX) -> tuple[float, float]:
    """The lowest and highest sigma as positions in its box in log units: 0 = the lower wall,
    1 = the upper wall (the configured sigma sits at ``log(1/lo) / log(hi/lo)``)."""
    lo, hi = box
    span = math.log(hi / lo)
    return math.log(min(rel_sigma) / lo) / span, math.log(max(rel_sigma) / lo) / span


def excess(arm_ratios: list[float], null_ratios: list[float]) -> float:
    """The geometric-mean time-to-target ratio of an arm over that of the null control (the
    ``replicate`` arm) on the same seeds: 1 when the arm is as far from vanilla as vanilla's own
    replicate is (censored ratios count at their lower bound in both)."""
    return geometric_mean(arm_ratios) / geometric_mean(null_ratios)


def geometric_mean(values: list[float]) -> float:
    return math.exp(statistics.mean(math.log(v) for v in values))
