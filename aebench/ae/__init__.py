"""Adaptive Evolution (AE): signals, laws, coefficient bindings and the controller.

Public API:

* :class:`AEConfig` (and its nested dataclasses), :func:`law_names`, :func:`check_law_names`,
  :func:`validate` -- :mod:`aebench.ae.config`;
* :class:`AEControl` -- the pure-PyTorch controller (:mod:`aebench.ae.controller`);
* :class:`AEController` -- the Lightning callback (:mod:`aebench.ae.callback`);
* the laws AE-2 ... AE-10 as pure functions in :mod:`aebench.ae.laws`, the signals AE-1 in
  :mod:`aebench.ae.signals`, the charts in :mod:`aebench.ae.charts`, the optimizer bindings in
  :mod:`aebench.ae.bindings`.
"""

from aebench.ae.config import AEConfig, LawsConfig, check_law_names, law_names, validate

__all__ = [
    "AEConfig",
    "AEControl",
    "AEController",
    "LawsConfig",
    "SIGNAL_COLUMNS",
    "check_law_names",
    "law_names",
    "validate",
]


def __getattr__(name: str):  # noqa: ANN202
    # lazy: the config (read by the command-line preflight) must not import torch or lightning
    if name == "AEController":
        from aebench.ae.callback import AEController

        return AEController
    if name in ("AEControl", "SIGNAL_COLUMNS"):
        from aebench.ae import controller

        return getattr(controller, name)
    raise AttributeError(name)
