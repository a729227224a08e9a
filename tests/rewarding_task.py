"""A regression task that reports a reward and an extra curve column (tests the hooks)."""

from __future__ import annotations

from tasks.regression import RegressionTask


class RewardingRegression(RegressionTask):
    def loss(self, model, batch):  # noqa: ANN001, ANN201
        loss = super().loss(model, batch)
        self._reward = -float(loss.detach())
        return loss

    def reward(self) -> float | None:
        return self._reward

    def train_log(self) -> dict[str, float]:
        return {"train_reward": self._reward}
