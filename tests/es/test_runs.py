"""ES optimizers inside the harness: records, curves, AE on ES, pairing and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from aebench.validation import ConfigError, validate_config
from tests.helpers import compose_config, read_curves, run_in_process

ROSEN = ["task=rosenbrock", "task.dim=10", "scale=smoke", "trainer.threads=1"]


@pytest.mark.parametrize("opt", ["openai_es", "eggroll"])
def test_es_run_records_generations_and_evaluations(opt: str, tmp_path: Path) -> None:
    record, on_disk = run_in_process([f"optimizer={opt}", *ROSEN], tmp_path)
    assert record.status == "completed", record.error
    assert on_disk["fitness_evaluations"] == 40 * 33  # smoke budget x (population + centre)
    curves = read_curves(tmp_path / "curves.csv")
    first = float(curves[0]["val_f"])
    assert record.metric.final < 0.05 * first
    assert curves[-1]["fitness_evaluations"] == "1320.0"
    assert curves[-1]["forward_equivalents"] == "1320.0"
    assert {"sigma", "fitness_mean", "fitness_best", "es_curvature"} <= {
        k for r in curves for k, v in r.items() if v
    }


def test_ae_on_es_moves_sigma_and_adds_no_noise_kind(tmp_path: Path) -> None:
    record, on_disk = run_in_process(["optimizer=eggroll", "ae=on", *ROSEN], tmp_path)
    assert record.status == "completed", record.error
    curves = read_curves(tmp_path / "curves.csv")
    sigmas = {float(r["sigma"]) for r in curves if r.get("sigma")}
    assert float(curves[0]["sigma"]) == 0.1  # the configured task.lr.es_sigma
    assert len(sigmas) > 1 and all(0.01 - 1e-12 <= s <= 1.0 + 1e-12 for s in sigmas)
    assert "rho" in curves[0]


def test_es_and_gradient_arms_of_a_seed_are_paired(tmp_path: Path) -> None:
    _, es = run_in_process(["optimizer=openai_es", *ROSEN, "steps=2"], tmp_path / "es")
    _, sgd = run_in_process(["optimizer=sgdm", *ROSEN, "steps=2"], tmp_path / "sgd")
    assert es["pairing"] == sgd["pairing"]
    assert sgd["fitness_evaluations"] == 0
    # the compute axis: a gradient step costs 3 forward-equivalents, a generation N + 1 = 33
    assert read_curves(tmp_path / "sgd" / "curves.csv")[-1]["forward_equivalents"] == "6.0"
    assert read_curves(tmp_path / "es" / "curves.csv")[-1]["forward_equivalents"] == "66.0"


@pytest.mark.parametrize(
    ("overrides", "needle"),
    [
        (["optimizer=cma_es", "ae=on", "task=rosenbrock"], "ae=on with optimizer=cma_es"),
        (["optimizer=openai_es", "task=cifar_corruptions"], "optimizer.lr=null"),
        (["optimizer=eggroll", "swarm=on", "ae=on"], "swarm with"),
        (["optimizer=openai_es", "optimizer.population=7"], "optimizer.population=7"),
        (["optimizer=openai_es", "ae=on", "ae.noise.sigma_init=0.1"], "ae.noise.sigma_init"),
        (["optimizer=cma_es", "task=rosenbrock", "schedule=cosine"], "schedule=cosine"),
    ],
)
def test_es_config_errors_are_one_line(overrides: list[str], needle: str) -> None:
    cfg, _ = compose_config(overrides)
    with pytest.raises(ConfigError) as err:
        validate_config(cfg)
    assert needle in str(err.value) and "\n" not in str(err.value)


@pytest.mark.slow
def test_cma_es_solves_rosenbrock_dim10_at_cpu_scale(tmp_path: Path) -> None:
    """pycma on 10-D Rosenbrock from the task's start: f < 1e-8 within its usual budget (here
    ~6000 evaluations of its default maxiter 100 + 150 (n+3)^2 / sqrt(popsize) ~ 8100 x 10)."""
    record, on_disk = run_in_process(
        ["optimizer=cma_es", "task=rosenbrock", "task.dim=10", "scale=cpu", "trainer.threads=1"],
        tmp_path,
    )
    assert record.status == "completed", record.error
    assert on_disk["metric"]["best"] < 1e-8
    assert 0 < on_disk["fitness_evaluations"] < 20_000
