"""Adding a plug-in is one module and one YAML, with no edit to the package: the recipes of
docs/howto_add_task.md, docs/howto_add_optimizer.md, docs/howto_add_law.md and
docs/howto_add_prediction.md, followed to the letter from a temporary folder.

The folder holds a toy task, a toy optimizer and a toy law (Python modules on ``PYTHONPATH``),
their config options (a Hydra search path: ``hydra.searchpath=[file://<folder>/conf]``), the
law's knock-out (``ablation=no_toy``) and a toy prediction (``aebench-analyze --predictions``).
Smoke sweeps over them run through the console scripts, and the analysis reads their records
and rules on the prediction.
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

TOY_LAW = '''
"""A toy AE drive term: pushes log lr up by a constant (docs/howto_add_law.md)."""


class Push:
    def __init__(self, push: float = 1.0):
        self.push = push

    def __call__(self, signals, z, zbar, kinds):
        return [self.push if kind == "alpha" else 0.0 for kind in kinds]
'''

TOY_LAW_YAML = """
_target_: toy_law.Push
push: 5.0
"""

TOY_LAW_ABLATION = """
# @package _global_
ae:
  terms:
    toy:
      enabled: false
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
    (root / "toy_law.py").write_text(TOY_LAW)
    for group, name, text in (
        ("task", "toy", TOY_TASK_YAML),
        ("optimizer", "toy_signsgd", TOY_OPTIMIZER_YAML),
        ("ae/terms", "toy", TOY_LAW_YAML),
        ("ablation", "no_toy", TOY_LAW_ABLATION),
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


def _final_lr(folder: Path) -> float:
    rows = (folder / "curves.csv").read_text().splitlines()
    header = rows[0].split(",")
    return float(rows[-1].split(",")[header.index("lr")])


@pytest.mark.slow
def test_toy_law_from_a_folder_and_its_knock_out(tmp_path: Path) -> None:
    """The toy law raises lr; knocked out (``ablation=no_toy``) the run is the run without it."""
    plugins = _plugin_folder(tmp_path / "plugins")
    common = (f"hydra.searchpath=[file://{plugins / 'conf'}]", "task=toy", "optimizer=sgd",
              "ae=on", "seed=0", "scale=smoke")  # fmt: skip
    runs = {}
    for name, extra in (
        ("law", ("+ae/terms@ae.terms.toy=toy", "ablation=none,no_toy")),
        ("plain", ()),
    ):
        sweep = tmp_path / name
        done = _console(
            "aebench", "-m", *common, *extra, f"hydra.sweep.dir={sweep}",
            cwd=tmp_path, pythonpath=plugins,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        for path in sweep.rglob("result.json"):
            record = json.loads(path.read_text())
            runs[(name, record["ablation"])] = (record, path.parent)
    assert set(runs) == {("law", "none"), ("law", "no_toy"), ("plain", "none")}
    law, knocked, plain = runs["law", "none"], runs["law", "no_toy"], runs["plain", "none"]
    assert all(r["status"] == "completed" and r["ae"] for r, _ in runs.values())
    assert law[0]["config"]["ae"]["terms"] == {"toy": {"_target_": "toy_law.Push", "push": 5.0}}
    assert "terms" not in plain[0]["config"]["ae"]  # no plug-in term: the record it had before
    assert _final_lr(law[1]) > 1.03 * _final_lr(plain[1])
    assert (knocked[1] / "curves.csv").read_text() == (plain[1] / "curves.csv").read_text()
    assert knocked[0]["metric"] == plain[0]["metric"]
    assert len({law[0]["arm"], knocked[0]["arm"], plain[0]["arm"]}) == 3


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
