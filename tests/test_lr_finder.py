"""schedule=lr_finder (baselines/lr_finder.py): the range test, its suggestion, its isolation
from the training run, and its place in the run record."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from aebench.runner import build_model, build_task
from aebench.seeding import tensor_hash
from aebench.validation import ConfigError, validate_config
from baselines.lr_finder import LRFinderSchedule, lr_at, range_test, suggest
from tests.helpers import compose_config, read_curves, run_in_process

FAST = ["schedule.num_steps=30", "schedule.min_lr=1e-4", "schedule.max_lr=10"]


@pytest.fixture(autouse=True)
def _one_thread() -> object:
    """One intra-op thread, as every aebench run here (on a shared machine more threads make
    these tiny steps tens of times slower)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_lr_grows_exponentially_from_min_to_max() -> None:
    lrs = [lr_at(i, 1e-4, 1.0, 5) for i in range(5)]
    assert lrs == pytest.approx([1e-4, 1e-3, 1e-2, 1e-1, 1.0])


def test_suggestion_rules_on_a_known_curve() -> None:
    """A curve falling slowly, then steeply (steepest at lr 1e-2), bottoming at lr 1e-1."""
    lrs = [10.0**k for k in range(-6, 1)]  # 1e-6 ... 1
    smoothed = [1.0, 0.99, 0.97, 0.9, 0.5, 0.3, 0.8]
    lr, rule, min_lr, steepest = suggest(lrs, smoothed, "min_div10")
    assert (rule, min_lr) == ("min_div10", 1e-1) and lr == pytest.approx(1e-2)
    # np.gradient's central difference at 1e-2: (0.3 - 0.9) / 2 decades, the most negative
    assert steepest == pytest.approx(1e-2)
    lr, rule, _, _ = suggest(lrs, smoothed, "steepest")
    assert (rule, lr) == ("steepest", pytest.approx(1e-2))
    # a minimum at the second point leaves no slope to take: min_div10 is used, and said so
    lr, rule, _, steepest = suggest(lrs[:3], [1.0, 0.5, 0.9], "steepest")
    assert rule == "min_div10" and steepest is None and lr == pytest.approx(1e-6)


def _quadratic_problem() -> tuple[torch.nn.Parameter, torch.optim.Optimizer]:
    p = torch.nn.Parameter(torch.ones(4, dtype=torch.float64))
    return p, torch.optim.SGD([p], lr=1.0)


def test_range_test_stops_when_the_loss_explodes() -> None:
    """f = ||x||^2 / 2 (curvature 1): GD diverges above lr 2, so a test to lr 100 stops
    early, a little above lr 2, and the suggestion lies below the stability limit."""
    p, opt = _quadratic_problem()
    batches = iter(lambda: None, 1)  # endless Nones: the loss needs no batch
    result = range_test(opt, lambda _b: 0.5 * (p * p).sum(), batches, 1e-3, 100.0, 100, 0.5)
    assert result.stopped_early and result.steps < 100
    assert 2.0 < result.lrs[-1] < 20.0
    assert result.lr < 2.0 and result.lr == pytest.approx(result.min_loss_lr / 10)
    assert len(result.losses) == len(result.smoothed) == result.steps


def test_range_test_stops_at_a_nonfinite_loss() -> None:
    p, opt = _quadratic_problem()
    calls = iter(range(1000))

    def loss(_b: object) -> torch.Tensor:
        i = next(calls)
        return 0.5 * (p * p).sum() * (math.inf if i == 5 else 1.0)

    result = range_test(opt, loss, iter(lambda: None, 1), 1e-3, 1.0, 50, 0.9)
    assert result.stopped_early and result.steps == 5


def test_range_test_leaves_model_task_and_every_rng_as_they_were() -> None:
    """The test trains a copy on a fresh task: the run's model, its task's batch iterator and
    the global RNG streams (torch, Python, NumPy) are exactly as before."""
    cfg, _ = compose_config(["task=regression", "scale=smoke", "schedule=lr_finder", *FAST])
    task = build_task(cfg)
    model = build_model(task, cfg.seed)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    batches = task.train_batches()
    torch.manual_seed(123)
    random.seed(5)
    np.random.seed(7)
    states = (torch.get_rng_state(), random.getstate(), np.random.get_state()[1].copy())
    make_opt = lambda params, lr=1.0: torch.optim.SGD(params, lr=lr)  # noqa: E731
    finder = LRFinderSchedule(min_lr=1e-4, max_lr=10.0, num_steps=20)
    result = finder.range_test(
        lambda: build_task(cfg), model, make_opt, 1.0, torch.device("cpu"), seed=1
    )
    assert result.steps >= 2
    assert torch.equal(torch.get_rng_state(), states[0])
    assert random.getstate() == states[1]
    assert np.array_equal(np.random.get_state()[1], states[2])
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k])
    fresh = build_task(cfg).train_batches()
    assert all(torch.equal(a, b) for a, b in zip(next(batches), next(fresh), strict=True))


@pytest.mark.slow
def test_training_after_the_test_is_the_constant_run_at_the_suggested_lr(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The whole isolation claim at once: a schedule=lr_finder run has the curves of
    schedule=constant optimizer.lr=<its suggestion>, the same init_hash and first batch, starts
    from the initial weights (checked directly), and records the suggestion and the test's
    step count outside the training budget."""
    from aebench.recorder import RunRecorder

    seen: list[dict[str, torch.Tensor]] = []
    original = RunRecorder.on_train_start

    def spy(self, trainer, pl_module) -> None:  # noqa: ANN001
        seen.append({k: v.detach().clone() for k, v in pl_module.model.state_dict().items()})
        original(self, trainer, pl_module)

    monkeypatch.setattr(RunRecorder, "on_train_start", spy)
    base = ["task=regression", "scale=smoke", "trainer.threads=1", "seed=3"]
    rec, on_disk = run_in_process([*base, "schedule=lr_finder", *FAST], tmp_path / "f")
    assert rec.status == "completed"
    info = on_disk["extra"]["lr_finder"]
    assert info["steps"] >= 2 and info["lr"] > 0 and info["rule"] == "min_div10"
    assert on_disk["steps"] == on_disk["budget"] == 40
    assert (tmp_path / "f" / "lr_finder.csv").is_file()
    cfg, _ = compose_config([*base])
    init = build_model(build_task(cfg), 3).state_dict()
    assert all(torch.equal(seen[0][k], v) for k, v in init.items())
    assert on_disk["pairing"]["init_hash"] == tensor_hash(*init.values())

    _, const = run_in_process(
        [*base, "schedule=constant", f"optimizer.lr={info['lr']!r}"], tmp_path / "c"
    )
    assert const["pairing"] == on_disk["pairing"]
    a, b = read_curves(tmp_path / "f" / "curves.csv"), read_curves(tmp_path / "c" / "curves.csv")
    assert [r["train_loss"] for r in a] == [r["train_loss"] for r in b]
    assert [r["val_mse"] for r in a] == [r["val_mse"] for r in b]
    assert float(a[1]["lr"]) == info["lr"]


@pytest.mark.parametrize(
    "overrides,needle",
    [
        (["schedule=lr_finder", "swarm=pbt"], "swarm"),
        (["schedule=lr_finder", "optimizer=sgd_hd"], "optimizer=sgd_hd"),
        (["schedule=lr_finder", "schedule.min_lr=1", "schedule.max_lr=0.1"], "schedule.max_lr"),
        (["schedule=lr_finder", "schedule.smooth=1"], "schedule.smooth"),
        (["schedule=lr_finder", "schedule.then=step"], "schedule.then=step"),
    ],
)
def test_bad_combinations_fail_with_one_line(overrides: list[str], needle: str) -> None:
    cfg, _ = compose_config(overrides)
    with pytest.raises(ConfigError, match=needle) as err:
        validate_config(cfg)
    assert "\n" not in str(err.value)


def test_then_cosine_builds_the_cosine_schedule() -> None:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = LRFinderSchedule(then="cosine", warmup_frac=0.1)(opt, 100)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1)  # warmup step 1 of 10
    for _ in range(99):
        opt.step()
        sched.step()
    assert opt.param_groups[0]["lr"] < 1e-3
