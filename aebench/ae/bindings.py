"""Coefficient bindings: read/write AE's coefficients from/to a torch param group, per family.

The family is detected by ``isinstance`` on the optimizer:

=============  ==========================================================================
family         coefficients (kind -> param-group field; curve column)
=============  ==========================================================================
``sgd``        alpha -> ``lr`` (lr), beta1 -> ``momentum`` (momentum),
               weight_decay -> ``weight_decay``, sigma (AE state)
``adam``       Adam and AdamW: alpha -> ``lr``, beta1 -> ``betas[0]`` (beta1),
               beta2 -> ``betas[1]`` (beta2), eps -> ``eps``, weight_decay, sigma
``adafactor``  torch.optim.Adafactor: alpha -> ``lr``, eps -> ``eps[0]`` (epsilon1, the
               denominator term; None reads as the float32 machine epsilon, torch's default),
               weight_decay, sigma. It has no first moment; its second-moment decay is the
               schedule ``1 - t^beta2_decay``, an exponent rather than a coefficient with a chart
               here, so AE leaves ``beta2_decay`` (and the clipping threshold ``d``) alone.
``es``         Evolution Strategies (baselines/es: OpenAI-ES, EGGROLL): alpha -> ``lr``,
               es_sigma -> ``sigma`` (sigma: the ES perturbation std itself, no AE parameter
               noise), weight_decay; see :class:`ESBinding`. CMA-ES has no binding.
=============  ==========================================================================

Model coefficients (protocol H.14, I.15). A task's model may expose coefficients of its own
through :meth:`aebench.task.Task.coefficients` (default: none), each a :class:`ModelCoefficient`
with its kind, curve column, read and write. They join the coefficient vector ``a`` of the
first param group (one vector, one budget, one energy; their drive uses the shared signals), are
evolved by the same laws in their charts (:mod:`aebench.ae.charts`) and are ignored by AE when
the model has none, as optimizer kinds a family lacks are:

=============  ==========================================================================
kind           coefficient (chart; typical curve column)
=============  ==========================================================================
``gate``       a block gate g in (0, 1), the block's output scale h <- h + g f(h) (logit;
               ``gate_<i>``). Several of one kind are allowed: one per block, each with
               its own prior (its configured value), box slot and budget share.
``dropout``    a dropout probability p in [0, p_max) (logit0: 0 at the floor; ``dropout``)
``l1``         an L1 penalty strength lambda >= 0 in the training loss (log0; ``l1``)
=============  ==========================================================================

A model coefficient is a forward-pass quantity: AE writes it in ``on_before_optimizer_step``,
after this step's forward and backward, so the value written at step t acts from the forward
pass of step t + 1 (an optimizer coefficient acts on step t's update). Backpropagation does not
train them (they are plain floats, not parameters).

Effective step gamma = alpha ||P g|| (logged; Section 5), with P the family's preconditioner:
identity for SGD (the literal alpha ||g||); for Adam ``g / (sqrt(v_hat) + eps)`` with v_hat the
bias-corrected ``exp_avg_sq`` from before this step (``|g|`` on the first step); for Adafactor
the per-tensor normalised gradient ``g / RMS(g)`` (Adafactor's update is itself scale-free, so
gamma = alpha sqrt(n)). Using ||g|| literally on Adam would make a gauge undo Adam's own scale
invariance. The gauge's relative signal (AE-8, :mod:`aebench.ae.laws`) uses ``<g, P g>``.

sigma on a gradient optimizer (readings #5, the normal form's xi_t): after the optimizer step,
for every parameter p of the group that received a gradient,

    p <- p + sigma * max(RMS(p), rms_floor) * N(0, I),

drawn from the controller's own ``torch.Generator`` (seeded from the run seed and
``ae.noise_seed``), so no other RNG stream is consumed and pairing across arms is preserved.
sigma is therefore the relative parameter perturbation per step: loss-scale free (like AE-8 wants)
and family free, and it does not vanish on a flat plateau where ||g|| -> 0 (a perturbation scaled
by alpha ||g|| would). sigma = 0 (at its floor) draws nothing at all.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch.optim import Optimizer

_F32_EPS = float(torch.finfo(torch.float32).eps)


class Binding:
    """Base class: a family's kinds, param-group fields, preconditioner and momentum buffer."""

    family: str = ""
    kinds: tuple[str, ...] = ()
    columns: dict[str, str] = {}
    #: what ``ae.gauge.signal=auto`` regulates (AE-8): a signal that moves with the loss scale as
    #: the family's step does and stays roughly constant while a well-tuned run converges, so the
    #: gauge answers scale changes only; ``none`` where the family needs no gauge
    gauge_signal: str = "relative"
    #: kinds the family's step does not scale with: AE-5's shrink leaves them alone
    step_free: tuple[str, ...] = ()
    #: whether the noise law AE-4 reads the loss variance V (k_v V/V*) on this family
    noise_reads_V: bool = True
    #: AE-2 drive terms switched off per kind on this family (``progress``, ``variance``,
    #: ``reward``, ``phase``: the columns of the gains W)
    drive_off: dict[str, tuple[str, ...]] = {}

    def read(self, group: dict, kind: str) -> float:
        raise NotImplementedError

    def write(self, group: dict, kind: str, value: float) -> None:
        raise NotImplementedError

    def precond(
        self,
        optimizer: Optimizer,
        group: dict,
        params: list[torch.Tensor],
        grads: list[torch.Tensor],
    ) -> torch.Tensor:
        """``[||P g||^2, <g, P g>]`` over the group (float64, shape (2,))."""
        sq = sum((g.double().pow(2).sum() for g in grads), torch.zeros((), dtype=torch.float64))
        return torch.stack([sq, sq])

    def momentum(
        self, optimizer: Optimizer, group: dict, p: torch.Tensor
    ) -> tuple[torch.Tensor | None, float]:
        """The momentum buffer of ``p`` and the factor that brings it to gradient units."""
        return None, 1.0

    def noise_S(self, optimizer: Optimizer, cfg: Any) -> float | None:
        """The family's own input S of the noise law AE-4 (the only law that reads S), or None:
        AE-4 then reads the gradient-noise fraction S of AE-1 (every gradient family)."""
        return None

    def state_dict(self) -> dict[str, Any]:
        """The binding's own filter state for checkpoints (none on a gradient family)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""


class SGDBinding(Binding):
    family = "sgd"
    kinds = ("alpha", "beta1", "weight_decay", "sigma")
    columns = {"alpha": "lr", "beta1": "momentum", "weight_decay": "weight_decay", "sigma": "sigma"}
    _field = {"alpha": "lr", "beta1": "momentum", "weight_decay": "weight_decay"}

    def read(self, group: dict, kind: str) -> float:
        return float(group[self._field[kind]])

    def write(self, group: dict, kind: str, value: float) -> None:
        group[self._field[kind]] = value

    def momentum(self, optimizer, group, p):
        # buf = beta buf + (1 - d) g  ->  steady state (1 - d)/(1 - beta) g
        buf = optimizer.state.get(p, {}).get("momentum_buffer")
        beta = float(group["momentum"])
        damp = 1.0 - float(group.get("dampening", 0.0))
        return buf, (1.0 - beta) / damp if damp > 0 else 1.0


class AdamBinding(Binding):
    family = "adam"
    # Adam's update is invariant to the loss scale (up to eps): nothing for the gauge to undo, and
    # both gauge signals drift while Adam converges (q ~ 1/sqrt(loss); ||P g|| falls as v lags)
    gauge_signal = "none"
    kinds = ("alpha", "beta1", "beta2", "eps", "weight_decay", "sigma")
    columns = {
        "alpha": "lr",
        "beta1": "beta1",
        "beta2": "beta2",
        "eps": "eps",
        "weight_decay": "weight_decay",
        "sigma": "sigma",
    }

    def read(self, group: dict, kind: str) -> float:
        if kind == "alpha":
            return float(group["lr"])
        if kind == "beta1":
            return float(group["betas"][0])
        if kind == "beta2":
            return float(group["betas"][1])
        return float(group[kind])

    def write(self, group: dict, kind: str, value: float) -> None:
        if kind == "alpha":
            group["lr"] = value
        elif kind == "beta1":
            group["betas"] = (value, group["betas"][1])
        elif kind == "beta2":
            group["betas"] = (group["betas"][0], value)
        else:
            group[kind] = value

    def precond(self, optimizer, group, params, grads):
        # P g = g / d, d = sqrt(v_hat) + eps: ||P g||^2 = ||g / d||^2, <g, P g> = ||g / sqrt d||^2
        eps = float(group["eps"])
        states = [optimizer.state.get(p, {}) for p in params]
        if any("exp_avg_sq" not in st for st in states):  # before the first step: v_hat = g^2
            d = torch._foreach_add(torch._foreach_abs(grads), eps)
        else:
            beta2 = float(group["betas"][1])
            steps = [float(st["step"]) for st in states]
            if len(set(steps)) == 1:  # the usual case: one flat pass, two transient buffers
                bc = 1.0 - beta2 ** steps[0] if steps[0] > 0 else 1.0
                d = torch.cat([st["exp_avg_sq"].reshape(-1) for st in states])
                d.div_(bc).sqrt_().add_(eps)
                g = torch.cat([x.reshape(-1) for x in grads])
                w = g / d
                return torch.stack([torch.dot(w, w), torch.dot(w, g)]).double().cpu()
            bcs = [1.0 - beta2**t if t > 0 else 1.0 for t in steps]
            d = torch._foreach_div([st["exp_avg_sq"] for st in states], bcs)
            torch._foreach_sqrt_(d)
            torch._foreach_add_(d, eps)
        w = torch._foreach_div(grads, torch._foreach_sqrt(d))
        gpg = torch.stack(torch._foreach_norm(w)).double().pow(2).sum()
        torch._foreach_div_(w, torch._foreach_sqrt(d))
        sq = torch.stack(torch._foreach_norm(w)).double().pow(2).sum()
        return torch.stack([sq, gpg]).cpu()

    def momentum(self, optimizer, group, p):
        st = optimizer.state.get(p, {})
        buf = st.get("exp_avg")
        if buf is None:
            return None, 1.0
        step = float(st["step"])
        bc = 1.0 - float(group["betas"][0]) ** step if step > 0 else 1.0
        return buf, 1.0 / bc


class AdafactorBinding(Binding):
    family = "adafactor"
    gauge_signal = "none"  # scale-free update, gamma = alpha sqrt(n): nothing to regulate
    kinds = ("alpha", "eps", "weight_decay", "sigma")
    columns = {"alpha": "lr", "eps": "eps", "weight_decay": "weight_decay", "sigma": "sigma"}

    def read(self, group: dict, kind: str) -> float:
        if kind == "alpha":
            return float(group["lr"])
        if kind == "eps":
            e1 = group["eps"][0]
            return _F32_EPS if e1 is None else float(e1)
        return float(group[kind])

    def write(self, group: dict, kind: str, value: float) -> None:
        if kind == "alpha":
            group["lr"] = value
        elif kind == "eps":
            group["eps"] = (value, group["eps"][1])
        else:
            group[kind] = value

    def precond(self, optimizer, group, params, grads):
        # P g = g / RMS(g) per tensor: ||P g||^2 = numel, <g, P g> = ||g|| sqrt(numel)
        n = sum(g.numel() for g in grads)
        gpg = sum(
            (g.double().norm() * math.sqrt(g.numel()) for g in grads),
            torch.zeros((), dtype=torch.float64),
        )
        return torch.stack([torch.tensor(float(n), dtype=torch.float64), gpg.cpu()])


class ESBinding(Binding):
    """Evolution Strategies (``baselines.es``: OpenAI-ES, EGGROLL), recognised by the optimizer's
    ``ae_family = "es"``: alpha -> ``lr`` (lr), es_sigma -> ``sigma`` (sigma), weight_decay.

    The gradient AE measures (rho, S, gamma) is the ES estimate of the loss gradient that the
    optimizer's ``tell`` wrote into ``p.grad`` before the step; the update is an SGD step on it,
    so P = identity. ``sigma`` here is the ES perturbation std itself (absolute, parameter
    units), driven by the noise law AE-4 through the kind ``es_sigma`` (log chart, box relative
    to the configured sigma: ``ae.coefs.es_sigma``); AE adds no parameter noise of its own on an
    ES (its ``sigma`` kind is not bound, and ``ae.noise.sigma_init`` must stay 0). A sigma
    written at step t shapes the draws of generation t + 1 (this generation's estimate was
    already drawn); an alpha written at step t applies to this update. Gauge: with centered-rank
    shaping the estimate is invariant to any increasing transform of the fitness, the loss
    scale included, so the gauge (AE-8) idles, as on Adam; with ``shaping=none`` the estimate
    scales with the loss and the gauge regulates the relative step as on SGD. With
    ``update=adam`` P is Adam's preconditioner (the optimizer keeps Adam's state names) and the
    gauge idles. The step does not scale with sigma (``decouple``, :mod:`baselines.es.core`:
    the configured sigma's divisor and its rank-step length), so alpha and es_sigma are
    separate knobs: alpha sets the step, es_sigma the smoothing scale.

    AE-4 on ES (this project's reading, docs/es.md): the noise law's S, the only input no other
    law reads, is the ES-native :meth:`noise_S` = ``S* (1 - LP(K^2) / K*^2)`` from the curvature
    ratio K of the mirrored fitnesses (:meth:`noise_signals`); stall, V and A are the shared
    AE-1 signals. The controller reads it through the generic hook ``Binding.noise_S``.

    alpha on ES (this project's reading of AE-2 for ES, docs/es.md): alpha's progress term is
    off (:attr:`drive_off`). AE-2 raises alpha while the loss falls because the phase terms
    (AE-2's w_c, AE-5's w_m and the shrink at rho < -rho_max) lower it once the step
    overshoots. On ES rho is the cosine of consecutive ES estimates, which share only their
    gradient component: at M draws in n >> M dimensions it is ~ M / n of the true gradients'
    cosine and reads ~0 whatever the step (regression, 16 draws in 76k parameters: |rho| <
    0.003 over the run), so the progress term ran unopposed: it raised lr 1.3x during the early
    descent, and vanilla ES at a fixed lr 1.3x the configured one ends where full AE did
    (regression seed 0: val MSE 0.364 vs 0.365; lr 1.0x: 0.186). Without it alpha keeps
    the terms that lower it (variance, phase and AE-5 where rho is readable, as on Rosenbrock
    d = 10, n < M) and its leak to the configured value. Measured at 300 generations, cpu
    scale, EGGROLL, 5 seeds (docs/es.md): regression full AE last-5 1.91x -> 1.02x of vanilla
    ES, Rosenbrock unchanged (0.44x). Chosen on these two tuning problems only.
    """

    family = "es"
    #: the step is lr's and the configured sigma's (``decouple``), not es_sigma's
    step_free = ("es_sigma",)
    #: S carries both directions on ES (:meth:`noise_S`); a loss-variance spike is the step's
    #: (alpha's) business once the step does not scale with sigma
    noise_reads_V = False
    #: alpha's progress drive has no brake on ES (class docstring, "alpha on ES")
    drive_off = {"alpha": ("progress",)}
    kinds = ("alpha", "weight_decay", "es_sigma")
    columns = {"alpha": "lr", "weight_decay": "weight_decay", "es_sigma": "sigma"}
    _field = {"alpha": "lr", "weight_decay": "weight_decay", "es_sigma": "sigma"}

    def read(self, group: dict, kind: str) -> float:
        return float(group[self._field[kind]])

    def write(self, group: dict, kind: str, value: float) -> None:
        group[self._field[kind]] = value

    def precond(self, optimizer, group, params, grads):
        # update=adam (OpenAI-ES's setting): the Adam preconditioner over the ES estimate
        if self.update == "adam":
            return AdamBinding.precond(self, optimizer, group, params, grads)
        return super().precond(optimizer, group, params, grads)

    def momentum(self, optimizer, group, p):
        if self.update == "adam":
            return AdamBinding.momentum(self, optimizer, group, p)
        return None, 1.0

    #: AE-4's set point of the curvature ratio K on ES (:meth:`noise_S`): curvature equal to
    #: slope, the boundary between the linear and the curvature regime of a mirrored pair;
    #: a priori, then checked on the tuning problems (docs/es.md, "AE on ES")
    k_star: float = 1.0

    def __init__(self, shaping: str = "centered_ranks", update: str = "sgd") -> None:
        scale_free = shaping == "centered_ranks" or update == "adam"
        self.gauge_signal = "none" if scale_free else "relative"
        self.update = update
        self._k2: float | None = None  # LP(K^2)
        self._seen = 0  # the optimizer's generation count at the last filter update

    @staticmethod
    def noise_signals(optimizer: Optimizer) -> dict[str, float] | None:
        """This generation's ES-native sigma signal: ``curvature`` K = rms(even part) /
        rms(odd part) of the mirrored fitnesses around the centre
        (``aebench.es_module.curvature_ratio``), which grows with sigma and is scale-free; None
        before the first generation or when the fitness is flat."""
        opt = getattr(optimizer, "optimizer", optimizer)
        k = float(getattr(opt, "curvature", math.nan))
        return {"curvature": k} if not math.isnan(k) else None

    def noise_S(self, optimizer: Optimizer, cfg: Any) -> float | None:
        """AE-4's S on ES, this project's reading of the noise law for ES (docs/es.md):

            S / S* := 1 - LP(K^2) / K*^2,   clipped to [-clip, 1],

        K the curvature ratio of :meth:`noise_signals`, LP an EMA with ``ae.signals.tc_var``
        (K^2 is a variance ratio: the curvature share over the slope share of the members'
        spread), updated once per generation, K*  = :attr:`k_star`, ``clip`` =
        ``ae.signals.clip``. On ES the noise law reads no loss variance (:attr:`noise_reads_V`,
        k_v = 0), so the bracket ``k_s stall + k_u S/S* + k_a (A - A*)`` raises sigma by up to
        k_u while the population sees slope only (K << K*: the smoothing is finer than the
        curvature scale) and lowers it, without bound up to the clip, once curvature swamps
        the slope (K >> K*); K grows as sigma in the smooth regime, so sigma settles at
        K = K* sqrt(1 + (k_s stall + k_a (A - A*)) / k_u): K* when the loss falls, 1.7 K* at a
        full stall with the default gains, instead of at a wall (measured in docs/es.md:
        regression 0.22-0.26 x the configured sigma). The gradient-noise
        fraction S does not respond to ES sigma (S ~ 1: consecutive estimates are near
        orthogonal at population << dimension), which is what ran sigma up. Before the first
        usable K (flat fitness, no mirrored pairs): 0, no push either way. Several param groups
        share one population, hence one value (the filter steps once per generation whichever
        group asks)."""
        opt = getattr(optimizer, "optimizer", optimizer)
        clip = float(cfg.signals.clip)
        gen = int(getattr(opt, "generations", 0))
        if gen != self._seen:
            n, self._seen = gen - self._seen, gen
            k = float(getattr(opt, "curvature", math.nan))
            if not math.isnan(k):
                k2 = min(k * k, (1.0 + clip) * self.k_star**2)  # bounded input (K = inf too)
                if self._k2 is None:
                    self._k2 = k2
                else:  # n generations since the last update (ae.every > 1): the latest K n times
                    a = 1.0 - (1.0 - 1.0 / max(float(cfg.signals.tc_var), 1.0)) ** n
                    self._k2 += a * (k2 - self._k2)
        if self._k2 is None:
            return 0.0
        x = 1.0 - self._k2 / self.k_star**2
        return float(cfg.targets.s_star) * max(-clip, min(1.0, x))

    def state_dict(self) -> dict[str, Any]:
        """The sigma signal's filter, LP(K^2), and the generation it last stepped at (with the
        optimizer's own generation count, ``ESOptimizer.state_dict``, a resumed run steps its
        filter exactly as an uninterrupted one)."""
        return {"k2": self._k2, "seen": self._seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self._k2, self._seen = state["k2"], int(state["seen"])


def binding_for(optimizer: Optimizer) -> Binding:
    """The binding of an optimizer's family (``ValueError`` for an unsupported optimizer)."""
    opt = getattr(optimizer, "optimizer", optimizer)  # unwrap LightningOptimizer
    es_family = getattr(opt, "ae_family", None)  # baselines/es (aebench does not import it)
    if es_family == "es":
        return ESBinding(getattr(opt, "shaping", "centered_ranks"), getattr(opt, "update", "sgd"))
    if es_family is not None:
        raise ValueError(
            f"optimizer={type(opt).__name__}: AE has no coefficient binding for it (it adapts "
            "its own step size); AE runs with SGD, Adam, AdamW, Adafactor, OpenAI-ES, EGGROLL"
        )
    if isinstance(opt, torch.optim.Adam):  # AdamW subclasses Adam in torch >= 2.6
        return AdamBinding()
    if isinstance(opt, torch.optim.AdamW):
        return AdamBinding()
    if isinstance(opt, torch.optim.SGD):
        return SGDBinding()
    adafactor = getattr(torch.optim, "Adafactor", None)
    if adafactor is not None and isinstance(opt, adafactor):
        return AdafactorBinding()
    raise ValueError(
        f"optimizer={type(opt).__name__}: AE has no coefficient binding for it; "
        "supported: SGD, Adam, AdamW, Adafactor"
    )


@torch.no_grad()
def add_parameter_noise(
    params: list[torch.Tensor], sigma: float, rms_floor: float, generator: torch.Generator
) -> None:
    """``p += sigma * max(RMS(p), rms_floor) * N(0, I)`` for each p (see module docstring).

    One draw per parameter tensor, in order (the generator's stream of a per-tensor draw), the
    scales computed on the device (no host synchronisation: one foreach norm and a few ops on
    one value per tensor), one foreach multiply and one foreach add. sigma <= 0 draws nothing.
    A flat buffer for the draws was measured slower here than a draw per tensor (its views,
    ~1.5 us each, cost more than the allocations they save; docs/performance.md).
    """
    if sigma <= 0.0 or not math.isfinite(sigma) or not params:
        return
    dtype = params[0].dtype
    same = all(p.dtype == dtype for p in params)
    # RMS in float32 as the per-tensor path took it (the norms were read as float32)
    rms = torch.stack(torch._foreach_norm(params)).float().double()
    rms = rms.div_(_sqrt_numels(tuple(p.numel() for p in params), rms.device))
    scales = rms.clamp_min_(rms_floor).mul_(sigma)
    noise = [
        torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype) for p in params
    ]
    if same:
        torch._foreach_mul_(noise, list(scales.to(dtype).unbind()))
    else:
        for v, s in zip(noise, scales.unbind(), strict=True):
            v.mul_(s.to(dtype=v.dtype))
    torch._foreach_add_(params, noise)


@functools.lru_cache(maxsize=64)
def _sqrt_numels(numels: tuple[int, ...], device: torch.device) -> torch.Tensor:
    """``sqrt(max(numel, 1))`` per tensor, float64 on ``device`` (built once per model)."""
    return torch.tensor([math.sqrt(max(n, 1)) for n in numels], dtype=torch.float64, device=device)


@dataclass
class ModelCoefficient:
    """One coefficient that lives in a task's model, not in an optimizer param group.

    ``kind`` is one of :data:`aebench.ae.config.MODEL_KINDS` (its chart, gains and box come from
    ``ae.coefs.<kind>``); ``column`` names it (curve column and AE's key; unique per model);
    ``read``/``write`` get and set its value in its own units. ``share`` multiplies the kind's
    budget weight m (AE-6, AE-10): ``1/N`` for each of N per-block gates makes them weigh as one.
    """

    kind: str
    column: str
    read: Callable[[], float]
    write: Callable[[float], None]
    share: float = 1.0


def attribute_coefficient(
    obj: Any, name: str, kind: str, column: str, share: float = 1.0, index: int | None = None
) -> ModelCoefficient:
    """A :class:`ModelCoefficient` reading and writing ``obj.<name>`` (``obj.<name>[index]``
    for a list of values, e.g. one gate per block)."""
    if index is None:
        return ModelCoefficient(
            kind,
            column,
            lambda: float(getattr(obj, name)),
            lambda v: setattr(obj, name, float(v)),
            share,
        )

    def write(value: float) -> None:
        getattr(obj, name)[index] = float(value)

    return ModelCoefficient(kind, column, lambda: float(getattr(obj, name)[index]), write, share)
