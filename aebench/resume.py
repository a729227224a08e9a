"""``resume=true``: skip a job whose arm and seed already have a final record.

A record is *final* when its status is ``completed`` or ``diverged`` and its ``curves.csv`` sits
beside it: a diverged run is data (same config and seed diverge again, deterministically), so it
is not rerun. A ``failed`` record (an exception, possibly transient), a folder with curves but no
record (a job killed midway) or no folder at all is run (again), in the job's own folder.

Where records are looked for: the job's own folder first, then every ``result.json`` under the
sweep folder (``hydra.sweep.dir``; Hydra's ``.hydra`` and other dot-folders skipped), so a job
is recognised by its arm and seed wherever an earlier sweep put it (another job number, another
experiment in the same folder). Reading only the head of each record keeps the scan cheap: the
record's first fields are its status, choices, seed and arm (``aebench.record.RunRecord``); a
hit is confirmed by parsing the whole file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from aebench.record import Incidents, Metric, RunRecord, Target

#: statuses a resumed sweep does not rerun
FINAL = ("completed", "diverged")
#: bytes read from the head of a record to find its status, seed and arm
_HEAD = 4096
_FIELD = re.compile(r'^\s*"(status|seed|arm)":\s*("(?:[^"\\]|\\.)*"|-?\d+)', re.MULTILINE)


@dataclass(frozen=True)
class Found:
    """A record of the same arm and seed: its path and status."""

    path: Path
    status: str


def _head_fields(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            head = f.read(_HEAD).decode("utf-8", "replace")
    except OSError:
        return {}
    out: dict[str, Any] = {}
    for m in _FIELD.finditer(head):
        out.setdefault(m.group(1), json.loads(m.group(2)))
    return out


def read_identity(path: Path) -> tuple[str | None, int | None, str | None]:
    """``(arm, seed, status)`` of a record, from its head (Nones where unreadable)."""
    head = _head_fields(path)
    seed = head.get("seed")
    return head.get("arm"), seed if isinstance(seed, int) else None, head.get("status")


def _confirmed(path: Path, arm: str, seed: int) -> Found | None:
    """The record at ``path`` if it parses, is of ``arm`` and ``seed`` and is final."""
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("arm") != arm or record.get("seed") != seed:
        return None
    status = record.get("status")
    if status not in FINAL or not (path.parent / "curves.csv").is_file():
        return None
    return Found(path, str(status))


def iter_records(root: Path):  # noqa: ANN201 - a generator of Paths
    """Every ``result.json`` under ``root`` (sorted walk, dot-folders skipped)."""
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if "result.json" in files:
            yield Path(here) / "result.json"


def find_final(out_dir: Path, sweep_dir: Path | None, arm: str, seed: int) -> Found | None:
    """A final record of ``arm`` and ``seed`` in ``out_dir`` or under ``sweep_dir``, or None."""
    own = out_dir / "result.json"
    if own.is_file():
        hit = _confirmed(own, arm, seed)
        if hit is not None:
            return hit
    if sweep_dir is None or not sweep_dir.is_dir():
        return None
    for path in iter_records(sweep_dir):
        if path == own:
            continue
        a, s, status = read_identity(path)
        if a == arm and s == seed and status in FINAL:
            hit = _confirmed(path, arm, seed)
            if hit is not None:
                return hit
    return None


def other_job_record(out_dir: Path, overrides: list[str], arm: str, seed: int) -> str | None:
    """Why running here would overwrite another job's record, or None.

    ``out_dir`` may hold the record of a different arm or seed: a stale record of this very job
    (same overrides, written before its config changed; it is rerun and replaced) or the record
    of another job, when the sweep names folders by job number and its order changed since. The
    latter must not be overwritten.
    """
    path = out_dir / "result.json"
    if not path.is_file():
        return None
    a, s, _ = read_identity(path)
    if a == arm and s == seed:
        return None
    try:
        theirs = json.loads(path.read_text()).get("overrides")
    except (OSError, ValueError, AttributeError):
        return None  # an unreadable record is no one's: rerun over it
    if isinstance(theirs, list) and sorted(map(str, theirs)) == sorted(overrides):
        return None
    return (
        f"resume=true: {out_dir} holds the record of another job ({a} seed={s}); name job "
        "folders by their overrides (hydra.sweep.subdir='${aebench_job_dir:"
        "${hydra.overrides.task}}', as aebench-evidence does) or use a new hydra.sweep.dir"
    )


def clean_hydra_only(out_dir: Path) -> bool:
    """Remove ``out_dir`` if it holds nothing but what Hydra writes when a job starts
    (``.hydra/`` and ``*.log``), so a skipped job leaves no folder that reads as a partial run.
    Returns whether it was removed."""
    try:
        entries = list(out_dir.iterdir())
    except OSError:
        return False
    if any(not (e.name == ".hydra" or (e.is_file() and e.suffix == ".log")) for e in entries):
        return False
    for e in entries:
        if e.is_dir():
            shutil.rmtree(e, ignore_errors=True)
        else:
            e.unlink(missing_ok=True)
    try:
        out_dir.rmdir()
    except OSError:
        return False
    return True


def _build(cls: type, data: Any) -> Any:
    names = {f.name for f in fields(cls)}
    return cls(**{k: v for k, v in (data or {}).items() if k in names})


def load_record(path: Path) -> RunRecord:
    """A :class:`RunRecord` from a ``result.json`` (fields it does not know are left out)."""
    data = json.loads(path.read_text())
    record = _build(RunRecord, data)
    record.metric = _build(Metric, data.get("metric"))
    record.target = _build(Target, data.get("target"))
    record.incidents = _build(Incidents, data.get("incidents"))
    return record
