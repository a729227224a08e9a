"""The run record contract (docs/records.md): fields, types, statuses, what each status means."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from aebench.record import SCHEMA, STATUSES
from tests.helpers import read_curves, run_in_process

REQUIRED = {
    "schema": int,
    "status": str,
    "task": str,
    "optimizer": str,
    "schedule": str,
    "ae": bool,
    "ablation": str,
    "swarm": str,
    "seed": int,
    "arm": str,
    "overrides": list,
    "config": dict,
    "data_source": str,
    "steps": int,
    "wall_s": float,
    "metric": dict,
    "target": dict,
    "incidents": dict,
    "versions": dict,
    "git": dict,
    "budget": int,
    "pairing": dict,
}


@pytest.fixture(scope="module")
def completed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("run")
    _, data = run_in_process(["task=regression", "optimizer=sgdm", "scale=smoke", "seed=1"], out)
    return data, out


def test_record_has_every_field_with_its_type(completed: tuple[dict, Path]) -> None:
    data, _ = completed
    for key, kind in REQUIRED.items():
        assert key in data, key
        assert isinstance(data[key], kind), (key, data[key])
    assert data["schema"] == SCHEMA
    assert data["status"] in STATUSES and data["status"] == "completed"
    assert data["error"] is None
    assert data["data_source"] == "synthetic"
    assert set(data["metric"]) == {"name", "mode", "final", "best"}
    assert data["metric"] == {**data["metric"], "name": "mse", "mode": "min"}
    assert data["metric"]["best"] <= data["metric"]["final"]
    assert set(data["target"]) == {"value", "reached", "step", "wall_s"}
    assert set(data["incidents"]) == {"nonfinite", "divergence", "lr_cliffs"}
    assert data["steps"] == data["budget"] == data["config"]["task"]["budget"]["smoke"]
    assert data["task"] == "regression" and data["optimizer"] == "sgdm"
    assert data["ae"] is False and data["ablation"] == "none" and data["swarm"] == "off"
    assert data["config"]["optimizer"]["lr"] == data["config"]["task"]["lr"]["sgdm"]
    assert math.isfinite(data["auc"]) and data["auc"] > 0
    # compute spent: 3 forward-equivalents per gradient step, no environment
    assert data["extra"]["compute"] == {"forward_equivalents": 3.0 * data["steps"], "env_steps": 0}


def test_curves_have_the_contract_columns(completed: tuple[dict, Path]) -> None:
    data, out = completed
    rows = read_curves(out / "curves.csv")
    assert list(rows[0])[:3] == ["step", "train_loss", "val_mse"]
    assert {"lr", "momentum", "weight_decay"} <= set(rows[0])
    steps = [int(r["step"]) for r in rows]
    assert steps == sorted(steps) and steps[0] == 0 and steps[-1] == data["steps"]
    assert rows[0]["val_mse"] and not rows[0]["train_loss"]  # step 0: evaluated, not trained
    assert all(r["train_loss"] for r in rows[1:])  # scale=smoke logs every step
    evaluated = [float(r["val_mse"]) for r in rows if r["val_mse"]]
    assert evaluated[-1] == pytest.approx(data["metric"]["final"])
    assert min(evaluated) == pytest.approx(data["metric"]["best"])


def test_target_step_is_the_first_evaluation_at_or_below_target(tmp_path: Path) -> None:
    _, data = run_in_process(
        ["task=regression", "optimizer=adamw", "scale=smoke", "task.target=0.5"], tmp_path
    )
    rows = [r for r in read_curves(tmp_path / "curves.csv") if r["val_mse"]]
    first = next(int(r["step"]) for r in rows if float(r["val_mse"]) <= 0.5)
    assert data["target"]["reached"] is True
    assert data["target"]["step"] == first


def test_missed_target_has_null_step(tmp_path: Path) -> None:
    _, data = run_in_process(["task=rosenbrock", "scale=smoke", "task.target=1e-12"], tmp_path)
    assert data["target"] == {**data["target"], "reached": False, "step": None, "wall_s": None}


def test_exploding_run_stops_as_diverged(tmp_path: Path) -> None:
    record, data = run_in_process(
        ["task=rosenbrock", "optimizer=sgd", "optimizer.lr=1e6", "scale=smoke"], tmp_path
    )
    assert data["status"] == "diverged"
    assert data["incidents"]["divergence"] == 1
    assert data["steps"] < data["budget"]
    assert data["auc"] is None
    assert data["error"] is None


def test_nonfinite_loss_is_counted_and_stops(tmp_path: Path) -> None:
    _, data = run_in_process(
        ["task=regression", "optimizer=sgd", "optimizer.lr=1e4", "scale=smoke"], tmp_path
    )
    assert data["status"] == "diverged"
    rows = read_curves(tmp_path / "curves.csv")
    assert int(rows[-1]["step"]) == data["steps"]


def test_exception_records_failed_with_traceback(tmp_path: Path) -> None:
    overrides = [
        "task=regression",
        "scale=smoke",
        "task._target_=tests.failing_task.FailingRegression",
    ]
    _, data = run_in_process(overrides, tmp_path, reraise=False)
    assert data["status"] == "failed"
    assert "boom: injected failure" in data["error"] and "Traceback" in data["error"]
    assert (tmp_path / "curves.csv").exists()
    assert data["steps"] == 5  # the steps taken before the failure
    assert data["metric"]["name"] == "mse" and data["data_source"] == "synthetic"
    with pytest.raises(RuntimeError, match="boom"):
        run_in_process(overrides, tmp_path / "alone", reraise=True)
    assert (tmp_path / "alone" / "result.json").exists()


def test_arm_is_stable_across_seeds_and_differs_across_choices(tmp_path: Path) -> None:
    base = ["task=rosenbrock", "scale=smoke", "steps=3"]
    arms = {}
    for name, extra in {
        "s0": ["seed=0"],
        "s1": ["seed=1"],
        "lr": ["seed=0", "optimizer.lr=0.001"],
        "opt": ["seed=0", "optimizer=sgd"],
    }.items():
        _, data = run_in_process(base + extra, tmp_path / name)
        arms[name] = data["arm"]
    assert arms["s0"] == arms["s1"]
    assert len({arms["s0"], arms["lr"], arms["opt"]}) == 3


@pytest.mark.parametrize("task", ["regression", "rosenbrock"])
@pytest.mark.parametrize("optimizer", ["sgd", "sgdm", "adam", "adamw", "adafactor"])
def test_every_optimizer_trains_every_task(task: str, optimizer: str, tmp_path: Path) -> None:
    _, data = run_in_process([f"task={task}", f"optimizer={optimizer}", "steps=4"], tmp_path)
    assert data["status"] == "completed", data["error"]
    assert data["steps"] == 4


@pytest.mark.parametrize("schedule", ["constant", "cosine", "step", "onecycle"])
def test_every_schedule_runs_its_budget(schedule: str, tmp_path: Path) -> None:
    _, data = run_in_process(["task=regression", f"schedule={schedule}", "steps=8"], tmp_path)
    assert data["status"] == "completed", data["error"]
    lrs = [float(r["lr"]) for r in read_curves(tmp_path / "curves.csv")]
    assert len(lrs) == 9
    assert (len(set(lrs)) == 1) == (schedule == "constant")


def test_task_reward_reaches_ae_and_task_columns_reach_the_curves(tmp_path: Path) -> None:
    overrides = [
        "task=regression",
        "scale=smoke",
        "ae=on",
        "ae.log_every=1",
        "task._target_=tests.rewarding_task.RewardingRegression",
    ]
    _, data = run_in_process(overrides, tmp_path, reraise=True)
    assert data["status"] == "completed"
    rows = read_curves(tmp_path / "curves.csv")
    rewards = [float(r["train_reward"]) for r in rows if r.get("train_reward")]
    assert rewards and all(r < 0 for r in rewards)
    assert any(float(r["R"]) != 0.0 for r in rows if r.get("R"))  # AE-1's R is fed
