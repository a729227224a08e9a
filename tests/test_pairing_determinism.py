"""Fairness: arms of one seed share initial weights and data order; runs are reproducible."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import run_in_process


@pytest.mark.parametrize("task", ["regression", "rosenbrock"])
def test_pairing_across_optimizer_arms(task: str, tmp_path: Path) -> None:
    pairings = []
    for optimizer in ["sgd", "sgdm", "adamw", "adafactor"]:
        _, data = run_in_process(
            [f"task={task}", f"optimizer={optimizer}", "schedule=cosine", "steps=2", "seed=7"],
            tmp_path / optimizer,
        )
        assert data["status"] == "completed", data["error"]
        pairings.append(data["pairing"])
    assert all(p == pairings[0] for p in pairings)
    assert pairings[0]["init_hash"] and pairings[0]["first_batch_hash"]


def test_seeds_differ(tmp_path: Path) -> None:
    hashes = [
        run_in_process(["task=regression", "steps=2", f"seed={s}"], tmp_path / str(s))[1]["pairing"]
        for s in (0, 1)
    ]
    assert hashes[0]["init_hash"] != hashes[1]["init_hash"]
    assert hashes[0]["first_batch_hash"] != hashes[1]["first_batch_hash"]


def test_same_config_and_seed_give_identical_curves(tmp_path: Path) -> None:
    overrides = ["task=regression", "optimizer=adamw", "schedule=onecycle", "scale=smoke"]
    run_in_process(overrides, tmp_path / "a")
    run_in_process(overrides, tmp_path / "b")
    a = (tmp_path / "a" / "curves.csv").read_text()
    b = (tmp_path / "b" / "curves.csv").read_text()
    assert a == b
    assert len(a.splitlines()) > 10
