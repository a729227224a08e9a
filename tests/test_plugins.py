"""Adding a plug-in is one module and one YAML, with no edit to the package: the recipes of
docs/howto_add_task.md, docs/howto_add_optimizer.md and docs/howto_add_prediction.md, followed
to the letter from a temporary folder.

The folder holds a toy task and a toy optimizer (Python modules on ``PYTHONPATH``), their config
options (a Hydra search path: ``hydra.searchpath=[file://<folder>/conf]``) and a toy prediction
(``aebench-analyze --predictions``). A smoke sweep over them runs through the console scripts,
and the analysis reads its records and rules on the prediction.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TOY_TASK = '''
"""A toy task: least squares y = sum(x) with a linear model."""

import torch
from torch import nn

from aebench.task import Task, cycle_batches


class ToyTask(Task):
    metric_name = "mse"
    metric_mode = "min"

    def __init__(self, seed: int, batch_size: int = 16, dim: int = 4, loss_scale: float = 1.0):
        super().__init__(seed, batch_size, loss_scale)
        g = self.rng("data")
        self.x = torch.randn(256, dim, generator=g)
        self.y = self.x.sum(1, keepdim=True)

    def build_model(self) -> nn.Module:
        return nn.Linear(self.x.shape[1], 1)

    def train_batches(self):
        return cycle_batches((self.x, self.y), self.batch_size, self.rng("order"))

    def loss(self, model, batch):
        x, y = batch
        return ((model(x) - y) ** 2).mean()

    def evaluate(self, model) -> float:
        return float(((model(self.x) - self.y) ** 2).mean())
'''

TOY_TASK_YAML = """
_target_: toy_task.ToyTask
name: toy
batch_size: 16
dim: 4
target: 0.01
budget: {smoke: 30, cpu: 300, paper: 3000}
lr: {sgd: 0.05, sgdm: 0.02, adam: 0.05, adamw: 0.05, adafactor: 0.05, toy_signsgd: 0.01}
"""

TOY_OPTIMIZER = '''
"""A toy optimizer: sign-SGD, p -= lr * sign(grad)."""

import torch


class SignSGD(torch.optim.Optimizer):
    def __init__(self, params, lr: float = 0.01):
        super().__init__(params, {"lr": lr})

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.add_(torch.sign(p.grad), alpha=-group["lr"])
        return loss
'''

TOY_OPTIMIZER_YAML = """
_target_: toy_optimizer.SignSGD
_partial_: true
lr: ${task.lr.toy_signsgd}
"""

TOY_PREDICTION = """
claim: "On the toy task, SGD ends with a lower MSE than sign-SGD."
source: "tests/test_plugins.py (a recipe check, not a claim of the theory)"
sweep: aebench -m task=toy optimizer=sgd,toy_signsgd seed='range(3)'
runs: {task: toy}
a: {optimizer: toy_signsgd}
b: {optimizer: sgd}
strata: [task]
pair_on: [seed]
metric: final
effect: difference
direction: better
threshold: 0.0
alpha: 0.05
min_n: 2
"""


def _plugin_folder(root: Path) -> Path:
    """The folder a user would write: modules, config options and a prediction."""
    root.mkdir(parents=True)
    (root / "toy_task.py").write_text(TOY_TASK)
    (root / "toy_optimizer.py").write_text(TOY_OPTIMIZER)
    for group, name, text in (
        ("task", "toy", TOY_TASK_YAML),
        ("optimizer", "toy_signsgd", TOY_OPTIMIZER_YAML),
    ):
        (root / "conf" / group).mkdir(parents=True, exist_ok=True)
        (root / "conf" / group / f"{name}.yaml").write_text(text)
    (root / "predictions").mkdir()
    (root / "predictions" / "toy_sgd_beats_signsgd.yaml").write_text(TOY_PREDICTION)
    return root


def _console(name: str, *args: str, cwd: Path, pythonpath: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(pythonpath), env.get("PYTHONPATH")]))
    env.pop("AEBENCH_CONF", None)
    script = Path(sys.executable).parent / name
    return subprocess.run(
        [str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_toy_task_optimizer_and_prediction_from_a_folder(tmp_path: Path) -> None:
    plugins = _plugin_folder(tmp_path / "plugins")
    sweep = tmp_path / "sweep"
    done = _console(
        "aebench", "-m", f"hydra.searchpath=[file://{plugins / 'conf'}]",
        "task=toy", "optimizer=sgd,toy_signsgd", "seed=range(3)", "scale=smoke",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path, pythonpath=plugins,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sweep.rglob("result.json")]
    assert len(records) == 6
    assert {(r["task"], r["optimizer"], r["status"]) for r in records} == {
        ("toy", "sgd", "completed"),
        ("toy", "toy_signsgd", "completed"),
    }
    assert all(r["metric"]["name"] == "mse" and r["steps"] == 30 for r in records)

    report = tmp_path / "report"
    done = _console(
        "aebench-analyze", str(sweep), "--out", str(report),
        "--predictions", str(plugins / "predictions"),
        cwd=tmp_path, pythonpath=plugins,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    text = (report / "report.md").read_text()
    assert "toy_sgd_beats_signsgd" in text


def test_a_plugin_typo_is_one_line(tmp_path: Path) -> None:
    """The preflight reads the plug-in's options too: a wrong key in one fails in one line."""
    plugins = _plugin_folder(tmp_path / "plugins")
    done = _console(
        "aebench", f"hydra.searchpath=[file://{plugins / 'conf'}]", "task=toy", "task.dimm=3",
        cwd=tmp_path, pythonpath=plugins,
    )  # fmt: skip
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert done.returncode == 2 and len(lines) == 1, done.stderr
    assert "task.dimm" in lines[0] and "dim" in lines[0]
