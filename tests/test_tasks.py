"""The built-in tasks and the batch cycler."""

from __future__ import annotations

import pytest
import torch

from aebench.seeding import generator
from aebench.task import ConfigError, cycle_batches
from tasks.regression import RegressionTask
from tasks.rosenbrock import RosenbrockTask, rosenbrock


def test_cycle_batches_covers_each_epoch_once_and_reshuffles() -> None:
    x = torch.arange(10).float()
    it = cycle_batches((x, -x), batch_size=3, order=generator(0, "order"))
    epochs = [[next(it) for _ in range(3)] for _ in range(2)]
    for epoch in epochs:
        seen = torch.cat([b[0] for b in epoch])
        assert len(set(seen.tolist())) == 9  # 3 batches of 3, remainder dropped
        assert all(torch.equal(b[1], -b[0]) for b in epoch)  # tensors stay aligned
    assert not torch.equal(epochs[0][0][0], epochs[1][0][0])


def test_cycle_batches_rejects_batch_larger_than_data() -> None:
    with pytest.raises(ConfigError, match="batch_size=11"):
        next(cycle_batches((torch.zeros(10),), batch_size=11, order=generator(0, "order")))


def test_rosenbrock_optimum_and_start() -> None:
    assert rosenbrock(torch.ones(7)).item() == 0.0
    assert rosenbrock(torch.tensor([-1.2, 1.0])).item() == pytest.approx(24.2)
    task = RosenbrockTask(seed=0, dim=5, start=[-1.2, 1.0], start_jitter=0.0)
    assert task.start.tolist() == pytest.approx([-1.2, 1.0, -1.2, 1.0, -1.2])
    assert task.evaluate(task.build_model()) == pytest.approx(rosenbrock(task.start).item())


def test_rosenbrock_gradient_noise_is_unbiased() -> None:
    task = RosenbrockTask(seed=3, dim=3, grad_noise=0.5)
    model = task.build_model()
    batches = task.train_batches()
    grads = []
    for _ in range(2000):
        model.zero_grad()
        task.loss(model, next(batches)).backward()
        grads.append(model.x.grad.clone())
    model.zero_grad()
    rosenbrock(model.x).backward()
    stacked = torch.stack(grads)
    assert torch.allclose(stacked.mean(0), model.x.grad, atol=0.05)
    assert stacked.std(0).mean().item() == pytest.approx(0.5, rel=0.1)


def test_rosenbrock_rejects_one_dimension() -> None:
    with pytest.raises(ConfigError, match="task.dim=1"):
        RosenbrockTask(seed=0, dim=1)


def test_regression_data_has_unit_signal_and_stated_noise_floor() -> None:
    task = RegressionTask(seed=0, n_train=4096, n_val=4096, noise=0.1)
    assert task.y_train.var().item() == pytest.approx(1.01, rel=0.1)
    # the best possible predictor (the true map) has val MSE = noise^2
    g = task.rng("data")
    a = torch.randn(task.out_dim, task.in_dim, generator=g)
    clean = task.x_val @ a.T / task.in_dim**0.5
    assert ((clean - task.y_val) ** 2).mean().item() == pytest.approx(0.01, rel=0.1)
