"""A task that raises mid-run, to test that a failure is recorded (not a real task)."""

from __future__ import annotations

from tasks.regression import RegressionTask


class FailingRegression(RegressionTask):
    fail_at_step = 5

    def __init__(self, *args, **kwargs) -> None:  # noqa: ANN002, ANN003
        super().__init__(*args, **kwargs)
        self.calls = 0

    def loss(self, model, batch):  # noqa: ANN001, ANN201
        self.calls += 1
        if self.calls > self.fail_at_step:
            raise RuntimeError("boom: injected failure")
        return super().loss(model, batch)
