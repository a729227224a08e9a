"""The AE controller in plain PyTorch: per param group state, one call before each optimizer step.

Usage in any training loop (the Lightning callback :class:`aebench.ae.callback.AEController`
does exactly this)::

    control = AEControl(optimizer, cfg, seed=seed)
    for batch in data:
        loss = ...; optimizer.zero_grad(); loss.backward()
        control.before_step(loss)        # measure, update, write coefficients (this step uses them)
        optimizer.step()
        control.after_step()             # sigma: parameter noise after the step (AE-4, normal form)
        scheduler.step()                 # optional; see "schedules" below

Per param group the controller keeps the AE-1 filter state, the chart offsets of its coefficients,
the budget dual variable lambda (AE-6), the Lyapunov guard factor (AE-10), the gauge target and
sigma; and, with ``rho_buffer=copy``, one gradient copy per parameter (one parameter-sized buffer
per group). The order of the laws within a step is documented in :mod:`aebench.ae.laws`.
A task's model coefficients (gates, dropout, L1 strength: ``model_coefficients``, see
:mod:`aebench.ae.bindings`) are entries of the first group's vector, keyed by their column, so
several coefficients of one kind (one gate per block) each have their own base, prior and offset.

Schedules. AE evolves an *offset* delta in chart space on top of a *base* value that it reads
from the param group: the written coefficient is ``chart^-1(chart(base) + delta)``; for alpha that
is ``lr = scheduled_lr * exp(delta)``, a multiplier on top of the schedule. Each step the group's
value is compared with what AE last wrote: if someone else changed it (a LambdaLR-style scheduler
that resets ``lr`` from ``initial_lr``), that value becomes the new base; if not, the base is kept.
So a schedule and AE compose multiplicatively and never compound or fight, and the prior a-bar
(default: the base) leaks AE back toward the schedule. Relative bounds of Omega (alpha, eps) move
with the base. (A chainable scheduler that multiplies the current ``lr`` would compound with AE;
every suite schedule, :mod:`baselines.schedules`, is LambdaLR-style.) The gauge (AE-8,
:mod:`aebench.ae.gauge`) measures with the lr *in effect* (base times AE's offset), not the
group's value before AE's write, and its target follows the base, so it closes its loop and does
not fight the schedule or a swarm shift.

Vanilla guarantee: with every law and drive term off the controller only measures: it writes no
coefficient, adds no noise and draws from no random generator, so the optimizer's trajectory is
bit-identical to vanilla. More generally a coefficient is only written once its offset has become
non-zero, and while the offset is exactly 0 the base value itself is written (no chart round-trip).

Non-finite input: a non-finite loss or gradient statistic skips the whole step for that group (no
filter update, no coefficient change, previous gradient copy kept) and is counted in ``skips``;
any non-finite coefficient update is replaced by the old value before projection, so the
coefficients never leave Omega.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer

from aebench.ae import laws as L
from aebench.ae.bindings import Binding, ModelCoefficient, add_parameter_noise, binding_for
from aebench.ae.charts import CHART, chart_bounds, from_chart, has_off_floor, to_chart
from aebench.ae.config import MODEL_KINDS, AEConfig, CoefConfig, law_names, validated
from aebench.ae.flatgrad import GradCopy, Reading, group_stats, read_update
from aebench.ae.gauge import (
    GaugeState,
    follow_shrink,
    measure,
    reference_lr,
    set_points_from_run,
    update_set_point,
    usable,
)
from aebench.ae.signals import SignalState, ema, finite

#: kinds whose value 0 means "off": not adapted when configured at 0 (``adapt_at_off`` overrides)
OFF_AT_ZERO: tuple[str, ...] = ("beta1", "weight_decay")

#: the AE-2 drive terms in the order of the gain matrix W's columns (``Binding.drive_off``)
DRIVE_TERMS: tuple[str, ...] = ("progress", "variance", "reward", "phase")

#: the signal columns the controller logs per param group (suffix ``/pgN`` for N >= 1)
SIGNAL_COLUMNS: tuple[str, ...] = (
    "T",
    "V",
    "R",
    "rho",
    "S",
    "gamma",
    "gamma_star",
    "budget_lambda",
    "budget_scale",
    "energy",
    "sigma",
    "shrink",
    "guard",
    "coupling_alpha",
)


@dataclass
class GroupState:
    """AE state of one param group."""

    kinds: list[str]
    params: L.LawParams
    base: dict[str, float]
    written: dict[str, float | None]
    delta: list[float]
    grad: SignalState = field(default_factory=SignalState)
    #: rho's gradient copy per parameter (``rho_buffer=copy``): views of ``copy``'s flat buffer
    prev: dict[int, torch.Tensor] = field(default_factory=dict)
    copy: GradCopy | None = None
    lam: float = 0.0
    guard: float = 1.0
    energy: float | None = None
    rise: float = 0.0
    pnorm: float = float("nan")  # ||P g_t||
    gauge: GaugeState = field(default_factory=GaugeState)
    #: ``params`` as Python floats: the law arithmetic of an update runs on these
    #: (:func:`aebench.ae.laws.coefficient_step_floats`, issue 15)
    fparams: L.FloatParams | None = None
    #: the AE-6 multiplier 1/sqrt(1 + lambda) of the latest update, and running sums of it and
    #: of the AE-10 guard over updates (their means go to the record: knock-outs that differ
    #: there are confounded through AE-6/AE-10)
    budget_mult: float = 1.0
    guard_sum: float = 0.0
    budget_sum: float = 0.0
    n_updates: int = 0
    coupling_alpha: float = 0.0  # (C zeta)_alpha of the latest update
    sigma: float = 0.0
    shrink: float = 0.0
    skips: int = 0
    shrinks: int = 0
    guards: int = 0
    #: one key per entry of ``kinds`` (the kind itself for the optimizer's coefficients, the
    #: column for a model coefficient, so several of one kind are told apart); ``base``,
    #: ``written`` are keyed by it
    keys: list[str] = field(default_factory=list)
    #: the model coefficients of this group by key (group 0 only)
    model: dict[str, ModelCoefficient] = field(default_factory=dict)
    #: per key ``(base, (z of the base, lo, hi, z of the prior))``: the chart values of the
    #: latest base (:meth:`AEControl._chart`)
    charts: dict[str, tuple[float, tuple[float, float, float, float]]] = field(default_factory=dict)

    @property
    def gamma(self) -> float:
        """alpha_t ||P g_t|| with the lr in effect, before this step's update."""
        return self.gauge.gamma

    @property
    def gamma_star(self) -> float | None:
        """The gauge's set point (units of the configured lr), None until calibrated."""
        return self.gauge.set_point


class AEControl:
    """AE meta-controller for one optimizer (all its param groups).

    Args:
        optimizer: a torch optimizer (SGD, Adam, AdamW or Adafactor), or a LightningOptimizer.
        cfg: :class:`AEConfig`, a mapping or a DictConfig (validated here, unless
            :func:`aebench.ae.config.validate` built it: the callback's is checked already).
        seed: the run seed; with ``cfg.noise_seed`` it seeds the noise generator.
        model_coefficients: the task's model coefficients (``Task.coefficients``, kinds gate,
            dropout, l1; :mod:`aebench.ae.bindings`). They join the first param group's vector
            ``a``: one state, one budget and one energy with its optimizer coefficients.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        cfg: Any = None,
        seed: int = 0,
        model_coefficients: Sequence[ModelCoefficient] = (),
    ) -> None:
        self.cfg: AEConfig = validated(cfg)
        self.optimizer: Optimizer = getattr(optimizer, "optimizer", optimizer)
        self.binding: Binding = binding_for(self.optimizer)
        self.gauge_signal = self.cfg.gauge.signal
        if self.gauge_signal == "auto":
            self.gauge_signal = self.binding.gauge_signal
        self.seed = int(seed)
        #: the enabled plug-in drive terms of ``ae.terms`` (aebench.ae.laws.Term), made once
        self.terms = L.load_terms(self.cfg.terms)
        self.active = any(getattr(self.cfg.laws, f) for f in law_names()) or bool(self.terms)
        self.loss = SignalState()
        self.level0: float | None = None
        self.t = 0
        self.skips = 0
        self._generators: dict[str, torch.Generator] = {}
        self._last_row: dict[str, float] = {}
        self._noise_due = False
        #: (loss, reward) of the steps since the last update, read at the next one (one transfer)
        self._pending: list[tuple[Any, Any]] = []
        if self.cfg.rho_buffer == "momentum" and self.binding.family == "adafactor":
            raise ValueError("ae.rho_buffer='momentum': Adafactor has no momentum buffer; use copy")
        self.model_coefficients = list(model_coefficients)
        seen: set[str] = set(self.binding.kinds)
        for mc in self.model_coefficients:
            if mc.kind not in MODEL_KINDS:
                raise ValueError(
                    f"model coefficient {mc.column}: kind={mc.kind!r}; allowed: "
                    + ", ".join(MODEL_KINDS)
                )
            if mc.column in seen:
                raise ValueError(f"model coefficient column={mc.column!r}: used twice")
            if not (math.isfinite(mc.share) and mc.share > 0):
                raise ValueError(f"model coefficient {mc.column}: share={mc.share!r}: must be > 0")
            seen.add(mc.column)
        self.groups = [self._new_group(g, i) for i, g in enumerate(self.optimizer.param_groups)]
        if self.cfg.gauge.target == "from_run":
            points = set_points_from_run(self.cfg.gauge.from_run, self.seed, len(self.groups))
            for gs, x in zip(self.groups, points, strict=True):
                gs.gauge.set_point = x

    # ------------------------------------------------------------------ setup
    def _new_group(self, group: dict, index: int) -> GroupState:
        cfg = self.cfg
        kinds = [k for k in self.binding.kinds if getattr(cfg.coefs, k).adapt]
        base: dict[str, float] = {}
        for k in list(kinds):
            base[k] = cfg.noise.sigma_init if k == "sigma" else self.binding.read(group, k)
            if k in OFF_AT_ZERO and base[k] == 0.0 and not getattr(cfg.coefs, k).adapt_at_off:
                kinds.remove(k)  # configured off (plain SGD, no weight decay): stays off
                del base[k]
            c: CoefConfig = getattr(cfg.coefs, k)
            if c.relative and not (base[k] > 0 and math.isfinite(base[k])):
                raise ValueError(
                    f"ae.coefs.{k}.relative=true: param group {index} has {k}={base[k]!r}; "
                    "relative bounds need a finite value > 0"
                )
        if (
            cfg.rho_buffer == "momentum"
            and self.binding.family == "sgd"
            and float(group["momentum"]) == 0.0
        ):
            raise ValueError(
                f"ae.rho_buffer='momentum': param group {index} has momentum=0 (no buffer); "
                "use copy"
            )
        keys = list(kinds)
        shares = [1.0] * len(kinds)
        model: dict[str, ModelCoefficient] = {}
        for mc in self.model_coefficients if index == 0 else ():
            c = getattr(cfg.coefs, mc.kind)
            if not c.adapt:
                continue
            value = float(mc.read())
            try:
                z = to_chart(mc.kind, value, c.lo)
            except (ValueError, OverflowError):
                z = math.nan
            if not math.isfinite(z):
                raise ValueError(
                    f"model coefficient {mc.column}={value!r}: outside the {CHART[mc.kind]} "
                    f"chart of ae.coefs.{mc.kind} (a gate must lie in (0, 1), dropout in [0, 1), "
                    "l1 >= 0)"
                )
            kinds.append(mc.kind)
            keys.append(mc.column)
            shares.append(float(mc.share))
            base[mc.column] = value
            model[mc.column] = mc
        params = L.params_from_config(cfg, kinds)
        self._family_gains(params, kinds)
        if model:
            params.m = params.m * torch.tensor(shares, dtype=params.m.dtype)
        alpha0 = self.binding.read(group, "alpha") if "alpha" in self.binding.kinds else 0.0
        return GroupState(
            gauge=GaugeState(ref_alpha=reference_lr(group, alpha0)),
            kinds=kinds,
            params=params,
            fparams=L.FloatParams.of(params),
            base=base,
            written={k: None for k in keys},
            delta=[0.0] * len(kinds),
            sigma=cfg.noise.sigma_init,
            keys=keys,
            model=model,
        )

    def _generator(self, device: torch.device) -> torch.Generator:
        key = str(device)
        gen = self._generators.get(key)
        if gen is None:
            gen = torch.Generator(device=device)
            gen.manual_seed((self.seed * 1_000_003 + self.cfg.noise_seed * 7919 + 0xAE) % 2**63)
            self._generators[key] = gen
        return gen

    # ------------------------------------------------------------------ the step
    def before_step(self, loss: Any, reward: Any = None) -> dict[str, float]:
        """Measure (AE-1) and update every group's coefficients (AE-2..AE-10); write them into
        the param groups so that they apply to the coming ``optimizer.step()``.

        With ``ae.every = k > 1`` only every k-th call measures the gradients and updates the
        coefficients; the calls between feed the loss filters (and, on the call before an update,
        copy the gradient for rho). Returns the logged scalars of the latest update:
        :data:`SIGNAL_COLUMNS` plus the coefficient columns of the family (``lr``, ...), suffixed
        ``/pgN`` for groups N >= 1, and ``skips`` (the count of non-finite steps).
        """
        every = self.cfg.every
        t = self.t
        self._noise_due = t % every == 0
        if not self._noise_due:
            # the loss filters take this loss at the next update (same order, nothing read now)
            self._pending.append((loss, reward))
            if (t + 1) % every == 0:
                with torch.no_grad():
                    for group, gs in zip(self.optimizer.param_groups, self.groups, strict=True):
                        self._store_prev(group, gs)
            self.t = t + 1
            return dict(self._last_row)
        with torch.no_grad():
            return self._update(loss, reward)

    def _update(self, loss: Any, reward: Any) -> dict[str, float]:
        """One update (``before_step`` on every ``ae.every``-th call)."""
        every = self.cfg.every
        pairs = list(zip(self.optimizer.param_groups, self.groups, strict=True))
        readings = [self._measure(g, gs) for g, gs in pairs]
        # one host transfer: the pending losses, this step's loss and every group's statistics
        losses, stats = read_update(self._pending, loss, reward, readings)
        self._pending = []
        self._feed_losses(losses[:-1])
        loss_f, reward_f = losses[-1]
        ok = (
            finite(loss_f)
            and (reward_f is None or finite(reward_f))
            and all(s is None or finite(*s) for s in stats)
        )
        out: dict[str, float] = {}
        if not ok:
            self.skips += 1
            for gs in self.groups:
                gs.skips += 1
        else:
            self.loss.update_loss(loss_f, reward_f, self.cfg.signals)
            if self.level0 is None:
                self.level0 = self.loss.level if self.loss.level > 0 else 1.0
        for i, ((group, gs), st, reading) in enumerate(zip(pairs, stats, readings, strict=True)):
            if ok and st is not None:
                if every == 1:
                    self._keep_grad(group, gs, reading)
                self._update_group(group, gs, st)
            out.update(self._row(group, gs, "" if i == 0 else f"/pg{i}"))
        out["skips"] = float(self.skips)
        self.t += 1
        self._last_row = out
        return dict(out)

    def after_step(self) -> None:
        """Add the sigma parameter noise of each group after an update step (see
        :mod:`aebench.ae.bindings`); with ``ae.every = k`` the k steps' noise at once."""
        noise_every = self.cfg.noise_every
        if not self._noise_due or ((self.t - 1) // self.cfg.every) % noise_every:
            return
        scale = math.sqrt(self.cfg.every * noise_every)
        for group, gs in zip(self.optimizer.param_groups, self.groups, strict=True):
            if gs.sigma > 0.0:
                ps = [p for p in group["params"] if p.grad is not None]
                if ps:
                    add_parameter_noise(
                        ps,
                        gs.sigma * scale,
                        self.cfg.noise.rms_floor,
                        self._generator(ps[0].device),
                    )

    # ------------------------------------------------------------------ internals
    def _feed_losses(self, losses: list[tuple[float, float | None]]) -> None:
        """The loss filters take the losses of the steps between updates, in order."""
        for loss_f, reward_f in losses:
            if finite(loss_f) and (reward_f is None or finite(reward_f)):
                self.loss.update_loss(loss_f, reward_f, self.cfg.signals)

    def _flush(self) -> None:
        """Feed the pending losses now (before the state is read)."""
        if self._pending:
            losses, _ = read_update(self._pending[:-1], *self._pending[-1], [])
            self._pending = []
            self._feed_losses(losses)

    def _grads(self, group: dict) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        ps, grads = [], []
        for p in group["params"]:
            g = p.grad
            if g is not None and not g.is_sparse:
                ps.append(p)
                grads.append(g)
        return ps, grads

    def _measure(self, group: dict, gs: GroupState) -> Reading | None:
        """The :class:`~aebench.ae.flatgrad.Reading` of ``[||g||^2, g.h, ||h||^2, ||P g||^2,
        <g, P g>]`` on the device (no sync; read with the update's one transfer,
        :func:`aebench.ae.flatgrad.read_update`), or None without grads."""
        ps, grads = self._grads(group)
        if not ps:
            return None
        scale = 1.0
        prev_sq = None
        prevs: list[torch.Tensor] | torch.Tensor | None
        if self.cfg.rho_buffer == "copy":
            copy = self._copy(gs, ps)
            prevs, prev_sq = (None, None) if copy is None else (copy.flat, copy.sq)
        else:
            prevs = []
            for p in ps:
                buf, scale = self.binding.momentum(self.optimizer, group, p)
                if buf is None:
                    prevs = None
                    break
                prevs.append(buf)
        # <g, P g> feeds only the gauge's relative signal
        gpg = self.cfg.laws.gauge and self.gauge_signal == "relative"
        return group_stats(
            self.binding, self.optimizer, group, ps, grads, prevs, scale, prev_sq, gpg
        )

    @staticmethod
    def _copy(gs: GroupState, ps: list[torch.Tensor]) -> GradCopy | None:
        """rho's copy of these parameters' previous gradients, None while there is none. A
        copy whose views were replaced (moved to another device) is rebuilt from them."""
        copy = gs.copy
        if copy is not None and copy.intact(ps, gs.prev):
            return copy
        if not ps or any(id(p) not in gs.prev for p in ps):
            return None
        gs.copy = GradCopy.of([gs.prev[id(p)] for p in ps], ps, gs.prev)
        return gs.copy

    def _keep_grad(self, group: dict, gs: GroupState, reading: Reading | Any) -> None:
        """rho's copy of an update's gradients (``ae.every=1``): the flattened g the
        measurement made, copied in or, the first time, kept as the copy's buffer."""
        if self.cfg.rho_buffer != "copy":
            return
        if not isinstance(reading, Reading) or reading.flat_grad is None:
            self._store_prev(group, gs)
        elif gs.copy is not None and gs.copy.intact(reading.params, gs.prev):
            gs.copy.take(reading)
        else:
            gs.copy = GradCopy.adopt(reading, gs.prev)

    def _store_prev(self, group: dict, gs: GroupState) -> None:
        if self.cfg.rho_buffer != "copy":
            return
        ps, grads = self._grads(group)
        if not ps:
            return
        copy = gs.copy
        if (
            copy is not None
            and copy.intact(ps, gs.prev)
            and copy.flat.device == grads[0].device
            and copy.flat.dtype == grads[0].dtype
        ):
            copy.store(grads)
        else:
            gs.copy = GradCopy.of(grads, ps, gs.prev)

    def _update_group(self, group: dict, gs: GroupState, st: tuple[float, ...]) -> None:
        cfg = self.cfg
        gsq, dot, psq, pre_sq, gpg = st
        if psq > 0.0:
            gs.grad.update_grad(gsq, dot, psq, cfg.signals, cfg.every)
        kinds = gs.kinds
        keyed = list(zip(gs.keys, kinds, strict=True))
        # base values (schedule-aware): a value someone else wrote since AE's last write is the
        # new base (LambdaLR resetting lr, a swarm shift), else the kept base
        current: dict[str, float] = {}
        for key, k in keyed:
            if k == "sigma":
                continue
            cur = self._read(group, gs, key)
            current[key] = cur
            if gs.written[key] is None or cur != gs.written[key]:
                gs.base[key] = cur
        # AE-8 input with the lr in effect (base and AE's current offset), before any write
        gs.pnorm = math.sqrt(pre_sq)
        alpha_eff, alpha_base = self._alpha_in_effect(group, gs)
        measure(
            gs.gauge,
            self.gauge_signal if cfg.laws.gauge else "none",
            alpha_eff,
            gs.pnorm,
            gpg,
            self.loss.level,
        )
        update_set_point(gs.gauge, cfg.gauge, alpha_base, cfg.every, alpha_eff)
        if not self.active or not kinds or self.loss.n_loss <= cfg.signals.warmup:
            return
        z_l, zbar_l, lo_l, hi_l, zb_l = [], [], [], [], []
        for j, d in enumerate(gs.delta):
            zb, lo, hi, zbar = self._chart(gs, j)
            zb_l.append(zb)
            z_l.append(min(max(zb + d, lo), hi))
            zbar_l.append(zbar)
            lo_l.append(lo)
            hi_l.append(hi)
        sig = L.Signals(
            T=self.loss.T,
            V=self.loss.V,
            R=self.loss.R,
            rho=gs.grad.rho,
            S=self._noise_S(gs),
            gamma=usable(gs.gauge.x),
            gamma_star=usable(gs.gauge.target),
        )
        z_new, new_lam, shrink, coupling, psi = self._laws(gs, z_l, zbar_l, lo_l, hi_l, sig)
        gs.budget_mult = 1.0 / math.sqrt(1.0 + gs.lam) if cfg.laws.budget else 1.0
        gs.budget_sum += gs.budget_mult
        gs.lam = float(new_lam)
        gs.shrink = float(shrink)
        gs.coupling_alpha = float(coupling[kinds.index("alpha")]) if "alpha" in kinds else 0.0
        if gs.shrink > 0.5:
            gs.shrinks += 1
        if cfg.gauge.follow_shrink and cfg.laws.resonance and "alpha" in kinds:
            # the gauge's target follows AE-5's shrink of alpha (aebench.ae.gauge, "Resonance")
            follow_shrink(
                gs.gauge,
                cfg.every * math.log1p(cfg.resonance.kappa) * gs.shrink,
                cfg.every * cfg.gauge.eta_gamma,
            )
        for j, (key, k) in enumerate(keyed):
            c = getattr(cfg.coefs, k)
            gs.delta[j] = z_new[j] - zb_l[j]
            if k == "sigma":
                gs.sigma = (
                    gs.base[key]
                    if gs.delta[j] == 0.0
                    else self._inside(k, c, gs.base[key], from_chart(k, z_new[j], c.lo))
                )
                continue
            if gs.delta[j] == 0.0 and gs.written[key] is None:
                continue
            if gs.delta[j] == 0.0:
                value = gs.base[key]
            else:
                value = self._inside(k, c, gs.base[key], from_chart(k, z_new[j], c.lo))
            if value != current[key]:
                self._write(group, gs, key, value)
                gs.written[key] = self._read(group, gs, key)
            else:
                gs.written[key] = current[key]  # unchanged since it was read above
        # AE-10: energy (always logged) and guard (only with the lyapunov law on)
        level_rel = self.loss.level / (self.level0 or 1.0)
        energy = self._lyapunov(gs, level_rel, z_new, zbar_l, psi)
        k = cfg.every
        if gs.energy is not None and math.isfinite(energy):
            # per-step increment, windowed in updates (k steps each)
            gs.rise = ema(gs.rise, (energy - gs.energy) / k, max(1.0, cfg.lyapunov.window / k))
        gs.energy = energy
        if cfg.laws.lyapunov:
            lp = cfg.lyapunov
            gs.guard, fired = L.guard_step(
                gs.guard, gs.rise, lp.tol, lp.shrink**k, lp.recover**k, lp.g_min
            )
            gs.guards += int(fired)
        gs.guard_sum += gs.guard
        gs.n_updates += 1

    def _laws(
        self,
        gs: GroupState,
        z: list[float],
        zbar: list[float],
        lo: list[float],
        hi: list[float],
        sig: L.Signals,
    ) -> tuple[list[float], float, float, list[float], float]:
        """The law arithmetic of one update on Python floats (AE-2..AE-8, AE-6's dual step):
        ``(z_new, lambda, shrink, C zeta, psi_Omega(z_new))``. The tensor composition
        :func:`aebench.ae.laws.coefficient_step` is the same arithmetic (the reference,
        tests/ae/test_fast_path.py); a handful of coefficients make ~150 tiny tensor ops cost
        more than the laws, so the controller runs them as floats (issue 15)."""
        cfg = self.cfg
        p = gs.fparams
        assert p is not None
        dt = float(cfg.every)
        res = L.coefficient_step_floats(
            z, zbar, lo, hi, sig, gs.lam, gs.guard, p, cfg.laws, cfg, dt, self.terms, gs.kinds
        )
        psi = 0.0
        if cfg.laws.barrier:
            psi = L.barrier_potential_floats(
                res.z, lo, hi, cfg.barrier.mu, cfg.barrier.width, p.lower
            )
        return res.z, res.lam, res.shrink, res.coupling, psi

    def _lyapunov(
        self, gs: GroupState, level_rel: float, z: list[float], zbar: list[float], psi: float
    ) -> float:
        """AE-10's energy V_t of the new coefficients (:func:`aebench.ae.laws.lyapunov_energy`
        on floats)."""
        ez, ezbar = self._energy_coordinates(gs, z, zbar)
        assert gs.fparams is not None
        return L.lyapunov_energy_floats(
            level_rel, ez, ezbar, gs.fparams.m, self.cfg.lyapunov.weight, psi
        )

    # ---- family hook (AE-4): a binding may supply the noise law's S (the only law that reads
    # S); the ES binding's reading is in aebench.ae.bindings.ESBinding.noise_S and docs/es.md
    def _noise_S(self, gs: GroupState) -> float:
        own = self.binding.noise_S(self.optimizer, self.cfg)
        return gs.grad.S if own is None else own

    def _family_gains(self, params: L.LawParams, kinds: list[str]) -> None:
        """Kinds the family's step does not scale with (``Binding.step_free``) are not shrunk by
        AE-5, whose shrink is meant for step-like coefficients; a family whose noise law does
        not read the loss variance (``Binding.noise_reads_V`` false) gets k_v = 0; the AE-2
        terms a family switches off for a kind (``Binding.drive_off``) get gain 0."""
        for j, k in enumerate(kinds):
            for term in self.binding.drive_off.get(k, ()):
                params.W[j, DRIVE_TERMS.index(term)] = 0.0
        free = [1.0 if k in self.binding.step_free else 0.0 for k in kinds]
        if any(free):
            keep = 1.0 - torch.tensor(free, dtype=params.shrink_mask.dtype)
            params.shrink_mask = params.shrink_mask * keep
        if not self.binding.noise_reads_V:
            params.kappa = params.kappa.clone()
            params.kappa[2] = 0.0

    # ---- end of the family hook

    def _energy_coordinates(
        self, gs: GroupState, z: list[float], zbar: list[float]
    ) -> tuple[list[float], list[float]]:
        """The coordinates AE-10's distance ``||a - a_bar||_M`` is measured in: the chart for
        alpha, betas, eps and es_sigma (log-type deviations from a positive prior), and for the
        kinds whose floor means "off" (sigma, weight decay, l1, dropout) the coefficient's own
        units as a fraction of its box, ``a / (hi - lo)``. In the chart a sigma rising from its
        floor 1e-6 to 1e-5 is 2.3 log units away from "off" and booked an energy rise every step
        the noise law raised it (measured: regression MLP, SGDm, the guard at g_min = 0.05 from
        step ~300 with sigma 4e-6); in its own units that is 1% of its box."""
        ez, ezbar = list(z), list(zbar)
        for j, k in enumerate(gs.kinds):
            if has_off_floor(k):
                c: CoefConfig = getattr(self.cfg.coefs, k)
                width = c.hi - c.lo
                ez[j] = from_chart(k, z[j], c.lo) / width
                ezbar[j] = from_chart(k, zbar[j], c.lo) / width
        return ez, ezbar

    def _alpha_in_effect(self, group: dict, gs: GroupState) -> tuple[float, float]:
        """``(alpha in effect, its base)``: the lr the coming step applies if AE writes nothing
        new (the base with AE's current offset) and the base (the schedule's lr)."""
        if "alpha" not in gs.keys:
            a = self.binding.read(group, "alpha") if "alpha" in self.binding.kinds else 0.0
            return a, a
        j = gs.keys.index("alpha")
        base = gs.base["alpha"]
        if gs.delta[j] == 0.0:
            return base, base
        c: CoefConfig = self.cfg.coefs.alpha
        zb, lo, hi, _ = self._chart(gs, j)
        z = min(max(zb + gs.delta[j], lo), hi)
        return self._inside("alpha", c, base, from_chart("alpha", z, c.lo)), base

    def _chart(self, gs: GroupState, j: int) -> tuple[float, float, float, float]:
        """``(z of the base, Omega's lo, hi in the chart, z of the prior)`` of entry j, computed
        again only when its base changed (a schedule moves alpha's every step; the others
        rarely move). ``ae.coefs`` is read as fixed after construction."""
        key, k = gs.keys[j], gs.kinds[j]
        base = gs.base[key]
        cached = gs.charts.get(key)
        if cached is not None and cached[0] == base:
            return cached[1]
        c: CoefConfig = getattr(self.cfg.coefs, k)
        zb = to_chart(k, base, c.lo)
        lo, hi = chart_bounds(k, c.lo, c.hi, c.relative, base)
        zbar = zb if c.prior is None else min(max(to_chart(k, c.prior, c.lo), lo), hi)
        gs.charts[key] = (base, (zb, lo, hi, zbar))
        return zb, lo, hi, zbar

    @staticmethod
    def _inside(kind: str, c: CoefConfig, base: float, value: float) -> float:
        """Clamp a value to Omega in its own units (guards the chart's last-bit rounding)."""
        lo, hi = (base * c.lo, base * c.hi) if c.relative else (c.lo, c.hi)
        if has_off_floor(kind) and value == 0.0:
            return 0.0  # at the floor: off
        return min(max(value, lo), hi)

    def _read(self, group: dict, gs: GroupState, key: str) -> float:
        """The value of one coefficient of the group (a model coefficient by its key)."""
        mc = gs.model.get(key)
        return float(mc.read()) if mc is not None else self.binding.read(group, key)

    def _write(self, group: dict, gs: GroupState, key: str, value: float) -> None:
        mc = gs.model.get(key)
        if mc is not None:
            mc.write(value)
        else:
            self.binding.write(group, key, value)

    def _row(self, group: dict, gs: GroupState, sfx: str) -> dict[str, float]:
        # gamma as logged: the lr in effect before this update times ||P g|| (what the gauge
        # saw: an open loop would show here), and the target the gauge held it to
        row = {
            "T": self.loss.T,
            "V": self.loss.V,
            "R": self.loss.R,
            "rho": gs.grad.rho,
            "S": self._noise_S(gs),
            "gamma": gs.gauge.gamma,
            "gamma_star": gs.gauge.target,
            "budget_lambda": gs.lam,
            "budget_scale": gs.budget_mult,
            "coupling_alpha": gs.coupling_alpha,
            "energy": float("nan") if gs.energy is None else gs.energy,
            "sigma": gs.sigma,
            "shrink": gs.shrink,
            "guard": gs.guard,
        }
        for key, k in zip(gs.keys, gs.kinds, strict=True):
            if k != "sigma":
                column = key if key in gs.model else self.binding.columns[k]
                row[column] = self._read(group, gs, key)
        return {name + sfx: float(v) for name, v in row.items()}

    # ------------------------------------------------------------------ introspection
    def coefficients(self, index: int = 0) -> dict[str, float]:
        """The current coefficient values of group ``index`` by kind (sigma included; model
        coefficients by their column)."""
        group, gs = self.optimizer.param_groups[index], self.groups[index]
        out = {
            key: self._read(group, gs, key)
            for key, k in zip(gs.keys, gs.kinds, strict=True)
            if k != "sigma"
        }
        out["sigma"] = gs.sigma
        return out

    def summary(self) -> dict[str, Any]:
        """Per-run AE facts for the record (``extra.ae``), one list entry per param group:
        ``gauge_set_point`` (x* in units of the configured lr; None where never calibrated;
        reusable as ``ae.gauge.target=absolute ae.gauge.gamma_star=<value>``),
        ``gauge_signal``, ``guard_mean`` (mean AE-10 guard factor over updates) and
        ``budget_mult_mean`` (mean AE-6 multiplier 1/sqrt(1 + lambda)). Two knock-out arms whose
        guard or budget means differ by more than 2x are confounded through AE-10/AE-6."""

        def mean(total: float, n: int) -> float | None:
            return total / n if n else None

        return {
            "gauge_signal": self.gauge_signal,
            "gauge_set_point": [gs.gauge.set_point for gs in self.groups],
            "guard_mean": [mean(gs.guard_sum, gs.n_updates) for gs in self.groups],
            "budget_mult_mean": [mean(gs.budget_sum, gs.n_updates) for gs in self.groups],
            "guard_events": [gs.guards for gs in self.groups],
            "shrink_events": [gs.shrinks for gs in self.groups],
            "skips": self.skips,
        }

    def state_dict(self) -> dict[str, Any]:
        """Controller state for checkpoints (gradient copies excluded: rebuilt after one step)."""
        self._flush()
        keep = (
            "base",
            "written",
            "delta",
            "lam",
            "guard",
            "energy",
            "rise",
            "sigma",
            "skips",
            "shrinks",
            "guards",
            "budget_mult",
            "guard_sum",
            "budget_sum",
            "n_updates",
            "coupling_alpha",
        )
        return {
            "t": self.t,
            "skips": self.skips,
            "level0": self.level0,
            "loss": vars(self.loss).copy(),
            "groups": [
                {
                    **{k: getattr(gs, k) for k in keep},
                    "grad": vars(gs.grad).copy(),
                    "gauge": vars(gs.gauge).copy(),
                }
                for gs in self.groups
            ],
            "generators": {k: g.get_state() for k, g in self._generators.items()},
            "binding": self.binding.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.t, self.skips, self.level0 = state["t"], state["skips"], state["level0"]
        self._pending = []
        self.loss = SignalState(**state["loss"])
        for gs, saved in zip(self.groups, state["groups"], strict=False):
            for k, v in saved.items():
                if k == "grad":
                    gs.grad = SignalState(**v)
                elif k == "gauge":
                    gs.gauge = GaugeState(**v)
                else:
                    setattr(gs, k, v)
        for key, gstate in state.get("generators", {}).items():
            self._generator(torch.device(key)).set_state(gstate)
        if "binding" in state:  # a checkpoint from before the binding kept state: fresh filter
            self.binding.load_state_dict(state["binding"])
