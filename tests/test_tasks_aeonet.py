"""The AEONet tasks of protocol experiments 14 and 15: gated_depth and basis_equation.

End to end at scale=smoke with AE off (coefficients stay at their configured values) and on
(AE moves them), and direct checks of what each task claims: the data, the gates and dropout,
the selection columns, the bursts, and the analysis metric read from them.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch

from aebench.task import ConfigError
from analysis.curves import Curves
from analysis.metrics import curve_metrics, metric_spec
from tasks.basis_equation import BasisEquationTask
from tasks.gated_depth import GatedDepthTask, unit_mask
from tests.helpers import read_curves, run_in_process

COLUMNS = {
    "gated_depth": {"gate_0", "gate_5", "gate_mean", "capacity", "dropout", "train_acc"},
    "basis_equation": {"l1", "mse", "selected", "sparsity", "selection_errors", "w_sin", "w_x2"},
}
FIXED = {
    "gated_depth": {"gate_0": 0.8, "gate_5": 0.2, "dropout": 0.1},
    "basis_equation": {"l1": 0.01},
}


def floats(rows: list[dict[str, str]], column: str) -> list[float]:
    return [float(r[column]) for r in rows if r.get(column, "") != ""]


@pytest.mark.parametrize("ae", ["off", "on"])
@pytest.mark.parametrize("task", sorted(COLUMNS))
def test_task_runs_at_smoke_and_ae_moves_only_its_own_arm(task: str, ae: str, tmp_path: Path):
    _, rec = run_in_process([f"task={task}", f"ae={ae}", "trainer.threads=1"], tmp_path)
    assert rec["status"] == "completed", rec["error"]
    assert math.isfinite(rec["metric"]["final"]) and rec["ae"] is (ae == "on")
    rows = read_curves(tmp_path / "curves.csv")
    assert COLUMNS[task] <= set(rows[0])
    for column, value in FIXED[task].items():
        values = floats(rows, column)
        if ae == "off":  # the fixed-capacity (fixed-lambda) baseline
            assert values and all(v == value for v in values), column
        else:  # AE updates after its warmup (20 steps); the smoke budget leaves it a few
            assert values[0] == value and values[-1] != value, column


def test_gated_depth_data_gates_and_dropout():
    task = GatedDepthTask(0, n_train=256, n_val=128)
    again = GatedDepthTask(0, n_train=256, n_val=128)
    assert torch.equal(task.x_train, again.x_train) and set(task.y_train.tolist()) == {0, 1, 2, 3}
    torch.manual_seed(0)
    model = task.build_model()
    x = task.x_train[:32]
    model.eval()
    base = model(x)
    model.gates[2] = 0.0  # a closed gate removes its block: the output changes
    assert not torch.allclose(base, model(x))
    model.train()
    state = torch.get_rng_state()
    model.dropout = 0.0
    a = model(x)
    model.dropout = 0.5
    b = model(x)
    assert torch.equal(state, torch.get_rng_state())  # masks come from the model's generator
    assert not torch.allclose(a, b)
    assert [c.column for c in task.coefficients(model)] == [
        *(f"gate_{i}" for i in range(6)),
        "dropout",
    ]


def test_gated_depth_bursts_flip_labels_only_inside_a_burst():
    task = GatedDepthTask(
        0, n_train=256, n_val=128, batch_size=64, burst_every=4, burst_len=2, burst_flip=1.0
    )
    model = task.build_model()
    batches = task.train_batches()
    flags = []
    for _ in range(8):
        task.loss(model, next(batches))
        flags.append(task.train_log()["burst"])
    assert flags == [0, 1, 1, 0, 0, 1, 1, 0]  # steps 1-8: the last 2 of every 4


@pytest.mark.parametrize("flip", [1.0, 0.5])
def test_gated_depth_bursts_flip_the_configured_fraction_of_labels(flip: float):
    """A flipped label goes to another class: burst_flip is the fraction of wrong labels (a
    uniform redraw over the 4 classes kept a quarter of them: 0.375 for 0.5)."""
    task = GatedDepthTask(
        0, n_train=4096, n_val=128, batch_size=4096, burst_every=2, burst_len=1, burst_flip=flip
    )
    model = task.build_model()
    batch = next(task.train_batches())
    task.loss(model, batch)  # step 1: inside the burst (the last 1 of every 2 steps)
    assert task.train_log()["flipped"] == pytest.approx(flip, abs=0.02)
    task.loss(model, batch)  # step 2: outside
    assert task.train_log()["flipped"] == 0.0
    with pytest.raises(ConfigError, match="task.burst_every/burst_len/burst_flip=4/5/0.5"):
        GatedDepthTask(0, burst_every=4, burst_len=5)
    with pytest.raises(ConfigError, match="task.gate_init=1.0"):
        GatedDepthTask(0, gate_init=1.0)


def test_basis_equation_true_expression_has_no_selection_errors():
    task = BasisEquationTask(0, noise=0.0)
    model = task.build_model()
    with torch.no_grad():
        for name, coef in (("sin", 1.0), ("x2", 0.3)):
            j = task.names.index(name)
            model.weight[j] = coef * task.scale[j]  # contribution units
    assert task.evaluate(model) == pytest.approx(0.0, abs=1e-10)
    task.loss(model, next(task.train_batches()))
    log = task.train_log()
    assert log["selection_errors"] == 0 and log["selected"] == 2
    assert log["w_sin"] == pytest.approx(1.0) and log["w_x2"] == pytest.approx(0.3)
    assert log["sparsity"] == pytest.approx(1 - 2 / 11) and log["l1"] == 0.01
    with pytest.raises(ConfigError, match="must contain the true terms"):
        BasisEquationTask(0, basis=["x", "x2"])


def test_selection_errors_metric_is_the_last_logged_value():
    cols = {
        "step": np.arange(4.0),
        "selection_errors": np.array([np.nan, 5.0, 3.0, np.nan]),
        "l1": np.array([np.nan, 0.01, 0.02, 0.03]),
    }
    metrics, _ = curve_metrics(Curves(cols), None)
    assert metrics["selection_errors"] == 3.0 and metrics["l1:end"] == 0.03
    assert metric_spec("selection_errors").higher_is_better(None) is False
    assert metric_spec("gate_mean:max") is not None


def test_a_gate_sets_the_hidden_units_a_block_has():
    """The gate keeps the first gate * units hidden units; the others carry nothing and get no
    gradient, so the weights cannot undo a closed gate (capacity, not a reparametrisation)."""
    assert unit_mask(0.25, 8, torch.device("cpu"), torch.float32).tolist() == [1, 1, 0, 0, 0, 0,
                                                                                 0, 0]  # fmt: skip
    assert unit_mask(0.3, 10, torch.device("cpu"), torch.float32)[2:4].tolist() == pytest.approx(
        [1.0, 0.0]
    )
    task = GatedDepthTask(0, n_train=256, n_val=128, n_test=128, units=16, dropout=0.0,
                          gate_init=[0.25, 0.5, 0.75, 0.25, 0.5, 0.75])  # fmt: skip
    torch.manual_seed(0)
    model = task.build_model()
    assert model.gates == [0.25, 0.5, 0.75, 0.25, 0.5, 0.75]  # per-block priors
    x = task.x_train[:32]
    model.eval()
    base = model(x)
    block = model.blocks[0]  # gate 0.25 of 16 units: units 4.. are not there
    with torch.no_grad():
        block.outer.weight[:, 4:] += 5.0
        block.inner.weight[4:] += 5.0
    assert torch.allclose(base, model(x))
    loss = torch.nn.functional.cross_entropy(model(x), task.y_train[:32])
    loss.backward()
    assert block.inner.weight.grad[4:].abs().max() == 0
    assert block.inner.weight.grad[:4].abs().max() > 0
    model.gates[0] = 1.0
    assert not torch.allclose(base, model(x))
    task.loss(model, next(task.train_batches()))
    assert task.train_log()["capacity"] == pytest.approx(
        16 * (1.0 + 0.5 + 0.75 + 0.25 + 0.5 + 0.75)
    )
    with pytest.raises(ConfigError, match="a list of task.blocks=6 numbers"):
        GatedDepthTask(0, gate_init=[0.5, 0.5])


@pytest.mark.parametrize("make", [GatedDepthTask, BasisEquationTask])
def test_the_metric_is_on_a_test_split_separate_from_validation(make):
    val = make(0, eval_split="val")
    test = make(0)
    assert test.eval_split == "test"
    torch.manual_seed(0)
    model = val.build_model()
    if make is BasisEquationTask:
        with torch.no_grad():
            model.weight.normal_()
        assert not torch.equal(test.f_test, test.f_val)
    else:
        model.eval()
        assert not torch.equal(test.x_test[:10], test.x_val[:10])
    with torch.no_grad():
        assert val.evaluate(model) != test.evaluate(model)
    with pytest.raises(ConfigError, match="task.eval_split=train"):
        make(0, eval_split="train")


def lasso(features: np.ndarray, y: np.ndarray, lam: float, sweeps: int = 100_000) -> np.ndarray:
    """Exact minimiser of mean((y - F w)^2) + lam ||w||_1 by cyclic coordinate descent on the
    Gram matrix (each coordinate step is the closed-form soft threshold), to a step below 1e-13."""
    gram = (features.T @ features / len(y)).tolist()
    corr = (features.T @ y / len(y)).tolist()
    p = len(corr)
    w = [0.0] * p
    for _ in range(sweeps):
        delta = 0.0
        for j in range(p):
            row = gram[j]
            rho = corr[j] - sum(row[k] * w[k] for k in range(p)) + row[j] * w[j]
            new = math.copysign(max(abs(rho) - lam / 2, 0.0), rho) / row[j]
            delta, w[j] = max(delta, abs(new - w[j])), new
        if delta < 1e-13:
            break
    return np.array(w)


def test_the_l1_strength_changes_which_bases_an_exact_lasso_selects():
    """On the task's default data the selected set depends on lambda: small lambda keeps
    correlated impostors, large lambda converges on {sin, x2} (the old data, noise 0.1 and
    1024 points, selected {sin, x2} for every lambda from 1e-3 to 1)."""
    task = BasisEquationTask(0)
    f, y = task.f_train.double().numpy(), task.y_train.double().numpy()
    errors = {}
    for lam in (1e-3, 1e-2, 0.3):
        w = lasso(f, y, lam)
        grad = -2 * f.T @ (y - f @ w) / len(y)  # KKT: |grad_j| <= lam, = lam where w_j != 0
        assert np.all(np.abs(grad) <= lam * (1 + 1e-6))
        selected = {
            b for b, v in zip(task.names, w, strict=True) if abs(v) >= task.select_threshold
        }
        errors[lam] = len(selected ^ task.true_set)
    assert errors[1e-3] > errors[1e-2] > errors[0.3]
