"""Evolution Strategies as torch optimizers with an ask/evaluate/tell cycle (one module each):

* :mod:`baselines.es.core` -- the shared cycle, mirrored sampling, centered ranks, the step;
* :mod:`baselines.es.openai_es` -- OpenAI-ES (full-rank Gaussian perturbations);
* :mod:`baselines.es.eggroll` -- EGGROLL (low-rank perturbations, batched population pass);
* :mod:`baselines.es.cma_es` -- CMA-ES through pycma.

Usable without Lightning::

    opt = OpenAIES(model.parameters(), lr=0.02, sigma=0.05, population=32, seed=0)
    for batch in batches:
        opt.ask()
        fit = opt.evaluate(lambda: -loss_fn(model, batch))
        opt.tell(fit)
        opt.step()

In aebench, ``aebench/es_module.py`` runs this cycle as the training step of a generation.
"""

from baselines.es.cma_es import CMAES
from baselines.es.core import ESOptimizer, centered_ranks
from baselines.es.eggroll import EGGROLL
from baselines.es.openai_es import OpenAIES

__all__ = ["CMAES", "EGGROLL", "ESOptimizer", "OpenAIES", "centered_ranks"]
