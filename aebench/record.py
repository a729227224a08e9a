"""The run record (docs/records.md): ``result.json`` beside ``curves.csv`` in every job's folder.

This module is the writer's side of the contract; ``analysis`` reads the files alone. Bump
``SCHEMA`` whenever a field changes meaning.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

SCHEMA = 1
STATUSES = ("completed", "diverged", "failed")

#: top-level config keys that do not change what a run computes, so not part of its arm
#: (``resume`` says whether to skip a job already done, not what the job computes)
NOT_IN_ARM = ("seed", "logger", "trainer", "resume")


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """Write ``text`` to ``path`` through a temporary file in the same folder and a rename, so a
    reader never sees a half-written file."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def arm_id(choices: dict[str, str | None], config: dict[str, Any], ae: bool) -> str:
    """A stable id of every choice but the seed: readable group choices, then a hash of the
    resolved config without ``NOT_IN_ARM`` keys (so ``optimizer.lr=0.1`` is another arm)."""
    hashed = {k: v for k, v in config.items() if k not in NOT_IN_ARM}
    digest = hashlib.sha256(json.dumps(hashed, sort_keys=True, default=str).encode()).hexdigest()
    parts = [
        choices.get("task"),
        choices.get("optimizer"),
        choices.get("schedule"),
        "ae" if ae else "noae",
        choices.get("ablation"),
        f"swarm-{choices.get('swarm')}",
        choices.get("scale"),
    ]
    return "-".join(str(p) for p in parts) + "-" + digest[:8]


def package_versions() -> dict[str, str | None]:
    names = ("torch", "lightning", "hydra-core", "omegaconf", "numpy", "aebench")
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in names:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_state() -> dict[str, Any]:
    """The suite's commit and whether its tree had uncommitted changes (null outside a clone)."""
    root = Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5
        )
        if commit.returncode != 0:
            return {"commit": None, "dirty": None}
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        )
        return {"commit": commit.stdout.strip(), "dirty": bool(dirty.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def tuning_fields(config: dict[str, Any]) -> dict[str, Any]:
    """``RunRecord.tuning`` from a resolved config (self_tuning when it names no ruleset)."""
    r = (config or {}).get("ruleset") or {}
    return {
        "ruleset": r.get("name", "self_tuning"),
        "trial": r.get("trial"),
        "budget_trials": int(r.get("budget_trials") or 0),
        "budget_steps": int(r.get("budget_steps") or 0),
    }


def optimizer_traits(config: dict[str, Any]) -> dict[str, Any]:
    """``RunRecord.optimizer_traits`` from a resolved config: what the optimizer named by
    ``optimizer._target_`` declares of itself (:func:`aebench.schema.traits_of`, read from its
    source); empty when the config names none."""
    target = ((config or {}).get("optimizer") or {}).get("_target_")
    if not target:
        return {}
    from aebench.schema import traits_of

    return traits_of(str(target))


@dataclass
class Metric:
    name: str
    mode: str
    final: float | None = None
    best: float | None = None


@dataclass
class Target:
    value: float
    reached: bool = False
    step: int | None = None
    wall_s: float | None = None


@dataclass
class Incidents:
    #: steps whose training loss was NaN or inf
    nonfinite: int = 0
    #: 1 when the run stopped itself as diverged
    divergence: int = 0
    #: steps where some param group's lr changed by more than a factor 2 in one step
    lr_cliffs: int = 0


@dataclass
class RunRecord:
    status: str
    task: str
    optimizer: str
    schedule: str
    ae: bool
    ablation: str
    swarm: str
    scale: str
    seed: int
    arm: str
    overrides: list[str]
    config: dict[str, Any]
    data_source: str
    metric: Metric
    target: Target
    budget: int
    steps: int = 0
    wall_s: float = 0.0
    auc: float | None = None
    incidents: Incidents = field(default_factory=Incidents)
    #: hashes proving that arms of one seed share initial weights and the first batch
    pairing: dict[str, str | None] = field(default_factory=dict)
    #: population arms only (``swarm`` not ``off``; aebench/swarm/callback.py): the rule, round
    #: budgets, the selected trajectory, ``mean_final`` over the live trajectories and each
    #: trajectory's final metric, status, priors, coefficients and incidents; null otherwise
    population: dict[str, Any] | None = None
    #: Evolution Strategies runs (aebench/es_module.py): population members evaluated over the
    #: run (a generation = population forwards on one batch); 0 for gradient runs (a step = one
    #: forward and backward on one batch)
    fitness_evaluations: int = 0
    #: optional facts of a baseline, one key per baseline; empty otherwise. ``lr_finder``
    #: (schedule=lr_finder, baselines/lr_finder.py): the suggested ``lr`` training used, the
    #: ``rule``, the range test's ``steps`` (not in ``steps``/``budget``), ``stopped_early``,
    #: ``min_loss_lr``, ``steepest_lr`` and the test's settings. Added without a schema bump:
    #: readers of schema 1 ignore it
    extra: dict[str, Any] = field(default_factory=dict)
    #: the tuning this run's arm received (conf/ruleset, aebench/tuning.py): ``ruleset``
    #: (self_tuning | external), ``trial`` (the qmc trial index this run used; null untuned),
    #: ``budget_trials`` and ``budget_steps`` (tuning runs and their optimizer steps consumed
    #: per problem before this evaluation run). Filled from ``config.ruleset``; added without a
    #: schema bump: readers of schema 1 ignore it
    tuning: dict[str, Any] = field(default_factory=dict)
    #: the ``ae`` group choice the run composed (off, on, canonical, meta: whichever config of
    #: conf/ae/ it ran, from the command line or an experiment's defaults); predictions name it as
    #: the run field ``ae_arm``. Added without a schema bump: readers of schema 1 ignore it
    ae_arm: str | None = None
    #: the traits the optimizer declares (aebench.schema.TRAITS: ``self_tuning``, ``own_lr``,
    #: ``choices``), so the analysis tells a self-tuning optimizer by its record rather than by
    #: a list of names; filled from ``config.optimizer._target_``. Added without a schema
    #: bump: readers of schema 1 ignore it, records written before it lack it
    optimizer_traits: dict[str, Any] | None = None
    error: str | None = None
    versions: dict[str, str | None] = field(default_factory=package_versions)
    git: dict[str, Any] = field(default_factory=git_state)
    schema: int = SCHEMA

    def __post_init__(self) -> None:
        if not self.tuning:
            self.tuning = tuning_fields(self.config)
        if self.optimizer_traits is None:
            self.optimizer_traits = optimizer_traits(self.config)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, allow_nan=False, default=str) + "\n"

    def write(self, folder: str | os.PathLike[str]) -> Path:
        path = Path(folder) / "result.json"
        atomic_write_text(path, self.to_json())
        return path
