"""task.loss_scale reaches the ES fitness (visible with shaping=none; ranks are invariant)."""

from __future__ import annotations

from pathlib import Path

import pytest


def _first_grad_norm(tmp_path: Path, monkeypatch, scale: float) -> float:  # noqa: ANN001
    from aebench import es_module

    seen: list[float] = []
    step = es_module.ESTaskModule.training_step

    def spy(self, batch, batch_idx):  # noqa: ANN001, ANN202
        out = step(self, batch, batch_idx)
        if not seen:
            es = self.optimizers().optimizer
            seen.append(sum(float(p.grad.pow(2).sum()) for p in es.params) ** 0.5)
        return out

    monkeypatch.setattr(es_module.ESTaskModule, "training_step", spy)
    from tests.helpers import run_in_process

    record, _ = run_in_process(
        [
            "optimizer=openai_es",
            "optimizer.shaping=none",
            "task=rosenbrock",
            "task.dim=10",
            "scale=smoke",
            "steps=1",
            f"task.loss_scale={scale}",
            "trainer.threads=1",
        ],
        tmp_path,
    )
    assert record.status == "completed", record.error
    return seen[0]


def test_loss_scale_multiplies_the_raw_fitness_estimate(tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    one = _first_grad_norm(tmp_path / "a", monkeypatch, 1.0)
    ten = _first_grad_norm(tmp_path / "b", monkeypatch, 10.0)
    assert ten == pytest.approx(10 * one, rel=1e-4)
