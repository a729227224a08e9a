"""AE through the whole suite (Hydra config -> Lightning callback -> run record): the ablation
mask is exact, and AE with every law and drive term off is the vanilla optimizer."""

from __future__ import annotations

from pathlib import Path

import pytest

from aebench.ae.config import law_names
from tests.ae.test_ablation import PERTURB
from tests.helpers import read_curves, run_in_process

BASE = ["task=regression", "scale=smoke", "steps=30", "ae.signals.warmup=5"]
VANILLA_COLUMNS = ("step", "train_loss", "val_mse", "lr", "momentum", "beta1", "beta2", "eps")


def vanilla_view(out: Path) -> list[dict[str, str]]:
    return [{k: r[k] for k in VANILLA_COLUMNS if k in r} for r in read_curves(out / "curves.csv")]


@pytest.mark.parametrize("optimizer", ["sgdm", "adamw"])
def test_all_laws_off_is_the_vanilla_optimizer(optimizer: str, tmp_path: Path) -> None:
    common = ["task=regression", f"optimizer={optimizer}", "scale=smoke"]
    _, off = run_in_process([*common, "ae=off"], tmp_path / "off")
    all_off = [f"ae.laws.{law}=false" for law in law_names()]
    _, on = run_in_process([*common, "ae=on", *all_off], tmp_path / "on")
    assert on["ae"] is True and on["ablation"] == "+".join(f"no_{n}" for n in law_names())
    assert vanilla_view(tmp_path / "on") == vanilla_view(tmp_path / "off")
    assert on["metric"] == off["metric"]


def test_ae_on_actually_moves_the_coefficients(tmp_path: Path) -> None:
    _, rec = run_in_process([*BASE, "optimizer=sgdm", "ae=on"], tmp_path)
    rows = read_curves(tmp_path / "curves.csv")
    assert rec["status"] == "completed"
    assert len({r["lr"] for r in rows}) > 1
    assert {"T", "V", "R", "rho", "S", "gamma", "budget_lambda", "energy", "sigma"} <= set(rows[0])


@pytest.mark.parametrize("law", law_names())
def test_law_off_ignores_its_gains(law: str, tmp_path: Path) -> None:
    off = [*BASE, "optimizer=adamw", "ae=on", f"ablation=no_{law}"]
    perturbed = [f"ae.{key}={value}" for key, value in PERTURB[law].items()]
    _, a = run_in_process(off, tmp_path / "a")
    _, b = run_in_process([*off, *perturbed], tmp_path / "b")
    assert a["ablation"] == b["ablation"] == f"no_{law}"
    curves_a = (tmp_path / "a" / "curves.csv").read_text()
    assert curves_a == (tmp_path / "b" / "curves.csv").read_text()
