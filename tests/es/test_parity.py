"""Parity of OpenAI-ES with a hand computation (no implementation involved): for a linear fitness
F(x) = g.x the mirrored estimate with M draws, g_hat = 1/M sum_j (e_j.g) e_j, has E[g_hat] = g
and E||g_hat||^2 = ((d + 2) + (M - 1)) / M ||g||^2 (Gaussian fourth moments), so its cosine
with g concentrates at 1 / sqrt(1 + (d + 1) / M) for large d. The benchmark
benchmarks/eggroll_rank_sweep.py finds the same on an MLP (docs/es.md)."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.es import OpenAIES


@pytest.mark.slow  # 400 generations: ~5 s
def test_openai_es_estimate_matches_the_closed_form_on_a_linear_fitness() -> None:
    d, pop = 400, 32
    g = torch.randn(d, generator=torch.Generator().manual_seed(0))
    x = torch.nn.Parameter(torch.zeros(d))
    cos, norms = [], []
    for seed in range(400):
        o = OpenAIES([x], lr=0.1, sigma=0.01, population=pop, shaping="none", seed=seed)
        o.ask()
        o.tell(o.evaluate(lambda: (g * x).sum()))
        est = -x.grad.double()  # pair weight 2 sigma (e.g), divided by N sigma = 2 M sigma
        cos.append(float(torch.dot(est, g.double()) / (est.norm() * g.norm())))
        norms.append(float(est.norm() ** 2 / g.norm() ** 2))
    m = pop // 2
    expected_cos = 1 / math.sqrt(1 + (d + 1) / m)
    assert abs(sum(cos) / len(cos) - expected_cos) < 0.02
    mean = sum(norms) / len(norms)
    se = math.sqrt(sum((v - mean) ** 2 for v in norms) / (len(norms) - 1) / len(norms))
    assert abs(mean - ((d + 2) + (m - 1)) / m) < 3 * se
