"""EGGROLL rank sweep: the cosine of the ES update with the true gradient at a fixed population.

    python benchmarks/eggroll_rank_sweep.py [--population 64] [--ranks 1 4 16 0] [--seeds 20]
                                            [--sigma 0.01] [--hidden 64 64] [--threads 1]

Workload: an MLP (32 -> 64 -> 64 -> 8, ReLU, the regression task's shape at a smaller width) at
its initialisation and one fixed batch of 256 examples with random targets; fitness = minus the
MSE on that batch, so the true loss gradient is one autograd call. For each rank r (0 = full:
r = min(m, n) for every matrix) and each of ``--seeds`` noise seeds, one generation is drawn
and told; the statistic is ``cos(p.grad, grad L)`` over all parameters, where ``p.grad`` is the
optimizer's loss-gradient estimate. OpenAI-ES (full-rank Gaussian perturbations, the same
population) is the reference row. Both shapings are reported: ``none`` (raw fitness, the
estimator of the Gaussian-smoothed gradient) and ``centered_ranks`` (the default). Results in
docs/es.md.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from baselines.es import EGGROLL, OpenAIES  # noqa: E402
from tasks.regression import mlp  # noqa: E402


def cosine(model: nn.Module, truth: list[torch.Tensor]) -> float:
    g = torch.cat([p.grad.reshape(-1) for p in model.parameters()]).double()
    t = torch.cat([x.reshape(-1) for x in truth]).double()
    return float(torch.dot(g, t) / (g.norm() * t.norm()))


def main() -> None:
    """Print mean and standard error of the cosine per rank and shaping."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--ranks", type=int, nargs="+", default=[1, 4, 16, 0])
    ap.add_argument("--seeds", type=int, default=20)
    ap.add_argument("--sigma", type=float, default=0.01)
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 64])
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = mlp(32, args.hidden, 8)
    x, y = torch.randn(256, 32), torch.randn(256, 8)

    def loss() -> torch.Tensor:
        return nn.functional.mse_loss(model(x), y)

    truth = torch.autograd.grad(loss(), list(model.parameters()))
    n = sum(p.numel() for p in model.parameters())
    print(
        f"MLP 32->{'->'.join(map(str, args.hidden))}->8 ({n} params), population "
        f"{args.population}, sigma {args.sigma}, {args.seeds} seeds; cos(ES estimate, grad)"
    )
    print(f"{'arm':>14} {'shaping':>15} {'mean cos':>9} {'s.e.':>7}")
    arms = [
        (f"eggroll r={r if r else 'full'}", EGGROLL, {"rank": r if r else 10**6})
        for r in args.ranks
    ] + [("openai_es", OpenAIES, {})]
    for shaping in ("none", "centered_ranks"):
        for name, cls, kw in arms:
            values = []
            for seed in range(args.seeds):
                opt = cls(
                    model.parameters(),
                    lr=1e-3,
                    sigma=args.sigma,
                    population=args.population,
                    shaping=shaping,
                    seed=seed,
                    **kw,
                )
                opt.attach(model)
                with torch.no_grad():
                    opt.ask()
                    opt.tell(opt.evaluate(lambda: -loss(), batched=True))
                values.append(cosine(model, truth))
            se = statistics.stdev(values) / len(values) ** 0.5
            print(f"{name:>14} {shaping:>15} {statistics.mean(values):>9.4f} {se:>7.4f}")


if __name__ == "__main__":
    main()
