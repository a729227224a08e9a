"""The experiment catalogue (orchestration/catalog.py): descriptions from the configs'
headers, costs from the records of each experiment, and the page that lists them."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from aebench.paths import config_dir
from orchestration.catalog import Entry, cost, description, measured_walls, render


def _record(folder: Path, experiment: str, scale: str, wall: float, status: str) -> None:
    folder.mkdir(parents=True)
    rec = {
        "status": status,
        "scale": scale,
        "wall_s": wall,
        "arm": "a",
        "seed": 0,
        "overrides": ["seed=0", f"experiment={experiment}", f"scale={scale}"],
    }
    (folder / "result.json").write_text(json.dumps(rec))
    (folder / "curves.csv").write_text("step\n")


def test_description_drops_the_package_line_and_the_command():
    lines = description(config_dir() / "experiment" / "e07_induced_oscillation.yaml")
    assert lines[0].startswith("Protocol C.7")
    assert not any("@package" in x or x.startswith("aebench -m") for x in lines)


def test_measured_walls_keep_final_records_of_each_experiment(tmp_path: Path):
    _record(tmp_path / "0", "e07_x", "cpu", 4.0, "completed")
    _record(tmp_path / "1", "e07_x", "cpu", 8.0, "diverged")
    _record(tmp_path / "2", "e07_x", "cpu", 99.0, "failed")  # not a finished run: not a cost
    _record(tmp_path / "3", "e01_y", "smoke", 1.0, "completed")
    walls = measured_walls([tmp_path])
    assert sorted(walls[("e07_x", "cpu")]) == [4.0, 8.0]
    assert walls[("e01_y", "smoke")] == [1.0]


def test_cost_is_jobs_times_the_median_wall_or_says_not_measured():
    e = Entry(
        "e07_x",
        ["A test."],
        {"smoke": 2, "cpu": 20, "paper": 20},
        {"smoke": 40, "cpu": 3000, "paper": 50000},
        ["resonance"],
    )
    e.walls["cpu"] = [5.0, 6.0, 7.0]
    assert cost(e, "cpu") == "20 jobs x 6.0 s = 2 min (median of 3 runs)"
    assert cost(e, "paper") == "20 jobs x 50000 steps; not measured"
    page = render([e], [Path("runs")])
    assert "| [e07_x](#e07_x) | resonance | 2 / 20 / 20 |" in page
    assert "aebench -m experiment=e07_x scale=cpu" in page


def test_an_experiment_without_records_is_estimated_from_its_tasks_runs(tmp_path: Path):
    from orchestration.catalog import _estimate

    _record(tmp_path / "0", "e01_y", "cpu", 4.0, "completed")
    walls = measured_walls([tmp_path], by="task")
    assert walls == {}  # the record names no task
    walls = {("regression", "cpu"): [2.0, 4.0, 6.0], ("rosenbrock", "cpu"): [10.0]}
    assert _estimate(["regression"] * 3 + ["rosenbrock"], "cpu", walls) == (22.0, 4)
    assert _estimate(["wikitext"], "cpu", walls) is None
    e = Entry(
        "e16_x",
        [],
        {"smoke": 4, "cpu": 4, "paper": 4},
        {"smoke": 40, "cpu": 3000, "paper": 50000},
        [],
    )
    e.estimates["cpu"] = (22.0, 4)
    assert cost(e, "cpu") == (
        "4 jobs, ~22 s (estimated from 4 runs of the same tasks in other experiments)"
    )


def test_also_feeds_reads_the_headers_feeds_line():
    from orchestration.catalog import also_feeds

    lines = ["Metrics: AUC.", "Feeds: drift_recovery, drift_time_to_target (another", "stratum)."]
    known = ["drift_recovery", "drift_time_to_target", "static_speedup"]
    assert also_feeds(lines, known, ["drift_recovery"]) == ["drift_time_to_target"]
    assert also_feeds(["No feeds here."], known, []) == []


def _filter_values(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


def test_every_feeds_line_passes_the_filters_of_the_predictions_it_names():
    """An experiment's header that says it feeds a prediction (its own or another stratum) is
    let through by that prediction's ``runs`` filter on the experiment and its task: a header
    that promises a stratum the filter drops (e09_fmnist's gauge_batch_size, e13_fmnist's
    hyper_cliff once) fails here, before a run is spent on it."""
    import yaml

    from orchestration.catalog import also_feeds, predictions_by_experiment

    folder = config_dir() / "predictions"
    raws = {p.stem: yaml.safe_load(p.read_text()) or {} for p in folder.glob("*.yaml")}
    filters = {name: raw.get("runs") or {} for name, raw in raws.items()}
    left_out = {name: raw.get("runs_not") or {} for name, raw in raws.items()}
    owners = predictions_by_experiment(folder)
    known = sorted(filters)
    checked = 0
    for path in sorted((config_dir() / "experiment").glob("e[0-9][0-9]_*.yaml")):
        name = path.stem
        text = path.read_text()
        task = re.search(r"override /task: (\w+)", text)
        own = owners.get(name, [])
        for prediction in own + also_feeds(description(path), known, own):
            runs = filters[prediction]
            if "experiment" in runs:
                assert name in _filter_values(runs["experiment"]), (name, prediction)
            if "task" in runs and task is not None:
                assert task.group(1) in _filter_values(runs["task"]), (name, prediction)
            if list(left_out[prediction]) == ["experiment"]:
                assert name not in _filter_values(left_out[prediction]["experiment"])
            checked += 1
    assert checked >= 30


def test_every_experiment_a_filter_names_exists():
    import yaml

    experiments = {p.stem for p in (config_dir() / "experiment").glob("*.yaml")}
    for path in (config_dir() / "predictions").glob("*.yaml"):
        raw = yaml.safe_load(path.read_text()) or {}
        for key in ("runs", "runs_not"):
            for name in _filter_values((raw.get(key) or {}).get("experiment", [])):
                assert name in experiments, (path.name, key, name)


@pytest.mark.slow
def test_the_committed_catalogue_is_what_the_sources_make():
    """docs/experiments.md is ``python -m orchestration.catalog --out docs/experiments.md``
    (no records: every cost 'not measured'); ~15-25 s of composing every experiment."""
    from orchestration.catalog import collect

    page = Path(__file__).resolve().parents[1] / "docs" / "experiments.md"
    assert render(collect([]), []) == page.read_text(), "regenerate docs/experiments.md"
