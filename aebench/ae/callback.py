"""The AE controller as a Lightning callback.

Contract with the LightningModule (manual optimization, see ``aebench/module.py``):

* before ``manual_backward`` it sets ``pl_module.last_loss``, a detached 0-dim tensor of the loss
  as the optimizer sees it (scaled); optionally ``pl_module.last_reward`` (R of AE-1);
* it exposes ``pl_module.curves.log(step, **values)``; the callback logs
  :data:`aebench.ae.controller.SIGNAL_COLUMNS` (``T``, ``V``, ``R``, ``rho``, ``S``, ``gamma``,
  ``budget_lambda``, ``energy``, ``sigma``, ``shrink``, ``guard``; suffix ``/pg1``, ``/pg2``, ...
  for later param groups, and ``/opt1``... for a second optimizer) every ``ae.log_every`` steps
  at ``trainer.global_step``. Coefficient columns (``lr``, ...) are left to the run recorder.

Order within a training step (readings #9): loss -> ``last_loss`` -> backward ->
``optimizer.step()``, inside which Lightning calls ``on_before_optimizer_step`` with the gradients
present: the controller measures and writes the new coefficients there, so they apply to this
step -> the optimizer's update -> a ``register_step_post_hook`` on the optimizer adds the sigma
parameter noise right after the update (exact form in :mod:`aebench.ae.bindings`) -> the
schedule's ``step()``, which AE composes with (:mod:`aebench.ae.controller`, "Schedules").

Model coefficients: when ``pl_module`` has a ``task`` and a ``model``, the first optimizer's
controller also adapts ``task.coefficients(model)`` (gates, dropout, L1 strength;
:mod:`aebench.ae.bindings`); the task logs their columns itself (``Task.train_log``).

``cfg.enabled = False`` makes the callback inert (``ae=off`` normally leaves it out altogether).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch

from aebench.ae.config import AEConfig, validated
from aebench.ae.controller import SIGNAL_COLUMNS, AEControl


class AEController(L.Callback):
    """Lightning callback running one :class:`AEControl` per optimizer.

    Args:
        cfg: :class:`AEConfig` (or mapping / DictConfig); validated at construction, so a bad
            key or value fails before training, unless :func:`aebench.ae.config.validate`
            built it (already checked); its controllers receive it checked.
        seed: the run seed (seeds the sigma-noise generator; no other RNG stream is touched).
    """

    def __init__(self, cfg: Any = None, seed: int = 0) -> None:
        super().__init__()
        self.cfg: AEConfig = validated(cfg)
        self.seed = int(seed)
        self.controls: dict[int, AEControl] = {}
        self._order: list[int] = []
        self._handles: list[Any] = []
        self._pending_state: dict[str, Any] | None = None

    @property
    def skips(self) -> int:
        """Non-finite steps skipped by the controllers (for the run record's incidents)."""
        return sum(c.skips for c in self.controls.values())

    @staticmethod
    def _model_coefficients(pl_module: Any) -> list[Any]:
        """The task's model coefficients (``pl_module.task.coefficients(pl_module.model)``; none
        for a module without a task); they join the first optimizer's controller."""
        task, model = getattr(pl_module, "task", None), getattr(pl_module, "model", None)
        if task is None or model is None or not hasattr(task, "coefficients"):
            return []
        return list(task.coefficients(model))

    def _control(self, optimizer: Any, pl_module: Any = None) -> tuple[AEControl, str]:
        opt = getattr(optimizer, "optimizer", optimizer)
        key = id(opt)
        ctl = self.controls.get(key)
        if ctl is None:
            ctl = AEControl(
                opt,
                self.cfg,
                seed=self.seed,
                model_coefficients=self._model_coefficients(pl_module) if not self._order else (),
            )
            self.controls[key] = ctl
            self._order.append(key)
            self._handles.append(opt.register_step_post_hook(lambda *_a, c=ctl: c.after_step()))
            if self._pending_state is not None:
                saved = self._pending_state.get("controls", [])
                idx = len(self._order) - 1
                if idx < len(saved):
                    ctl.load_state_dict(saved[idx])
        idx = self._order.index(key)
        return ctl, "" if idx == 0 else f"/opt{idx}"

    def on_before_optimizer_step(
        self, trainer: L.Trainer, pl_module: L.LightningModule, optimizer: torch.optim.Optimizer
    ) -> None:
        if not self.cfg.enabled:
            return
        loss = getattr(pl_module, "last_loss", None)
        if loss is None:
            raise RuntimeError(
                "AEController needs pl_module.last_loss (the detached training loss) set before "
                "backward"
            )
        ctl, sfx = self._control(optimizer, pl_module)
        row = ctl.before_step(loss, getattr(pl_module, "last_reward", None))
        step = int(trainer.global_step)
        curves = getattr(pl_module, "curves", None)
        if curves is not None and step % self.cfg.log_every == 0:
            curves.log(
                step, **{k + sfx: v for k, v in row.items() if k.split("/")[0] in SIGNAL_COLUMNS}
            )

    def summary(self) -> dict[str, Any]:
        """``extra.ae`` of the record: the first optimizer's :meth:`AEControl.summary`, later
        optimizers under ``opt1``, ``opt2``, ... (empty before the first step)."""
        out: dict[str, Any] = {}
        for i, key in enumerate(self._order):
            s = self.controls[key].summary()
            if i == 0:
                out.update(s)
            else:
                out[f"opt{i}"] = s
        return out

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def state_dict(self) -> dict[str, Any]:
        return {"controls": [self.controls[k].state_dict() for k in self._order]}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self._pending_state = state_dict
