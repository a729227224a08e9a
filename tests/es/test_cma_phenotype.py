"""CMA-ES loads the phenotype of pycma's mean (bounds, fixed variables) and IPOP restarts."""

from __future__ import annotations

import numpy as np
import torch

from baselines.es import CMAES


def _run(opt: CMAES, loss, generations: int) -> None:  # noqa: ANN001
    for _ in range(generations):
        if opt.ask():
            opt.tell(-opt.evaluate(loss))
        opt.step()


def test_bounds_the_model_holds_the_repaired_mean() -> None:
    """Optimum outside [0, 1]: pycma's answer is q = 1.0; its genotype mean lies beyond."""
    q = torch.nn.Parameter(torch.tensor([0.5, 0.5]))
    opt = CMAES([q], sigma0=0.3, options={"bounds": [0, 1]}, seed=0)
    _run(opt, lambda: (q - 2).pow(2).sum(), 40)
    assert float(q.detach().max()) <= 1.0
    np.testing.assert_allclose(q.detach().double().numpy(), opt.es.result.xfavorite)
    assert float(q.detach().min()) > 0.99
    assert float(np.max(opt.es.mean)) > 1.0  # what the model held before the fix


def test_fixed_variables_run_and_stay_fixed() -> None:
    x = torch.nn.Parameter(torch.tensor([0.9, 0.5, 0.3]))
    opt = CMAES([x], sigma0=0.2, options={"fixed_variables": {1: 0.5}}, seed=0)
    _run(opt, lambda: x.pow(2).sum(), 30)
    assert float(x.detach()[1]) == 0.5
    assert float(x.detach()[0].abs() + x.detach()[2].abs()) < 0.05


def test_ipop_restarts_double_the_population() -> None:
    x = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    opt = CMAES([x], sigma0=0.5, options={"tolfun": 1e-3, "tolx": 1e-3}, seed=0, restarts=2)
    pop0 = opt.population
    _run(opt, lambda: x.pow(2).sum(), 200)
    assert opt.restarts_done == 2 and opt.population == 4 * pop0
    assert opt.stopped  # frozen once the last restart stopped
    frozen = opt.evaluations
    _run(opt, lambda: x.pow(2).sum(), 3)
    assert opt.evaluations == frozen
