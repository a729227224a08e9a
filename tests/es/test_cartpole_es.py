"""ES on CartPole: the critic is not perturbed, progress reaches AE once, env steps counted."""

from __future__ import annotations

from pathlib import Path

import torch

from tasks.cartpole_drift import CartPoleDriftTask
from tests.helpers import read_curves, run_in_process


def test_es_parameters_are_the_actor() -> None:
    task = CartPoleDriftTask(seed=0, batch_size=2)
    model = task.build_model()
    ids = {id(p) for p in task.es_parameters(model)}
    assert ids == {id(p) for p in model.actor.parameters()}
    assert not ids & {id(p) for p in model.critic.parameters()}


def test_es_run_on_cartpole_leaves_the_critic_and_publishes_no_duplicate_reward(
    tmp_path: Path, monkeypatch
) -> None:  # noqa: ANN001
    from aebench import es_module

    seen: dict[str, object] = {}
    step = es_module.ESTaskModule.training_step

    def spy(self, batch, batch_idx):  # noqa: ANN001, ANN202
        if "critic" not in seen:
            seen["critic"] = [p.detach().clone() for p in self.model.critic.parameters()]
        out = step(self, batch, batch_idx)
        seen["reward"] = self.last_reward
        seen["model"] = self.model
        return out

    monkeypatch.setattr(es_module.ESTaskModule, "training_step", spy)
    record, _ = run_in_process(
        [
            "optimizer=openai_es",
            "task=cartpole_drift",
            "scale=smoke",
            "steps=2",
            "task.batch_size=2",
            "optimizer.population=4",
            "trainer.threads=1",
        ],
        tmp_path,
    )
    assert record.status == "completed", record.error
    critic = list(seen["model"].critic.parameters())
    assert all(torch.equal(a, b) for a, b in zip(seen["critic"], critic, strict=True))
    assert seen["reward"] is None  # the fitness is the return: AE reads it through the loss
    last = read_curves(tmp_path / "curves.csv")[-1]
    assert float(last["env_steps"]) > 0
    assert last["forward_equivalents"] == "10.0"  # 2 generations x (4 members + centre)
