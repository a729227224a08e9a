"""What makes two jobs the same job: their arm and seed, and the folder a job's overrides name.

Torch-free, so that ``aebench-evidence`` can use it in its parent process. Two notions:

- **arm and seed** (``job_identity``): the arm id of :func:`aebench.record.arm_id` (group
  choices plus a hash of the resolved config without ``NOT_IN_ARM``) and the seed. A resumed
  sweep (``resume=true``) skips a job whose arm and seed already have a final record.
- **job folder** (``job_dir_name``): a folder name derived from a job's overrides, so a sweep run
  with ``hydra.sweep.subdir='${aebench_job_dir:${hydra.overrides.task}}'`` puts each job in a
  folder of its own that does not depend on the sweep's order or size: a rerun (another order,
  an added seed) lands every job where it landed before, and a killed job reruns in its folder.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from aebench.ae.config import law_names
from aebench.record import arm_id

#: the config groups a record names (``RunRecord`` fields and the arm id's readable part)
GROUPS = ("task", "optimizer", "schedule", "scale", "logger", "ae", "ablation", "swarm")
#: name of the OmegaConf resolver for job folders (registered by :func:`register_resolver`)
RESOLVER = "aebench_job_dir"
#: the ``hydra.sweep.subdir`` value that names each job's folder by its overrides
SUBDIR = "${" + RESOLVER + ":${hydra.overrides.task}}"
#: ... as a command-line override (quoted: Hydra's grammar rejects a nested ``${`` unquoted)
SUBDIR_OVERRIDE = f"hydra.sweep.subdir='{SUBDIR}'"
#: override keys that change neither the arm nor the seed, so not the job's folder either
#: (``aebench.record.NOT_IN_ARM`` minus the seed; ``resume`` is how a job runs, not what)
_NOT_IN_FOLDER = ("resume", "trainer", "logger", "hydra")
#: longest readable part of a job folder name (the digest follows it; names stay < 255 bytes)
_READABLE_MAX = 96


@dataclass(frozen=True)
class JobIdentity:
    """A job's choices (as its record names them), resolved config, AE flag, arm id and seed."""

    choices: dict[str, str | None]
    resolved: dict[str, Any]
    ae: bool
    arm: str
    seed: int


def ablation_name(cfg: DictConfig) -> str:
    """What was knocked out: ``none``, or ``no_<law>`` joined by ``+`` (from ``ae.laws``, so a
    single ``ae.laws.gauge=false`` names itself as well as ``ablation=no_gauge`` does), then
    ``no_<term>`` for each plug-in term of ``ae.terms`` with ``enabled: false``."""
    off = [f"no_{law}" for law in law_names() if not cfg.ae.laws[law]]
    terms = cfg.ae.get("terms") or {}
    off += [f"no_{name}" for name, spec in terms.items() if not spec.get("enabled", True)]
    return "+".join(off) if off else "none"


def _without_empty_terms(resolved: dict[str, Any]) -> dict[str, Any]:
    """``resolved`` without an empty ``ae.terms``: a config with no plug-in term has the arm id
    and the record it had before ``ae.terms`` existed."""
    ae = resolved.get("ae")
    if isinstance(ae, dict) and "terms" in ae and not ae["terms"]:
        resolved = {**resolved, "ae": {k: v for k, v in ae.items() if k != "terms"}}
    return resolved


def job_identity(cfg: DictConfig, raw_choices: dict[str, str | None]) -> JobIdentity:
    """The identity of the job ``cfg`` (without its ``hydra`` node) with Hydra's group choices."""
    choices = {g: raw_choices.get(g) for g in GROUPS}
    resolved = _without_empty_terms(OmegaConf.to_container(cfg, resolve=True))
    ae_on = bool(cfg.ae.enabled)
    choices["ablation"] = ablation_name(cfg)
    return JobIdentity(choices, resolved, ae_on, arm_id(choices, resolved, ae_on), int(cfg.seed))


def _key(override: str) -> str:
    return override.split("=", 1)[0].lstrip("+~")


def _in_folder(override: str) -> bool:
    key = _key(override)
    return not any(key == k or key.startswith((f"{k}.", f"{k}/")) for k in _NOT_IN_FOLDER)


def job_dir_name(overrides: Iterable[Any]) -> str:
    """``[<experiment>/]<readable>-<digest>`` for a job's overrides (``hydra.overrides.task``).

    The digest (10 hex digits of SHA-256) covers every override but those of ``_NOT_IN_FOLDER``,
    sorted, so the order of the overrides does not matter; the readable part is those overrides
    but ``experiment``, with characters outside ``[A-Za-z0-9._=,+-]`` replaced by ``_``, cut to
    96 characters. The experiment, when one is named, is a folder of its own, so the jobs of
    several experiments can share one sweep folder (and ``resume`` looks across all of them).
    """
    items = sorted(str(o) for o in overrides if _in_folder(str(o)))
    digest = hashlib.sha256("\n".join(items).encode()).hexdigest()[:10]
    experiment = next((o.split("=", 1)[1] for o in items if _key(o) == "experiment"), "")
    readable = ",".join(o for o in items if _key(o) != "experiment")
    readable = re.sub(r"[^A-Za-z0-9._=,+-]", "_", readable)[:_READABLE_MAX].strip("._")
    name = f"{readable}-{digest}" if readable else digest
    experiment = re.sub(r"[^A-Za-z0-9._-]", "_", experiment).strip(".")
    return f"{experiment}/{name}" if experiment and experiment != "null" else name


def register_resolver() -> None:
    """Register ``${aebench_job_dir:<overrides>}`` (idempotent). Done on import of this module,
    which every process that runs a job imports (through ``aebench.runner``), so launchers that
    unpickle the task function in a fresh process (joblib, submitit) resolve it too."""
    if not OmegaConf.has_resolver(RESOLVER):
        OmegaConf.register_new_resolver(RESOLVER, lambda overrides: job_dir_name(overrides))


register_resolver()
