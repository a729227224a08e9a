"""AE-9 made real: learning the AE gains W, Gamma, C, tau by gradient (``aebench-meta``).

* :mod:`aebench.meta.gains`: the learnable gains (log space, fixed signs) and their config keys;
* :mod:`aebench.meta.inner`: the functional AE-SGDm / AE-Adam inner loop (AE state as tensors);
* :mod:`aebench.meta.problems`: the tuning problems (regression, Rosenbrock) it trains on;
* :mod:`aebench.meta.train`: truncated unrolled meta-gradient training and held-out evaluation;
* :mod:`aebench.meta.cli`: the ``aebench-meta`` entry point, which writes ``conf/ae/meta.yaml``.

See docs/meta.md.
"""
