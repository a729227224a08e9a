"""The tuning stage of a ruleset (issue 18; conf/ruleset): trials, tuning runs, best trial.

``ruleset=self_tuning``: no tuning; an arm runs its documented defaults, its records say
``trial: null``, budget 0. ``ruleset=external``: an arm's search space is what its own YAMLs
declare (:func:`search_space`): ``optimizer.search_space`` (conf/optimizer/<name>.yaml: the base
lr for the baselines, lr and sigma for ES) and, for an arm with AE on, ``ae.search_space``
(conf/ae/<name>.yaml: the AE meta-step and the gauge set-point scale). ``trials`` points are drawn
from it with :class:`scipy.stats.qmc.Halton` (scrambled, seeded by ``ruleset.seed``; the same draw
for every problem, so the space is workload-agnostic), mapped to ``[low, high]`` (log-uniform
where ``log: true``). Each trial runs on ``tuning_seeds`` seeds ``tuning_seed_base + j``, disjoint
from the evaluation seeds. The best trial per problem has the best mean over its tuning seeds of
what ``ruleset.select`` names (:data:`SELECTIONS`; a diverged or failed run counts as the
worst): ``final``, the task metric's final value (min or max by its mode), or
``time_to_target``, the prediction's metric of e01-style experiments (a miss counts at the budget);
the evaluation runs then carry that trial's values and ``ruleset.trial``,
``ruleset.budget_trials`` (tuning runs consumed) and ``ruleset.budget_steps`` (their optimizer
steps), which :func:`aebench.record.tuning_fields` writes into every record.

Resumable: :func:`run_stage` runs each tuning job with ``resume=true`` in its own folder under
``<out>/tuning/<arm>/trial<i>-seed<s>`` and keeps its choice in ``<out>/tuning/<arm>.json``; a
rerun skips what is done.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from scipy.stats import qmc


class TuningError(ValueError):
    pass


#: the arm components that declare a search space, and where (docs/meta.md, Rulesets)
COMPONENTS = (("optimizer", "conf/optimizer/<name>.yaml"), ("ae", "conf/ae/<name>.yaml"))


def search_space(config: Mapping[str, Any], ae_enabled: bool) -> dict[str, dict[str, Any]]:
    """The arm's search space: ``key -> {low, high, log}`` (validated).

    The union of what the arm's components declare in their own YAMLs, read from the arm's
    resolved ``config``: ``optimizer.search_space`` and, when ``ae_enabled``, ``ae.search_space``.
    An optimizer that declares no space cannot be tuned: one line says where to declare it.
    """
    space: dict[str, Any] = {}
    for component, where in COMPONENTS:
        if component == "ae" and not ae_enabled:
            continue
        node = config.get(component)
        declared = dict((node.get("search_space") if isinstance(node, Mapping) else None) or {})
        if component == "optimizer" and not declared:
            raise TuningError(
                "optimizer.search_space={}: ruleset=external tunes each arm over the space "
                f"its YAML declares; declare one in {where} (key: {{low, high, log}})"
            )
        for key in declared:
            if not str(key).startswith(f"{component}."):
                raise TuningError(
                    f"{component}.search_space {key}: the {component} YAML searches only its "
                    f"own keys ({component}.<key>)"
                )
        space.update(declared)
    for key, dim in space.items():
        if not isinstance(dim, Mapping) or not {"low", "high"} <= set(dim):
            raise TuningError(f"search space {key}={dim!r}: need {{low, high[, log]}}")
        low, high = float(dim["low"]), float(dim["high"])
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise TuningError(f"search space {key}: low={low}, high={high}: need low < high")
        if dim.get("log") and low <= 0:
            raise TuningError(f"search space {key}: low={low}: a log range needs low > 0")
    return space


def draw_trials(
    space: Mapping[str, Mapping[str, Any]], n: int, seed: int
) -> list[dict[str, float]]:
    """``n`` quasi-random points of ``space`` (scrambled Halton from ``seed``)."""
    if n < 1:
        raise TuningError(f"ruleset.trials={n}: external tuning needs at least 1 trial")
    keys = sorted(space)
    if not keys:
        return [{} for _ in range(n)]
    u = qmc.Halton(d=len(keys), scramble=True, seed=np.random.default_rng(seed)).random(n)
    out = []
    for row in u:
        point = {}
        for x, key in zip(row, keys, strict=True):
            lo, hi = float(space[key]["low"]), float(space[key]["high"])
            if space[key].get("log"):
                point[key] = float(math.exp(math.log(lo) + x * (math.log(hi) - math.log(lo))))
            else:
                point[key] = float(lo + x * (hi - lo))
        out.append(point)
    return out


def tuning_seeds(ruleset: Mapping[str, Any], evaluation_seeds: list[int]) -> list[int]:
    """The tuning seeds; one clear line when they meet an evaluation seed."""
    base, n = int(ruleset.get("tuning_seed_base", 100000)), int(ruleset.get("tuning_seeds", 1))
    seeds = [base + j for j in range(n)]
    clash = sorted(set(seeds) & set(evaluation_seeds))
    if clash:
        raise TuningError(
            f"ruleset.tuning_seed_base={base}: tuning seeds {clash} are also "
            "evaluation seeds; choose a base above the evaluation seeds"
        )
    return seeds


#: what ranks a ruleset's trials (``ruleset.select``): the task metric's final value, or the
#: steps to the task's target (restricted at the budget: a miss counts as the budget)
SELECTIONS = ("final", "time_to_target")


def score(records: list[Mapping[str, Any]], mode: str, select: str = "final") -> float:
    """Mean of ``select`` over one trial's tuning runs, oriented so that lower is better;
    +inf when a run diverged or failed (the worst)."""
    vals = []
    for r in records:
        if r.get("status") != "completed":
            return math.inf
        if select == "time_to_target":
            target = r.get("target") or {}
            step = target.get("step") if target.get("reached") else None
            vals.append(float(step if step is not None else r.get("budget") or math.inf))
            continue
        final = (r.get("metric") or {}).get("final")
        if final is None or not math.isfinite(final):
            return math.inf
        vals.append(float(final) if mode == "min" else -float(final))
    return sum(vals) / len(vals) if vals else math.inf


def best_trial(
    by_trial: Mapping[int, list[Mapping[str, Any]]], mode: str, select: str = "final"
) -> int:
    """The trial with the best score (ties: the lower index)."""
    if mode not in ("min", "max"):
        raise TuningError(f"metric mode={mode!r}: allowed min, max")
    if select not in SELECTIONS:
        raise TuningError(f"ruleset.select={select!r}: allowed {', '.join(SELECTIONS)}")
    if not by_trial:
        raise TuningError("no tuning runs to choose from")
    return min(sorted(by_trial), key=lambda i: score(by_trial[i], mode, select))


def trial_overrides(point: Mapping[str, float], trial: int) -> list[str]:
    return [f"{k}={v:.6g}" for k, v in sorted(point.items())] + [f"ruleset.trial={trial}"]


def run_stage(
    arm: str,
    arm_overrides: list[str],
    ruleset: Mapping[str, Any],
    ae_enabled: bool,
    evaluation_seeds: list[int],
    out: Path,
    runner: Callable[[list[str], Path], Mapping[str, Any] | None] | None = None,
    config: Mapping[str, Any] | None = None,
) -> list[str]:
    """Run (or resume) the tuning of one arm; return the evaluation runs' extra overrides.

    ``runner(overrides, folder)`` runs one aebench job and returns its record (default: a
    subprocess ``python -m aebench ... resume=true hydra.run.dir=<folder>``). ``config``: the
    arm's resolved config, whose components declare the search space (:func:`search_space`).
    """
    if str(ruleset.get("name")) != "external":
        return []
    state_path = out / "tuning" / f"{arm}.json"
    if state_path.exists():
        state = json.loads(state_path.read_text())
        return list(state["evaluation_overrides"])
    select = str(ruleset.get("select", "final"))
    if select not in SELECTIONS:
        raise TuningError(f"ruleset.select={select!r}: allowed {', '.join(SELECTIONS)}")
    runner = runner or _subprocess_runner
    points = draw_trials(
        search_space(config or {}, ae_enabled),
        int(ruleset.get("trials", 8)),
        int(ruleset.get("seed", 0)),
    )
    seeds = tuning_seeds(ruleset, evaluation_seeds)
    by_trial: dict[int, list[Mapping[str, Any]]] = {}
    steps, mode = 0, "min"
    for i, point in enumerate(points):
        for s in seeds:
            folder = out / "tuning" / arm / f"trial{i}-seed{s}"
            rec = (
                _read(folder)
                or runner([*arm_overrides, *trial_overrides(point, i), f"seed={s}"], folder)
                or {"status": "failed"}
            )
            by_trial.setdefault(i, []).append(rec)
            steps += int(rec.get("steps") or 0)
            mode = (rec.get("metric") or {}).get("mode") or mode
    best = best_trial(by_trial, mode, select)
    extra = trial_overrides(points[best], best) + [
        f"ruleset.budget_trials={len(points) * len(seeds)}",
        f"ruleset.budget_steps={steps}",
        f"ruleset.select={select}",  # the records say what ranked the trials
    ]
    state = {
        "arm": arm,
        "trials": points,
        "tuning_seeds": seeds,
        "mode": mode,
        "select": select,
        "scores": {i: score(r, mode, select) for i, r in by_trial.items()},
        "best": best,
        "evaluation_overrides": extra,
    }
    state_path.parent.mkdir(parents=True, exist_ok=True)
    state_path.write_text(json.dumps(state, indent=1, default=str) + "\n")
    return extra


def _seed_of(overrides: list[str]) -> int | None:
    """The seed a job's overrides set (the last ``seed=``), or None."""
    seeds = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "seed"]
    try:
        return int(seeds[-1]) if seeds else None
    except ValueError:
        return None


def _read(folder: Path) -> dict[str, Any] | None:
    p = folder / "result.json"
    return json.loads(p.read_text()) if p.exists() else None


def _subprocess_runner(overrides: list[str], folder: Path) -> dict[str, Any] | None:
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "aebench", *overrides, "resume=true", f"hydra.run.dir={folder}"]
    with open(folder / "tuning.log", "w") as log:
        subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, check=False)
    return _read(folder)
