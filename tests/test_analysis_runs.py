"""The runs table reads records alone and lists what it cannot read."""

from __future__ import annotations

from pathlib import Path

from analysis.runs import arm_summary, collect, main
from tests.helpers import run_in_process


def test_collect_lists_runs_and_unreadable_records(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    for seed in (0, 1):
        run_in_process(["task=rosenbrock", "steps=3", f"seed={seed}"], tmp_path / f"r{seed}")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "result.json").write_text("{not json")
    table, problems = collect([tmp_path])
    assert len(table) == 2 and set(table.seed) == {0, 1}
    assert len(problems) == 1 and "broken" in problems[0]
    summary = arm_summary(table)
    assert len(summary) == 1 and summary.runs.iloc[0] == 2 and summary.completed.iloc[0] == 2
    assert main([str(tmp_path)]) == 0
    out = capsys.readouterr()
    assert "rosenbrock" in out.out and "unreadable" in out.err


def test_missing_path_is_one_line_error(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    assert main([str(tmp_path / "nope")]) == 2
    assert "no such run or sweep folder" in capsys.readouterr().err
