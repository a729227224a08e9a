"""Host reads per training step of a whole job (issue 15, docs/performance.md section 3).

A job through the real runner, with ``Tensor.item``/``tolist``/``__float__``/``cpu`` counted
from the end of ``on_train_start`` to ``on_train_end`` (Lightning's teardown moves the model
to the CPU after it), evaluations excluded (they happen
at their cadence): ae=off reads the training loss once per step (the run recorder); ae=on adds
one read per AE update and none between updates. SGDm: torch's Adam reads its host step
counters with ``.item()`` inside its own step, which is the optimizer's, not the harness's.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from aebench.module import TaskModule
from aebench.recorder import RunRecorder
from tests.helpers import run_in_process

STEPS = 24


def _law_arithmetic(frame) -> bool:  # noqa: ANN001
    """A read made by the coefficient update: the laws run on float64 host tensors the
    controller builds from Python floats (``torch.tensor(z)``), never on the device, so turning
    their results back into floats is no device read."""
    code = frame.f_code
    return code.co_filename.endswith(("ae/laws.py", "ae/gauge.py")) or code.co_name in (
        "_update_group",
        "_energy_coordinates",
    )


class _Reads:
    names = ("item", "tolist", "__float__", "cpu")

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        self.active = False
        for name in self.names:
            original = getattr(torch.Tensor, name)

            def wrapped(t, *a, _orig=original, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
                if self.active and not _law_arithmetic(sys._getframe(1)):
                    self.count += 1
                return _orig(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, wrapped)
        start, evaluate, end = (
            RunRecorder.on_train_start,
            RunRecorder._evaluate,
            TaskModule.on_train_end,
        )

        def on_train_start(rec, *a):  # noqa: ANN001, ANN002, ANN202
            start(rec, *a)
            self.active = True

        def _evaluate(rec, *a):  # noqa: ANN001, ANN002, ANN202
            was, self.active = self.active, False
            try:
                return evaluate(rec, *a)
            finally:
                self.active = was

        def on_train_end(module):  # noqa: ANN001, ANN202 (before Lightning's teardown .cpu())
            self.active = False
            return end(module)

        monkeypatch.setattr(RunRecorder, "on_train_start", on_train_start)
        monkeypatch.setattr(RunRecorder, "_evaluate", _evaluate)
        monkeypatch.setattr(TaskModule, "on_train_end", on_train_end)


@pytest.mark.parametrize(
    "ae,expected",
    [
        (["ae=off"], STEPS),  # the one loss read per step
        (["ae=on", "ae.every=4"], STEPS + STEPS // 4),  # + one transfer per AE update
    ],
)
def test_host_reads_per_step(monkeypatch, tmp_path: Path, ae, expected) -> None:  # noqa: ANN001
    reads = _Reads(monkeypatch)
    overrides = [
        "task=regression",
        "optimizer=sgdm",
        "scale=smoke",
        f"steps={STEPS}",
        "scale.evals=3",
        "scale.log_every=6",
        "scale.progress_lines=0",
        *ae,
    ]
    record, _ = run_in_process(overrides, tmp_path, reraise=True)
    assert record.status == "completed"
    assert reads.count == expected
