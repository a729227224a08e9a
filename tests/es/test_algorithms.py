"""The ES optimizers without the harness: shaping, mirrored pairs, EGGROLL's low-rank path against
full-rank ES, and that OpenAI-ES and EGGROLL make progress on Rosenbrock and a regression."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.es import EGGROLL, OpenAIES, centered_ranks
from tasks.regression import RegressionTask
from tasks.rosenbrock import RosenbrockTask, rosenbrock


def test_centered_ranks_span_and_order() -> None:
    u = centered_ranks(torch.tensor([3.0, -1.0, 10.0, 0.5]))
    assert u.tolist() == pytest.approx([1 / 6, -0.5, 0.5, -1 / 6])
    assert float(u.sum()) == pytest.approx(0.0)


@pytest.mark.parametrize("cls", [OpenAIES, EGGROLL])
def test_antithetic_pairs_are_exact_negatives(cls: type) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(5, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    opt = cls(model.parameters(), lr=0.1, sigma=0.1, population=6, seed=3)
    opt.ask()
    for j in range(3):
        plus, minus = opt._member_noise(2 * j), opt._member_noise(2 * j + 1)
        for a, b in zip(plus, minus, strict=True):
            assert torch.equal(a, -b)
            assert a.abs().sum() > 0
    # the member loop writes theta +- sigma E and restores the centre bit for bit
    center = [p.detach().clone() for p in model.parameters()]
    with opt.member(1):
        moved = [p.detach().clone() for p in model.parameters()]
    assert any(not torch.equal(m, c) for m, c in zip(moved, center, strict=True))
    assert all(torch.equal(p, c) for p, c in zip(model.parameters(), center, strict=True))


def test_eggroll_perturbation_has_unit_entry_variance_and_rank_r() -> None:
    w = torch.nn.Parameter(torch.zeros(40, 30))
    opt = EGGROLL([w], lr=0.1, sigma=0.1, population=400, rank=3, seed=0)
    opt.ask()
    e = torch.stack([opt._member_noise(2 * j)[0] for j in range(200)])
    assert float(e.var()) == pytest.approx(1.0, abs=0.05)
    assert int(torch.linalg.matrix_rank(e[0])) == 3


def _small_regression() -> tuple[RegressionTask, torch.nn.Module, tuple]:
    task = RegressionTask(
        seed=0, batch_size=16, in_dim=6, out_dim=3, hidden=(5, 7), n_train=64, n_val=16
    )
    torch.manual_seed(0)
    model = task.build_model()
    batch = next(task.train_batches())
    return task, model, batch


def test_eggroll_full_rank_matches_full_rank_es_on_a_fixed_seed() -> None:
    """With rank = min(m, n) and factors built from the full-rank draws of OpenAI-ES on the same
    seed (A = sqrt(r) E, B = I, or the transpose), EGGROLL's members, fitnesses (one batched
    pass and the loop) and update equal OpenAI-ES's within float32 rounding."""
    task, model, batch = _small_regression()
    kw = {"lr": 0.05, "sigma": 0.1, "population": 8, "seed": 11}
    ref = OpenAIES(model.parameters(), **kw)
    ref.ask()
    fit_ref = ref.evaluate(lambda: task.fitness(model, batch))
    ref.tell(fit_ref)
    grads_ref = [p.grad.clone() for p in model.parameters()]

    egg = EGGROLL(model.parameters(), rank=1000, **kw)
    egg.attach(model)
    assert egg.can_batch
    egg.ask()
    built = []
    for j in range(kw["population"] // 2):
        row = []
        for p, eps in zip(egg.params, ref.noise(j), strict=True):
            if p.dim() == 2:
                m, n = p.shape
                r = min(m, n)
                if n <= m:  # A_j = sqrt(r) E_j (m x n), B_j = I_n
                    row.append((eps * math.sqrt(r), torch.eye(n)))
                else:  # A_j = sqrt(r) I_m, B_j = E_j^T (n x m)
                    row.append((math.sqrt(r) * torch.eye(m), eps.T.contiguous()))
            else:
                row.append(eps.clone())
        built.append(row)
    egg.noise = lambda j: built[j]  # the factors that reproduce OpenAI-ES's draws
    for i in range(kw["population"]):
        for e_egg, e_ref in zip(egg._member_noise(i), ref._member_noise(i), strict=True):
            torch.testing.assert_close(e_egg, e_ref, rtol=1e-5, atol=1e-6)
    fit_batched = egg.evaluate(lambda: task.fitness(model, batch), batched=True)
    fit_loop = egg.evaluate(lambda: task.fitness(model, batch), batched=False)
    torch.testing.assert_close(fit_batched, fit_ref, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(fit_loop, fit_ref, rtol=1e-5, atol=1e-6)
    egg.tell(fit_ref)
    for p, g in zip(model.parameters(), grads_ref, strict=True):
        torch.testing.assert_close(p.grad, g, rtol=1e-5, atol=1e-6)


def test_eggroll_batched_pass_equals_member_loop_at_low_rank() -> None:
    task, model, batch = _small_regression()
    egg = EGGROLL(model.parameters(), lr=0.05, sigma=0.1, population=10, rank=2, seed=4)
    egg.attach(model)
    egg.ask()
    batched = egg.evaluate(lambda: task.fitness(model, batch), batched=True)
    loop = egg.evaluate(lambda: task.fitness(model, batch), batched=False)
    torch.testing.assert_close(batched, loop, rtol=1e-5, atol=1e-6)
    assert egg.evaluations == 20


def _run(opt: torch.optim.Optimizer, fitness, batches, steps: int) -> None:  # noqa: ANN001
    for _ in range(steps):
        batch = next(batches)
        opt.ask()
        opt.tell(opt.evaluate(lambda b=batch: fitness(b), batched=True))
        opt.step()


@pytest.mark.parametrize("cls", [OpenAIES, EGGROLL])
def test_es_reduces_rosenbrock_dim10(cls: type) -> None:
    task = RosenbrockTask(seed=0, dim=10)
    model = task.build_model()
    f0 = rosenbrock(model.x).item()
    opt = cls(model.parameters(), lr=0.05, sigma=0.1, population=32, seed=0)
    _run(opt, lambda b: task.fitness(model, b), task.train_batches(), 40)
    assert rosenbrock(model.x).item() < 0.05 * f0


@pytest.mark.parametrize("cls", [OpenAIES, EGGROLL])
def test_es_reduces_the_regression_loss(cls: type) -> None:
    task = RegressionTask(seed=0, batch_size=64, hidden=(64,), n_train=1024, n_val=512)
    torch.manual_seed(0)
    model = task.build_model()
    before = task.evaluate(model)
    opt = cls(model.parameters(), lr=1e-3, sigma=0.02, population=32, seed=0)
    opt.attach(model)
    _run(opt, lambda b: task.fitness(model, b), task.train_batches(), 40)
    assert task.evaluate(model) < 0.9 * before
