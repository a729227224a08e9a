"""OpenAI-ES (Salimans, Ho, Chen, Sidor, Sutskever 2017, "Evolution Strategies as a Scalable
Alternative to Reinforcement Learning"), written here from the paper's description.

Per generation: ``N/2`` Gaussian draws eps_j ~ N(0, I) over all parameters (full rank), mirrored
into the members ``theta + sigma eps_j`` and ``theta - sigma eps_j``; fitnesses to centered ranks
(ties averaged); the estimate ``g = -1 / (N sigma) sum_i u_i E_i`` (:mod:`baselines.es.core`),
applied by SGD (``update=sgd``, lr and sigma the only coefficients) or by Adam (``update=adam``,
the paper's setting). Draws are regenerated from per-draw seeds (the paper's workers share seeds,
not noise), so memory stays O(model) at any population. Members are evaluated one after another
(the paper's workers each run one), which works for any task whose fitness reads the model.
"""

from __future__ import annotations

from baselines.es.core import ESOptimizer


class OpenAIES(ESOptimizer):
    """Full-rank mirrored-sampling ES with centered-rank shaping (see the module docstring):
    the base class's full-size N(0, I) draws, unchanged."""
