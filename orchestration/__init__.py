"""The orchestration layer: applications that drive the training core and the analysis.

``aebench-evidence`` (:mod:`orchestration.evidence`) runs the protocol's experiments and then the
analysis; :mod:`orchestration.catalog` writes the experiment catalogue. This layer sits above
``aebench`` (the training core) and ``analysis``; neither of those imports it
(docs/design.md, tests/test_layers.py).
"""
