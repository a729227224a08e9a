"""Issue 21 item 1 and the decoupled step: tie-averaged ranks, Adam, seeded noise."""

from __future__ import annotations

import pytest
import torch

from baselines.es import EGGROLL, OpenAIES, centered_ranks
from tasks.rosenbrock import RosenbrockTask, rosenbrock


def test_tied_values_share_their_average_rank() -> None:
    u = centered_ranks(torch.tensor([1.0, 2.0, 2.0, 3.0, 2.0]))
    # ranks 0, 2, 2, 4, 2 over n - 1 = 4
    assert u.tolist() == pytest.approx([-0.5, 0.0, 0.0, 0.5, 0.0])
    assert centered_ranks(torch.zeros(6)).abs().max() == 0


@pytest.mark.parametrize("cls", [OpenAIES, EGGROLL])
def test_flat_fitness_gives_a_zero_update(cls: type) -> None:
    """The issue's reproduction: 1.255 with ties broken by position; theta must not drift."""
    w = torch.nn.Parameter(torch.zeros(1000))
    o = cls([w], lr=0.1, sigma=0.1, population=32)
    o.ask()
    o.tell(torch.zeros(32))
    assert float(w.grad.norm()) == 0.0
    for _ in range(20):
        o.ask()
        o.tell(torch.zeros(32))
        o.step()
    assert float(w.detach().norm()) == 0.0


def test_a_tied_mirrored_pair_gets_zero_weight() -> None:
    w = torch.nn.Parameter(torch.zeros(50))
    o = OpenAIES([w], lr=0.1, sigma=0.1, population=4, seed=1)
    o.ask()
    o.tell(torch.tensor([1.0, 1.0, 3.0, 0.0]))  # pair 0 tied, pair 1 not
    torch.testing.assert_close(w.grad, -(1.0 * o.noise(1)[0]) / (4 * 0.1))


def test_seeded_noise_is_reproducible_and_the_estimate_is_the_explicit_sum() -> None:
    w = torch.nn.Parameter(torch.randn(30))
    o = OpenAIES([w], lr=0.1, sigma=0.1, population=8, seed=2)
    o.ask()
    first = o.noise(2)[0].clone()
    o.noise(0)
    torch.testing.assert_close(o.noise(2)[0], first)  # regenerated from its seed, not stored
    fit = torch.randn(8, dtype=torch.float64)
    o.tell(fit)
    u = centered_ranks(fit)
    explicit = sum(float(u[i]) * o._member_noise(i)[0] for i in range(8))
    torch.testing.assert_close(w.grad, -explicit / (8 * 0.1), rtol=1e-5, atol=1e-6)


def test_memory_stays_o_model_at_a_large_population() -> None:
    """At N = 512 the optimizer holds the parameters, the centre copy and one draw's noise
    (3 x the model), not N/2 noise copies (256 x before)."""
    w = torch.nn.Parameter(torch.randn(2000))
    o = OpenAIES([w], lr=0.1, sigma=0.1, population=512)
    o.ask()
    o.evaluate(lambda: -w.pow(2).sum())

    def held(obj: object) -> int:
        if isinstance(obj, torch.Tensor):
            return obj.numel()
        if isinstance(obj, list | tuple):
            return sum(held(x) for x in obj)
        if isinstance(obj, dict):
            return sum(held(x) for x in obj.values())
        return 0

    assert held(vars(o)) <= 3 * w.numel()


def test_adam_option_matches_torch_adam_on_the_same_estimate() -> None:
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(20))
    ref = torch.nn.Parameter(w.detach().clone())
    o = OpenAIES([w], lr=0.01, sigma=0.1, population=8, update="adam", weight_decay=0.01)
    adam = torch.optim.Adam([ref], lr=0.01, betas=(0.9, 0.999), eps=1e-8)
    for _ in range(5):
        o.ask()
        o.tell(o.evaluate(lambda: -(w - 1).pow(2).sum()))
        ref.grad = w.grad + 0.01 * w.detach()
        o.step()
        adam.step()
        torch.testing.assert_close(w.detach(), ref.detach())


def test_adam_es_reduces_rosenbrock() -> None:
    task = RosenbrockTask(seed=0, dim=10)
    model = task.build_model()
    f0 = rosenbrock(model.x).item()
    opt = OpenAIES(model.parameters(), lr=0.05, sigma=0.1, population=32, update="adam")
    batches = task.train_batches()
    for _ in range(60):
        b = next(batches)
        opt.ask()
        opt.tell(opt.evaluate(lambda b=b: task.fitness(model, b)))
        opt.step()
    assert rosenbrock(model.x).item() < 0.1 * f0


def test_decoupled_step_does_not_scale_with_sigma() -> None:
    """Centered ranks: the step is lr's alone once sigma moves (decouple=true); the literal
    estimate (decouple=false) shrinks as 1 / sigma. At the configured sigma they agree."""

    def step_norm(decouple: bool, sigma_now: float) -> float:
        w = torch.nn.Parameter(torch.zeros(200))
        o = OpenAIES([w], lr=0.1, sigma=0.1, population=16, seed=0, decouple=decouple)
        o.param_groups[0]["sigma"] = sigma_now
        o.ask()
        o.tell(o.evaluate(lambda: w.sum()))  # linear: the same ranks at any sigma
        o.step()
        return float(w.detach().norm())

    assert step_norm(True, 0.1) == step_norm(False, 0.1)
    assert step_norm(True, 1.0) == pytest.approx(step_norm(True, 0.1), rel=1e-6)
    assert step_norm(False, 1.0) == pytest.approx(0.1 * step_norm(False, 0.1), rel=1e-6)


def test_bad_update_is_one_line() -> None:
    with pytest.raises(ValueError, match="optimizer.update=rmsprop"):
        OpenAIES(
            [torch.nn.Parameter(torch.zeros(2))], lr=0.1, sigma=0.1, population=4, update="rmsprop"
        )


@pytest.mark.parametrize("cls", [OpenAIES, EGGROLL])
def test_noise_stream_replicates_the_perturbations_and_nothing_else(cls: type) -> None:
    """``noise_stream=0`` is the run's stream (the default, bit for bit); ``k > 0`` draws other
    perturbations from the same seed, and ``k`` reproduces itself."""

    def first_draw(**kw: int) -> torch.Tensor:
        w = torch.nn.Parameter(torch.zeros(4, 6))
        o = cls([w], lr=0.1, sigma=0.1, population=4, seed=3, **kw)
        o.ask()
        return o._member_noise(0)[0].clone()  # member 0's full-size perturbation

    default = first_draw()
    torch.testing.assert_close(first_draw(noise_stream=0), default, rtol=0, atol=0)
    other = first_draw(noise_stream=1)
    assert not torch.equal(other, default)
    torch.testing.assert_close(first_draw(noise_stream=1), other, rtol=0, atol=0)
    assert not torch.equal(first_draw(noise_stream=2), other)


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_bad_noise_stream_is_one_line(bad: object) -> None:
    with pytest.raises(ValueError, match=rf"optimizer.noise_stream={bad}: must be an integer >= 0"):
        OpenAIES(
            [torch.nn.Parameter(torch.zeros(2))], lr=0.1, sigma=0.1, population=4, noise_stream=bad
        )
