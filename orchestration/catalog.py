"""The experiment catalogue (docs/experiments.md): every protocol experiment, what it runs, the
predictions it feeds, its size and its measured cost at each scale, and the command.

    python -m orchestration.catalog [--runs FOLDER ...] [--out docs/experiments.md]

Everything comes from the sources, so the page cannot drift from them: the description is the
experiment config's header comment, the jobs are its sweep expanded the way Hydra's basic
sweeper does (:func:`orchestration.evidence.expand`), the predictions are those whose
``experiment:`` names it (``conf/predictions/``), and the cost is the median ``wall_s`` of the
finished records of that experiment found under ``--runs`` (records name their experiment among
their overrides), times the number of jobs. A scale with no records says "not measured". Torch-free.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aebench.paths import config_dir
from aebench.resume import FINAL, iter_records
from orchestration.evidence import EXPERIMENT, Composer, expand

SCALES = ("smoke", "cpu", "paper")


@dataclass
class Entry:
    """One experiment as the page shows it."""

    name: str
    description: list[str]
    jobs: dict[str, int]
    steps: dict[str, int | None]
    predictions: list[str]
    #: predictions its header says it also feeds (as another stratum of theirs)
    also_feeds: list[str] = field(default_factory=list)
    #: scale -> wall seconds of the finished records of this experiment
    walls: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    #: scale -> the task of each job (for estimates from other experiments' runs of it)
    job_tasks: dict[str, list[str]] = field(default_factory=dict)
    #: scale -> (estimated seconds, runs it rests on) where this experiment has no records
    estimates: dict[str, tuple[float, int]] = field(default_factory=dict)


def description(path: Path) -> list[str]:
    """The header comment of an experiment config, without the package line and the command."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line[1:].strip()
        if text.startswith("@package") or text.startswith("aebench -m experiment="):
            continue
        lines.append(text)
    return lines


def predictions_by_experiment(folder: Path) -> dict[str, list[str]]:
    """``experiment -> [prediction names]`` from the ``experiment:`` key of each prediction."""
    import yaml

    found: dict[str, list[str]] = defaultdict(list)
    for path in sorted(folder.glob("*.yaml")):
        raw = yaml.safe_load(path.read_text()) or {}
        if raw.get("experiment"):
            found[str(raw["experiment"])].append(str(raw.get("name") or path.stem))
    return found


def also_feeds(lines: list[str], known: Iterable[str], own: list[str]) -> list[str]:
    """Predictions named after ``Feeds:`` in a header that name another experiment."""
    text = " ".join(lines)
    if "Feeds:" not in text:
        return []
    after = text.split("Feeds:", 1)[1][:300]
    return [n for n in sorted(known) if n not in own and re.search(rf"\b{n}\b", after)]


def _experiment_of(overrides: Iterable[str]) -> str | None:
    names = [o.split("=", 1)[1] for o in overrides if o.split("=", 1)[0] == "experiment"]
    return names[-1] if names else None


def measured_walls(
    folders: Sequence[Path], by: str = "experiment"
) -> dict[tuple[str, str], list[float]]:
    """``(experiment, scale) -> wall seconds`` of the final records under ``folders``
    (``by="task"``: keyed by the record's task instead)."""
    walls: dict[tuple[str, str], list[float]] = defaultdict(list)
    for folder in folders:
        for path in iter_records(folder):
            try:
                rec = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            name = _experiment_of(rec.get("overrides") or []) if by == "experiment" else None
            if by == "task":
                name = str(rec.get("task") or "") or None
            if name and rec.get("status") in FINAL and rec.get("wall_s") is not None:
                walls[(name, str(rec.get("scale")))].append(float(rec["wall_s"]))
    return walls


def collect(runs: Sequence[Path]) -> list[Entry]:
    """Every ``eNN_*`` experiment with its jobs per scale, predictions and measured walls."""
    preds = predictions_by_experiment(config_dir() / "predictions")
    if not preds:  # installed layout: predictions beside the package's conf
        from analysis.predictions import default_predictions_dir

        preds = predictions_by_experiment(default_predictions_dir())
    walls = measured_walls(runs)
    task_walls = measured_walls(runs, by="task")
    composer = Composer()
    entries = []
    try:
        for name in sorted(e for e in composer.experiments() if EXPERIMENT.match(e)):
            jobs, steps, job_tasks = {}, {}, {}
            for scale in SCALES:
                overrides = [f"experiment={name}", f"scale={scale}"]
                expanded = expand(composer, name, overrides)
                jobs[scale] = len(expanded)
                cfg = composer.compose(expanded[0])
                steps[scale] = (
                    int(cfg.steps) if cfg.steps is not None else int(cfg.task.budget[scale])
                )
                job_tasks[scale] = [_task_of(job, str(cfg.task.name)) for job in expanded]
            lines = description(config_dir() / "experiment" / f"{name}.yaml")
            own = preds.get(name, [])
            known = [p for names in preds.values() for p in names]
            entry = Entry(
                name=name,
                description=lines,
                jobs=jobs,
                steps=steps,
                predictions=own,
                also_feeds=also_feeds(lines, known, own),
                job_tasks=job_tasks,
            )
            for scale in SCALES:
                entry.walls[scale] = walls.get((name, scale), [])
                estimate = _estimate(job_tasks[scale], scale, task_walls)
                if estimate is not None:
                    entry.estimates[scale] = estimate
            entries.append(entry)
    finally:
        composer.close()
    return entries


def _task_of(job: list[str], default: str) -> str:
    """The task a job's overrides pick (``task=...``), else the experiment's."""
    picked = [o.split("=", 1)[1] for o in job if o.split("=", 1)[0] == "task"]
    return picked[-1] if picked else default


def _estimate(
    tasks: list[str], scale: str, task_walls: dict[tuple[str, str], list[float]]
) -> tuple[float, int] | None:
    """Seconds for jobs of these tasks from the median wall of the same task's runs at this
    scale in any experiment; None unless every task has runs."""
    medians = {}
    for task in set(tasks):
        walls = task_walls.get((task, scale))
        if not walls:
            return None
        medians[task] = (statistics.median(walls), len(walls))
    total = sum(medians[t][0] for t in tasks)
    return total, sum(n for _, n in medians.values())


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def cost(entry: Entry, scale: str) -> str:
    """``jobs x median wall = total`` from the records, or what is known without them."""
    walls = entry.walls[scale]
    if not walls and scale in entry.estimates:
        seconds, n = entry.estimates[scale]
        return (
            f"{entry.jobs[scale]} jobs, ~{_duration(seconds)} (estimated from {n} runs of the"
            " same tasks in other experiments)"
        )
    if not walls:
        return f"{entry.jobs[scale]} jobs x {entry.steps[scale]} steps; not measured"
    median = statistics.median(walls)
    return (
        f"{entry.jobs[scale]} jobs x {median:.1f} s = {_duration(entry.jobs[scale] * median)}"
        f" (median of {len(walls)} runs)"
    )


def render(entries: list[Entry], runs: Sequence[Path]) -> str:
    """The Markdown page."""
    out = [
        "# The experiments",
        "",
        "One config per experiment of the protocol in seed 002 (sections A-L; 19 is AE-Swarm's),",
        "in `conf/experiment/eNN_<name>.yaml`. Run one with its command, or several, resumably",
        "and followed by the analysis, with `aebench-evidence --experiments <names> --scale cpu`.",
        "",
        "Costs are wall time on one thread of this project's 2-core CPU machine: the number of",
        "jobs times the median wall time of the finished runs of that experiment (records under",
        f"{', '.join(f'`{r}`' for r in runs) or 'no folder'}), so a machine shared with other",
        "work reads slower. Without records of the experiment itself the cost is estimated from",
        "the median wall time of the same task's runs in other experiments (a swarm or an",
        "ablation costs about what a single run of its task does at the same budget), else",
        "'not measured' gives the jobs and steps per job; paper scale is for a GPU and was not",
        "run here. Generated by `python -m orchestration.catalog`; edit the configs' header",
        "comments, not this page.",
        "",
        "Predictions in parentheses name another experiment; this one adds a stratum to them.",
        "",
        "| experiment | predictions fed | jobs (smoke / cpu / paper) | cost at cpu |",
        "|---|---|---|---|",
    ]
    for e in entries:
        preds = ", ".join(e.predictions + [f"({p})" for p in e.also_feeds]) or "none"
        jobs = " / ".join(str(e.jobs[s]) for s in SCALES)
        out.append(f"| [{e.name}](#{e.name}) | {preds} | {jobs} | {cost(e, 'cpu')} |")
    for e in entries:
        out += ["", f"## {e.name}", ""]
        out += [line for line in e.description]
        out += [
            "",
            f"- Predictions that name it: {', '.join(e.predictions) or 'none'}; also a stratum"
            f" of: {', '.join(e.also_feeds) or 'none'}",
            *(f"- Cost at {s}: {cost(e, s)}" for s in SCALES),
            "",
            "```",
            f"aebench -m experiment={e.name} scale=cpu",
            f"aebench-evidence --experiments {e.name} --scale cpu --out evidence/cpu",
            "```",
        ]
    return "\n".join(out) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m orchestration.catalog", description=__doc__)
    parser.add_argument("--runs", nargs="*", type=Path, default=[], help="folders of records")
    parser.add_argument("--out", type=Path, default=None, help="write here (default: stdout)")
    args = parser.parse_args(argv)
    text = render(collect(args.runs), args.runs)
    if args.out is None:
        print(text, end="")
    else:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
