"""The console entry point in a subprocess: bad input, divergence, and a -m sweep."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.helpers import run_cli


@pytest.mark.parametrize(
    ("arg", "key"),
    [
        ("task=nope", "task"),
        ("optimizer.lrr=1", "optimizer.lrr"),
        ("optimizer.lr=abc", "optimizer.lr"),
        ("seed=-1", "seed"),
    ],
)
def test_bad_input_exits_nonzero_with_one_line_and_no_result(
    arg: str, key: str, tmp_path: Path
) -> None:
    proc = run_cli(arg, cwd=tmp_path, timeout=60)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert key in lines[0] and lines[0].startswith("aebench: error:")
    assert not list(tmp_path.rglob("result.json"))
    assert not (tmp_path / "outputs").exists()


def test_divergence_exits_zero_with_status_diverged(tmp_path: Path) -> None:
    proc = run_cli(
        "task=rosenbrock", "optimizer=sgd", "optimizer.lr=1e6", "scale=smoke", cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    (result,) = tmp_path.glob("outputs/*/*/result.json")
    assert json.loads(result.read_text())["status"] == "diverged"


def test_multirun_sweep_writes_one_record_per_job_in_one_folder(tmp_path: Path) -> None:
    proc = run_cli(
        "-m",
        "task=regression,rosenbrock",
        "optimizer=sgdm,adamw",
        "seed=range(2)",
        "scale=smoke",
        "steps=5",
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    (sweep,) = tmp_path.glob("multirun/*/*")
    records = [json.loads(p.read_text()) for p in sorted(sweep.glob("*/result.json"))]
    assert len(records) == 8
    assert {r["status"] for r in records} == {"completed"}
    combos = {(r["task"], r["optimizer"], r["seed"]) for r in records}
    assert len(combos) == 8
    by_arm: dict[str, set[int]] = {}
    for r in records:
        by_arm.setdefault(r["arm"], set()).add(r["seed"])
    assert len(by_arm) == 4 and all(seeds == {0, 1} for seeds in by_arm.values())
