"""Collecting records: nothing is dropped silently, nothing raises (analysis/collect.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from analysis.arms import annotate, field_values, partners
from analysis.collect import load_runs
from tests.analysis.synth import write_run


def test_problem_files_are_listed_and_kept_where_possible(tmp_path: Path) -> None:
    good = write_run(tmp_path, seed=0)
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "result.json").write_bytes(b"\xff\xfe not json")
    (tmp_path / "array").mkdir()
    (tmp_path / "array" / "result.json").write_text("[1, 2]")
    partial = write_run(tmp_path, seed=1)
    record = json.loads((partial / "result.json").read_text())
    del record["metric"]
    record["status"] = "running"
    (partial / "result.json").write_text(json.dumps(record))
    no_curves = write_run(tmp_path, seed=2)
    (no_curves / "curves.csv").unlink()
    bad_curves = write_run(tmp_path, seed=3)
    (bad_curves / "curves.csv").write_text("step,train_loss\n0,abc\n")
    rs = load_runs([tmp_path])
    lines = [p.line() for p in rs.problems]
    assert len(rs.table) == 4  # the two unreadable files have no row
    assert any("corrupt/result.json: unreadable (UnicodeDecodeError" in s for s in lines)
    assert any("array/result.json: unreadable (not a JSON object)" in s for s in lines)
    assert any(f"{partial}/result.json: partial (missing metric)" in s for s in lines)
    assert any(f"{no_curves}: curves (no curves.csv)" in s for s in lines)
    assert any("curves.csv: curves (unreadable: column 'train_loss'" in s for s in lines)
    status = dict(zip(rs.table["path"], rs.table["status"], strict=True))
    assert status[str(good)] == "completed" and status[str(partial)] == "partial"
    assert len(rs.usable()) == 3 and len(rs.traces) == 1


def test_same_config_on_two_data_sources_is_two_arms(tmp_path: Path) -> None:
    for ds in ("real", "synthetic"):
        for ae in (False, True):
            write_run(tmp_path, seed=0, ae=ae, data_source=ds)
    rs = load_runs([tmp_path])
    assert rs.table["arm"].nunique() == 4
    assert all(a.endswith(("@real", "@synthetic")) for a in rs.table["arm"])
    arms = annotate(rs)
    pairs = partners(arms)
    assert len(pairs) == 2
    for _, p in pairs.iterrows():
        assert p["arm_a"].split("@")[1] == p["arm_b"].split("@")[1]
    scale = field_values(rs, rs.table, "config.task.loss_scale")
    assert (scale == 1.0).all()


def test_labels_show_overrides_and_problems_group_task_overrides(tmp_path: Path) -> None:
    for scale in (0.1, 10):
        for ae in (False, True):
            write_run(tmp_path, ae=ae, task_extra={"loss_scale": scale}, name=f"{ae}-{scale}")
    rs = load_runs([tmp_path])
    arms = annotate(rs).sort_values("label")
    assert arms["label"].tolist() == [
        "adamw constant AE task.loss_scale=0.1",
        "adamw constant AE task.loss_scale=10",
        "adamw constant off task.loss_scale=0.1",
        "adamw constant off task.loss_scale=10",
    ]
    assert set(arms["method"]) == {"adamw constant AE", "adamw constant off"}
    assert set(arms["problem"]) == {"regression[loss_scale=0.1]", "regression[loss_scale=10]"}
    assert len(partners(arms)) == 2  # each AE arm with the off arm of its own loss scale


def test_batched_curves_equal_file_by_file_reading(tmp_path: Path) -> None:
    import numpy as np

    from analysis.curves import read_curves, read_many

    folders = [write_run(tmp_path, seed=s, ae=bool(s % 2)) for s in range(6)]  # two headers
    (folders[2] / "curves.csv").write_text("step,train_loss\n0,1.0\n1,oops\n")
    (folders[4] / "curves.csv").write_text("")
    paths = [f / "curves.csv" for f in folders]
    got = dict(read_many(paths))
    assert sorted(got) == list(range(6))
    assert isinstance(got[2], ValueError) and isinstance(got[4], ValueError)
    for i in (0, 1, 3, 5):
        one = read_curves(paths[i])
        assert got[i].names() == one.names()
        for name in one.names():
            assert np.array_equal(got[i].columns[name], one.columns[name], equal_nan=True)


def test_a_no_op_task_override_does_not_split_labels_or_problems(tmp_path: Path) -> None:
    # e10 sweeps task.loss_scale=0.1,1,10; e01 runs the loss_scale=1 arm without the override
    write_run(tmp_path, ae=True, task_extra={"loss_scale": 0.1}, name="sweep-0.1")
    write_run(
        tmp_path,
        ae=True,
        task_extra={"loss_scale": 1.0},
        name="plain",
        task_extra_on_command_line=False,
    )
    write_run(
        tmp_path,
        ae=False,
        task_extra={"loss_scale": 1.0},
        name="off",
        task_extra_on_command_line=False,
    )
    rs = load_runs([tmp_path])
    arms = annotate(rs)
    assert set(arms["problem"]) == {"regression[loss_scale=0.1]", "regression[loss_scale=1]"}
    plain = arms[arms["problem"] == "regression[loss_scale=1]"]
    assert set(plain["label"]) == {
        "adamw constant AE task.loss_scale=1",
        "adamw constant off task.loss_scale=1",
    }


def test_a_run_that_never_logged_a_plateau_exit_is_censored_at_its_budget(tmp_path: Path) -> None:
    # records from before the plateau task logged the column from the first step
    steps = [0.0, 10.0, 20.0, 30.0, 40.0]
    exits = [float("nan")] * 3 + [30.0, 30.0]
    write_run(
        tmp_path,
        task="plateau",
        seed=0,
        name="exits",
        curves={"step": steps, "plateau_exit_step": exits},
    )
    write_run(
        tmp_path,
        task="plateau",
        seed=1,
        name="never",
        curves={"step": steps, "saturation": [0.1] * 5},
    )
    write_run(tmp_path, task="regression", seed=0, name="other")
    t = load_runs([tmp_path]).table.set_index(["task", "seed"])
    assert t.loc[("plateau", 0), "plateau_exit"] == 30.0
    assert bool(t.loc[("plateau", 0), "plateau_exited"])
    assert t.loc[("plateau", 1), "plateau_exit"] == t.loc[("plateau", 1), "budget"]
    assert not bool(t.loc[("plateau", 1), "plateau_exited"])
    assert pd.isna(t.loc[("regression", 0), "plateau_exit"])  # a task without plateau exits


def test_clashing_labels_get_the_arm_hash_or_the_whole_id_when_ids_end_alike() -> None:
    from analysis.arms import _unique

    arms = pd.DataFrame(
        {
            "data_source": "synthetic",
            "task": "regression",
            "arm": ["r-11111111", "r-22222222", "r-cc-external", "r-cc-meta-external", "r-3"],
            "label": ["A", "A", "B", "B", "C"],
        }
    )
    _unique(arms, "label", ["data_source", "task"])
    assert arms["label"].tolist() == [
        "A #11111111",
        "A #22222222",
        "B #r-cc-external",  # "#external" twice would still clash (a crash in the profiles)
        "B #r-cc-meta-external",
        "C",
    ]


def test_an_ae_choice_other_than_on_is_named_in_the_label(tmp_path: Path) -> None:
    """ae=meta and ae=on are different arms: their labels say which (not both "AE")."""
    write_run(tmp_path, ae=False, name="off")
    write_run(tmp_path, ae=True, name="on")
    meta = write_run(tmp_path, ae=True, name="meta")
    path = meta / "result.json"
    record = json.loads(path.read_text())
    record["overrides"] = [o.replace("ae=on", "ae=meta") for o in record["overrides"]]
    record["arm"] += "-meta"
    record["config"]["ae"]["eta_a"] = 0.5  # the learned gains make it another config
    path.write_text(json.dumps(record))
    arms = annotate(load_runs([tmp_path]))
    assert sorted(arms["label"]) == [
        "adamw constant AE",
        "adamw constant AE meta",
        "adamw constant off",
    ]


def test_a_run_knows_its_experiment_and_a_filter_can_name_it(tmp_path: Path) -> None:
    """The ``experiment`` column comes from the run's ``experiment=<name>`` override (records
    and partial job folders alike), and a prediction filter on it keeps one experiment's runs
    where two ran the same configuration."""
    from analysis.verdicts import select

    for exp in ("e09_batch_size_sweep", "e10_gradient_scaling", None):
        folder = write_run(tmp_path, ae=True, name=f"run-{exp}")
        if exp is not None:
            path = folder / "result.json"
            record = json.loads(path.read_text())
            record["overrides"].append(f"experiment={exp}")
            path.write_text(json.dumps(record))
    partial = tmp_path / "partial" / ".hydra"
    partial.mkdir(parents=True)
    (partial / "overrides.yaml").write_text("- seed=1\n- experiment=e09_batch_size_sweep\n")
    (partial / "config.yaml").write_text("seed: 1\n")
    rs = load_runs([tmp_path])
    names = rs.table["path"].map(lambda p: Path(p).name)
    by_path = dict(zip(names, rs.table["experiment"], strict=True))
    assert by_path["run-e09_batch_size_sweep"] == "e09_batch_size_sweep"
    assert by_path["run-e10_gradient_scaling"] == "e10_gradient_scaling"
    assert pd.isna(by_path["run-None"])
    assert by_path["partial"] == "e09_batch_size_sweep"
    done = rs.table[rs.table["status"] == "completed"]
    kept = done[select(rs, done, {"experiment": ("e10_gradient_scaling",)})]
    assert [Path(p).name for p in kept["path"]] == ["run-e10_gradient_scaling"]
