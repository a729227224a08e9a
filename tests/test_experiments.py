"""The protocol's experiment configs (conf/experiment/eNN_*.yaml): each composes into valid jobs,
sweeps enough seeds at the evidence scale, names the predictions' experiments, and runs at
scale=smoke (one job in-process here; the whole one-seed sweep in a subprocess under ``slow``)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from omegaconf import open_dict

from aebench.paths import config_dir
from aebench.validation import validate_config
from analysis.predictions import default_predictions_dir, load_predictions
from orchestration.evidence import EXPERIMENT, Composer, expand
from tests.helpers import ROOT, run_cli, run_in_process

EXPERIMENTS = sorted(
    p.stem for p in (config_dir() / "experiment").glob("*.yaml") if EXPERIMENT.match(p.stem)
)


@pytest.fixture(scope="module")
def composer():
    c = Composer()
    yield c
    c.close()


def test_every_protocol_experiment_has_a_config():
    numbers = {int(name[1:3]) for name in EXPERIMENTS}
    # the 18 protocol experiments of seed 002 (sections A-L) and the AE-Swarm one (19)
    assert set(range(1, 20)) <= numbers, sorted(set(range(1, 20)) - numbers)


def test_every_prediction_names_an_existing_experiment():
    for pred in load_predictions([default_predictions_dir()]):
        assert pred.experiment in EXPERIMENTS, (pred.name, pred.experiment)
        assert f"experiment={pred.experiment}" in pred.sweep, (pred.name, pred.sweep)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_documents_its_command(name):
    text = (config_dir() / "experiment" / f"{name}.yaml").read_text()
    assert text.startswith("# @package _global_"), name
    assert f"aebench -m experiment={name}" in text, name
    assert re.search(r"^hydra:\n  sweeper:\n    params:", text, re.M), name


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_sweeps_at_least_five_seeds(composer, name):
    jobs = expand(composer, name, [f"experiment={name}", "scale=cpu"])
    seeds = {o.split("=", 1)[1] for job in jobs for o in job if o.startswith("seed=")}
    assert len(seeds) >= 5, (name, seeds)
    arms = {tuple(o for o in job if not o.startswith("seed=")) for job in jobs}
    assert len(arms) >= 2, (name, arms)  # an experiment compares arms


def _compose_and_validate(composer: Composer, jobs: list[list[str]]) -> None:
    for job in jobs:
        cfg = composer.compose(job)
        assert cfg.scale.name == "smoke"
        assert cfg.seed == 0
        with open_dict(cfg):
            del cfg["hydra"]
        validate_config(cfg)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_last_job_composes_and_validates_at_smoke(composer, name):
    # the first job runs below; the last one differs from it in every swept key
    jobs = expand(composer, name, [f"experiment={name}", "scale=smoke", "seed=0"])
    _compose_and_validate(composer, jobs[-1:])


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_every_job_composes_and_validates_at_smoke(composer, name):
    jobs = expand(composer, name, [f"experiment={name}", "scale=smoke", "seed=0"])
    _compose_and_validate(composer, jobs)


@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_first_job_runs_at_smoke(name, tmp_path: Path):
    composer = Composer()  # its own: run_in_process re-initialises Hydra's global state
    try:
        job = expand(composer, name, [f"experiment={name}", "scale=smoke", "seed=0"])[0]
    finally:
        composer.close()
    record, _ = run_in_process([*job, "trainer.threads=1"], tmp_path, reraise=True)
    assert record.status in ("completed", "diverged"), (name, record.status, record.error)
    assert record.steps > 0
    assert (tmp_path / "curves.csv").exists()


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPERIMENTS)
def test_experiment_whole_sweep_runs_at_smoke(name, tmp_path: Path):
    proc = run_cli(
        "-m",
        f"experiment={name}",
        "scale=smoke",
        "seed=0",
        "trainer.threads=1",
        f"hydra.sweep.dir={tmp_path}",
        cwd=ROOT,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    records = list(tmp_path.glob("*/result.json"))
    assert records
    assert all('"status": "failed"' not in p.read_text() for p in records), name
