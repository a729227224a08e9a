"""OpenAI-ES (Salimans, Ho, Chen, Sidor, Sutskever 2017, "Evolution Strategies as a Scalable
Alternative to Reinforcement Learning"), written here from the paper's description.

Per generation: ``N/2`` Gaussian draws eps_j ~ N(0, I) over all parameters (full rank), mirrored
into the members ``theta + sigma eps_j`` and ``theta - sigma eps_j``; fitnesses to centered ranks;
the update ``theta <- theta + lr / (N sigma) sum_i u_i E_i`` (minus L2 weight decay), applied as
an SGD step on the loss-gradient estimate (:mod:`baselines.es.core`). The paper feeds the same
estimate to Adam; plain SGD is kept here so that lr and sigma are the only coefficients and AE's
binding stays literal. Members are evaluated one after another (the paper's workers each run
one), which works for any task whose fitness reads the model.
"""

from __future__ import annotations

import torch

from baselines.es.core import ESOptimizer


class OpenAIES(ESOptimizer):
    """Full-rank mirrored-sampling ES with centered-rank shaping (see the module docstring)."""

    def _draw(self) -> None:
        self.eps = [
            torch.randn((self.draws, *p.shape), generator=self.generator(p.device),
                        device=p.device, dtype=p.dtype)
            for p in self.params
        ]

    def _member_noise(self, i: int) -> list[torch.Tensor]:
        j, s = self.draw_index(i), self.sign(i)
        return [e[j] if s > 0 else -e[j] for e in self.eps]

    def _estimate(self, w: torch.Tensor) -> list[torch.Tensor]:
        return [torch.tensordot(w.to(e.dtype).to(e.device), e, dims=1) for e in self.eps]
