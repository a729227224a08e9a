"""Population arms: AE-Swarm (``swarm=on``) and, through the same host, the baselines PBT,
PBT without weight copying and independent runs (``baselines/pbt.py``).

* :mod:`aebench.swarm.config` -- the config schemas and range checks (no torch);
* :mod:`aebench.swarm.scheduler` -- the population rules as pure functions and ask/tell objects
  (budgets, softmax, consensus; no torch);
* :mod:`aebench.swarm.coefficients` -- reading and shifting one trajectory's coefficients in AE's
  chart coordinates, coherently with its schedule and AE controller;
* :mod:`aebench.swarm.callback` -- the Lightning hosting: a thin module holding the population
  and the callback that runs the rounds, keeps one trajectory on the accelerator and records.
"""
