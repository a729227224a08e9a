"""The AE laws AE-2 ... AE-10 as small pure functions on tensors, and their composition.

All laws act on the chart coordinates z of the evolved coefficients (:mod:`aebench.ae.charts`),
one entry per coefficient kind of the param group, float64. Every function here is smooth in the
gains W, Gamma, C and in the drive scales tau (AE-9; shown by ``tests/ae/test_ae9_smooth.py`` with
``torch.autograd.gradcheck``), except for three switches that are piecewise constant in the gains
(zero derivative almost everywhere): the hard budget clip, the ``[.]_+`` of the dual update and
the Lyapunov guard (AE-10), which is a discrete safety rule.

Order within one step (readings #9), as composed by :func:`coefficient_step` and called from
``on_before_optimizer_step`` with this step's gradient present:

1. measure (AE-1, :mod:`aebench.ae.signals`) with the loss and gradient of this step;
2. drive u (AE-2 terms, AE-5's phase term W_m, AE-7 coupling; in the controller's float path
   also the plug-in terms of ``ae.terms``, :class:`Term`), times eta_a;
3. gauge (AE-8) on log alpha, times eta_gamma; 4. noise law (AE-4) on log sigma, times eta_sigma;
   (each meta-step also times the Lyapunov guard factor g of AE-10);
5. budget (AE-6): the step is divided by sqrt(1 + lambda), then hard-clipped;
6. evolution (AE-3): z + step; 7. resonance shrink (AE-5) on alpha and sigma;
8. projection onto Omega (AE-3's Pi), with non-finite entries replaced by the old z;
9. dual update of lambda (AE-6); then (in the controller) energy and guard (AE-10).

The new coefficients are written before ``optimizer.step()``, so they apply to this step's
gradient: the coefficient that multiplies g_t has seen g_t (the control loop has no extra delay).
"""

from __future__ import annotations

import importlib
import math
import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import torch
import torch.nn.functional as F

from aebench.ae.charts import has_off_floor
from aebench.ae.config import AEConfig, LawsConfig

LN2 = math.log(2.0)


# ----------------------------------------------------------------------------- AE-2 drive terms
def progress_term(T: Any, w_p: torch.Tensor, tau_p: Any) -> torch.Tensor:
    """AE-2 progress: ``W_p tanh(-T / tau_p)``. A falling loss (T < 0) raises the coefficient
    for W_p > 0. T is the relative trend (readings #2), so tau_p is dimensionless."""
    return w_p * torch.tanh(-torch.as_tensor(T, dtype=w_p.dtype) / tau_p)


def variance_term(V: Any, w_v: torch.Tensor, tau_v: Any, centre: bool = True) -> torch.Tensor:
    """AE-2 stability: ``-W_v softplus(V / tau_v)``, centred by default.

    readings #3: the literal softplus is ln 2 at zero variance, a constant negative bias that
    only the leak balances, putting the equilibrium at ``z* = zbar - W_v ln2 / Gamma`` (tested). We
    centre it, ``-W_v (softplus(V/tau_v) - ln 2)``, so zero variance exerts no pull and the
    equilibrium of an idle controller is the prior itself (``centre_softplus=false`` restores the
    literal form).
    """
    sp = F.softplus(torch.as_tensor(V, dtype=w_v.dtype) / tau_v)
    if centre:
        sp = sp - LN2
    return -w_v * sp


def reward_term(R: Any, w_r: torch.Tensor, tau_r: Any) -> torch.Tensor:
    """AE-2 exploitation: ``W_r tanh(R / tau_r)`` (R relative; zero on tasks with no reward)."""
    return w_r * torch.tanh(torch.as_tensor(R, dtype=w_r.dtype) / tau_r)


def phase_term(
    rho: Any, w_c: torch.Tensor, rho_star: float, tanh_mask: torch.Tensor | None = None
) -> torch.Tensor:
    """AE-2 phase: ``W_c (rho - rho*)``: aligned gradients (rho > rho*) push up for W_c > 0.
    Kinds with ``tanh_mask`` 1 use the seed's AE-SGDm beta form ``W_c tanh(rho - rho*)``."""
    d = torch.as_tensor(rho, dtype=w_c.dtype) - rho_star
    if tanh_mask is not None and bool(tanh_mask.any()):
        d = torch.where(tanh_mask > 0, torch.tanh(d), d)
    return w_c * d


def leak_term(z: torch.Tensor, zbar: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
    """AE-2 leak toward the prior: ``-Gamma (z - zbar)`` (in chart coordinates)."""
    return -gamma * (z - zbar)


def barrier_force(
    z: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    mu: float,
    width: float,
    lower: torch.Tensor,
) -> torch.Tensor:
    """AE-2 barrier of Omega: ``-dpsi/dz = mu (exp(-x/w) - exp(-(1-x)/w))``, x = (z-lo)/(hi-lo).

    Bounded by mu and negligible in the interior (e^-25 at mid-box for w = 0.02). ``lower`` (0/1
    per kind) drops the lower wall for weight decay, sigma, l1 and dropout, whose floor means
    "off" and is a legitimate resting point.
    """
    x = (z - lo) / (hi - lo)
    return mu * (lower * torch.exp(-x / width) - torch.exp(-(1.0 - x) / width))


def barrier_potential(
    z: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    mu: float,
    width: float,
    lower: torch.Tensor,
) -> torch.Tensor:
    """psi_Omega(z) whose negative gradient is :func:`barrier_force` (summed over kinds)."""
    x = (z - lo) / (hi - lo)
    return (
        mu * width * (hi - lo) * (lower * torch.exp(-x / width) + torch.exp(-(1.0 - x) / width))
    ).sum()


# ----------------------------------------------------------------------------- AE-3 evolution
def project(
    z_new: torch.Tensor, z_old: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor
) -> torch.Tensor:
    """AE-3 projection Pi_Omega onto the box [lo, hi] in chart space.

    Non-finite entries (from NaN/inf signals or gains) are replaced by the old, feasible z first,
    so z never leaves Omega whatever the input.
    """
    z = torch.where(torch.isfinite(z_new), z_new, z_old)
    return torch.maximum(torch.minimum(z, hi), lo)


def evolve(z: torch.Tensor, step: torch.Tensor, lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """AE-3: ``a_{t+1} = Pi_Omega(a_t * exp(eta_a u_t))``, i.e. ``z <- Pi(z + eta u)`` in the
    chart; for log charts ``exp(z + eta u) = a exp(eta u)`` exactly."""
    return project(z + step, z, lo, hi)


# ----------------------------------------------------------------------------- AE-4 noise
def noise_drive(
    T: Any,
    V: Any,
    S: Any,
    rho: Any,
    k: torch.Tensor,
    eps_T: float,
    v_star: float,
    s_star: float,
    a_star: float,
) -> torch.Tensor:
    """AE-4 bracket: ``k_s 1{|T| < eps_T} + k_u S/S* - k_v V/V* + k_a (A - A*)``.

    ``k = [k_s, k_u, k_v, k_a]``. The stall indicator is smoothed to ``exp(-(T/eps_T)^2)`` (1 at
    T = 0, e^-1 at |T| = eps_T) to keep AE-9; the step-quality proxy is ``A = (1 + rho)/2`` in
    [0, 1]. Caller multiplies by eta_sigma: ``log sigma += eta_sigma * bracket``. A stall raises
    sigma; a variance spike lowers it.
    """
    T, V, S, rho = (torch.as_tensor(x, dtype=k.dtype) for x in (T, V, S, rho))
    stall = torch.exp(-((T / eps_T) ** 2))
    A = 0.5 * (1.0 + rho)
    return k[0] * stall + k[1] * S / s_star - k[2] * V / v_star + k[3] * (A - a_star)


# ----------------------------------------------------------------------------- AE-5 resonance
def resonance_phase(rho: Any, w_m: torch.Tensor, rho_star: float) -> torch.Tensor:
    """AE-5 phase term ``u += W_m (rho - rho*)``; ``w_m`` is non-zero on alpha only (the
    step-like coefficient whose phase margin it controls)."""
    return w_m * (torch.as_tensor(rho, dtype=w_m.dtype) - rho_star)


def shrink_amount(
    V: Any, rho: Any, v_max: float, rho_max: float, width: float, aligned: bool = False
) -> torch.Tensor:
    """AE-5 switch s in [0, 1]: the soft OR of ``V > V_max`` and ``rho < -rho_max``.

    ``s = 1 - (1 - sig((V - V_max)/(w V_max))) (1 - sig((-rho - rho_max)/w))``. The shrink
    ``a <- a / (1 + kappa)`` is applied as ``z -= s log(1 + kappa)`` (a smooth switch, AE-9).

    readings #8: the shrink touches alpha and sigma only (``LawParams.shrink_mask``): both
    scale a displacement per step, which is what a phase flip or a variance spike says is too
    large. Shrinking beta toward 0 would shorten the momentum memory (a filter, not a step) and
    eps or lambda are not steps; those are left to their drives.

    Reading of ``|rho| > rho_max``: only the phase-flip side (rho < -rho_max) triggers by default.
    Consistently aligned gradients (rho near +1) are the signature of too small a step; shrinking
    alpha there would feed back into ever smaller steps. ``aligned=True`` adds the literal
    rho > rho_max side.
    """
    V = torch.as_tensor(V, dtype=torch.float64)
    rho = torch.as_tensor(rho, dtype=torch.float64)
    keep = (1.0 - torch.sigmoid((V - v_max) / (width * v_max))) * (
        1.0 - torch.sigmoid((-rho - rho_max) / width)
    )
    if aligned:
        keep = keep * (1.0 - torch.sigmoid((rho - rho_max) / width))
    return 1.0 - keep


# ----------------------------------------------------------------------------- AE-6 budget
def budget_energy(step: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """AE-6 adaptation energy ``||dz||_M^2 = sum_k m_k dz_k^2`` (M diagonal, chart units).

    :func:`coefficient_step` passes the theory's ``||a_{t+1} - a_t||_M^2`` as the *projected*
    evolution step ``Pi(z + step) - z``: what actually moved, so a coefficient pinned at a bound
    of Omega books no energy (it used to book its unprojected push every step and drain the
    budget of the others). The resonance shrink is left out: it is a safety override (AE-5) that
    the budget's dual variable must not learn to resist.
    """
    return (m * step * step).sum()


def budget_scale(step: torch.Tensor, lam: Any) -> torch.Tensor:
    """AE-6: the meta-step is divided by ``sqrt(1 + lambda_t)``."""
    return (
        step / math.sqrt(1.0 + float(lam))
        if not isinstance(lam, torch.Tensor)
        else (step / torch.sqrt(1.0 + lam))
    )


def hard_clip(step: torch.Tensor, m: torch.Tensor, cap: float) -> torch.Tensor:
    """Hard per-step clip (readings #6): rescale so that ``||dz||_M^2 <= cap``."""
    e = budget_energy(step, m)
    if not bool(torch.isfinite(e)) or float(e) <= cap:
        return step
    return step * torch.sqrt(cap / e)


def dual_update(lam: Any, energy: Any, B: float, eta_lambda: float) -> Any:
    """AE-6 dual ascent: ``lambda_{t+1} = [lambda_t + eta_lambda (||dz||_M^2 - B)]_+``.

    What this guarantees (tested): since ``[x]_+ >= x``, summing gives
    ``sum_{t<n} (E_t - B) <= (lambda_n - lambda_0) / eta_lambda``: the change is within budget on
    average, up to ``lambda_n / (eta_lambda n)``; not at every step. Per step only the hard clip
    (``budget.clip * B``) holds.
    """
    value = lam + eta_lambda * (energy - B)
    if isinstance(value, torch.Tensor):
        return torch.clamp(value, min=0.0)
    return max(0.0, value)


# ----------------------------------------------------------------------------- AE-7 coupling
def coupling_term(C: torch.Tensor, z: torch.Tensor, zbar: torch.Tensor) -> torch.Tensor:
    """AE-7: ``u += C zeta`` with ``zeta = z - zbar``.

    zeta = [log alpha, log 1/(1-beta), log sigma, log lambda, ...] as in the theory, but centred at
    the priors: raw logs carry units (log alpha depends on the task), so an uncentred C zeta would
    add a unit-dependent constant drive; centred, C only acts on deviations from the prior.
    """
    return C @ (z - zbar)


# ----------------------------------------------------------------------------- AE-8 gauge
def gauge_drive(
    gamma: Any, gamma_star: Any, form: str = "log", soft_clip: float = 3.0
) -> torch.Tensor:
    """AE-8: ``log alpha += eta_gamma (gamma* - alpha ||g||)/gamma*`` (``form='literal'``).

    Default ``form='log'``: ``G tanh(log(gamma*/gamma) / G)``, equal to the literal form to first
    order, symmetric in scaling up and down (c = 10 and c = 0.1 are restored alike), bounded by
    G = ``soft_clip``, and scale-covariant: with eta_gamma = 1 and no clip it restores gamma* in one
    step.

    Which step is regulated (``gauge.signal``). ``step``: the literal gamma = alpha ||P g|| (P the
    preconditioner, :mod:`aebench.ae.bindings`). With a fixed gamma* this is normalised gradient
    descent: as ||g|| falls during convergence it raises alpha and holds the step length at its
    initial value, so the loss stalls at the level where that step fits (we measured this on a
    noisy regression with tuned SGDm: 100x worse final loss). ``relative`` (default):
    ``q = alpha <g, P g> / LP(|l|)``, the first-order predicted relative decrease per step (a damped
    Polyak ratio). Multiplying the loss by c multiplies q by c exactly as it multiplies gamma, so
    the gauge answers a scale change the same way (alpha -> alpha/c, gamma matched), but q stays
    roughly constant while a quadratic-like loss converges (||g||^2 ~ l), so the gauge does not
    fight convergence. Adam's q is invariant to c (Adam is), so there the gauge acts only on drift.
    """
    gamma = torch.as_tensor(gamma, dtype=torch.float64)
    if form == "literal":
        return (gamma_star - gamma) / gamma_star
    ratio = torch.log(torch.as_tensor(gamma_star, dtype=torch.float64) / gamma)
    return soft_clip * torch.tanh(ratio / soft_clip)


# ----------------------------------------------------------------------------- AE-10 Lyapunov
def lyapunov_energy(
    level_rel: Any,
    z: torch.Tensor,
    zbar: torch.Tensor,
    m: torch.Tensor,
    weight: float,
    psi: Any = 0.0,
) -> torch.Tensor:
    """AE-10: ``V_t = LP(l)/LP(l)_0 + (weight/2) ||z - zbar||_M^2 + psi_Omega(z)``.

    The loss term is the filtered level relative to the first filtered level, so the energy is
    scale-free like the drive and adds to chart units without a unit clash. ``z``, ``zbar`` are
    the coordinates the controller measures the distance in
    (:meth:`aebench.ae.controller.AEControl._energy_coordinates`: the chart, except the kinds
    whose floor means "off", which are measured in their own units as a fraction of their box).
    """
    d = z - zbar
    return level_rel + 0.5 * weight * (m * d * d).sum() + psi


def guard_step(
    g: float, rise: float, tol: float, shrink: float, recover: float, g_min: float
) -> tuple[float, bool]:
    """AE-10 guard (readings #7). ``rise`` = LP_window(E_t - E_{t-1}), the windowed mean energy
    increment. If ``rise > tol`` the meta-step factor shrinks, ``g <- max(g_min, g * shrink)``,
    and the event is counted; otherwise it recovers, ``g <- min(1, g * recover)``. g multiplies
    eta_a, eta_sigma and eta_gamma (the small-eta condition of Section 8)."""
    if rise > tol:
        return max(g_min, g * shrink), True
    return min(1.0, g * recover), False


# ----------------------------------------------------------------------------- composition
@dataclass
class LawParams:
    """The gains of one param group as float64 tensors over its K kinds (differentiable, AE-9).

    ``W[k] = (w_p, w_v, w_r, w_c)``, ``leak`` = diag(Gamma), ``C`` the coupling matrix, ``tau`` =
    (tau_p, tau_v, tau_r), ``w_m`` AE-5's phase gains, ``kappa`` AE-4's (k_s, k_u, k_v, k_a), ``m``
    the budget metric; ``lower`` (barrier), ``shrink_mask``, ``alpha`` and ``sigma`` (one-hot
    masks) describe the kinds.
    """

    W: torch.Tensor
    leak: torch.Tensor
    C: torch.Tensor
    tau: torch.Tensor
    w_m: torch.Tensor
    kappa: torch.Tensor
    m: torch.Tensor
    lower: torch.Tensor
    shrink_mask: torch.Tensor
    alpha: torch.Tensor
    sigma: torch.Tensor
    #: ``ae=canonical`` masks: the tanh phase form, and the additive (own-units) update
    phase_tanh: torch.Tensor | None = None
    additive: torch.Tensor | None = None


def params_from_config(cfg: AEConfig, kinds: list[str]) -> LawParams:
    """Build :class:`LawParams` for the given kinds from the config."""
    dt = torch.float64
    coefs = [getattr(cfg.coefs, k) for k in kinds]
    K = len(kinds)
    C = torch.zeros(K, K, dtype=dt)
    if "alpha" in kinds and "beta1" in kinds:
        ia, ib = kinds.index("alpha"), kinds.index("beta1")
        C[ia, ib] = cfg.coupling.alpha_from_beta1
        C[ib, ia] = cfg.coupling.beta1_from_alpha

    def onehot(name: str) -> torch.Tensor:
        return torch.tensor([1.0 if k == name else 0.0 for k in kinds], dtype=dt)

    return LawParams(
        W=torch.tensor([[c.w_p, c.w_v, c.w_r, c.w_c] for c in coefs], dtype=dt).reshape(K, 4),
        leak=torch.tensor([c.leak for c in coefs], dtype=dt),
        C=C,
        tau=torch.tensor([cfg.drive.tau_p, cfg.drive.tau_v, cfg.drive.tau_r], dtype=dt),
        w_m=onehot("alpha") * cfg.resonance.w_m,
        kappa=torch.tensor(
            [cfg.noise.kappa_s, cfg.noise.kappa_u, cfg.noise.kappa_v, cfg.noise.kappa_a], dtype=dt
        ),
        m=torch.tensor([c.m for c in coefs], dtype=dt),
        lower=torch.tensor([0.0 if has_off_floor(k) else 1.0 for k in kinds], dtype=dt),
        # an ES perturbation std (es_sigma, aebench.ae.bindings.ESBinding) obeys sigma's laws
        shrink_mask=onehot("alpha") + onehot("sigma") + onehot("es_sigma"),
        alpha=onehot("alpha"),
        sigma=onehot("sigma") + onehot("es_sigma"),
        phase_tanh=torch.tensor([1.0 if c.phase_tanh else 0.0 for c in coefs], dtype=dt),
        additive=torch.tensor([1.0 if c.additive else 0.0 for c in coefs], dtype=dt),
    )


def additive_in_chart(step: torch.Tensor, z: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The chart step equal to an additive update ``beta += s`` of a horizon-chart kind
    (z = log 1/(1-beta), so 1 - beta = e^-z): ``dz = -log(1 - s e^z)``; entries whose additive
    step would cross beta = 1 are capped just below (the projection then holds Omega)."""
    if not bool(mask.any()):
        return step
    arg = torch.clamp(1.0 - step * torch.exp(z), min=1e-12)
    return torch.where(mask > 0, -torch.log(arg), step)


@dataclass
class Signals:
    """The inputs of one coefficient step (floats or 0-dim tensors)."""

    T: Any
    V: Any
    R: Any
    rho: Any
    S: Any
    gamma: Any = None  # alpha_t ||P g_t|| before this update (None: gauge idle)
    gamma_star: Any = None  # the gauge target (None: not yet calibrated)


class Term(Protocol):
    """A plug-in drive term (``ae.terms.<name>``, docs/howto_add_law.md): AE-2's
    ``u_j += f_j(signals, z, zbar)``, one increment of u per coefficient j, before the meta-step
    eta_a, the guard g and the budget scale multiply u like every other drive term.

    ``signals``: this update's :class:`Signals` (floats); ``z``, ``zbar``: the chart coordinates
    of the coefficients and of their priors; ``kinds``: each coefficient's kind (``"alpha"``,
    ``"beta1"``, ...; a model coefficient by its kind, e.g. ``"gate"``). Returns one float per
    coefficient (0.0 where the term does not act). Acts in the controller's float path
    (:func:`drive_floats`) only: the tensor reference :func:`coefficient_step` and
    ``aebench-meta`` do not see plug-in terms.
    """

    def __call__(
        self, signals: Signals, z: list[float], zbar: list[float], kinds: list[str]
    ) -> list[float]: ...


def load_terms(terms: Mapping[str, Mapping[str, Any]]) -> list[tuple[str, Term]]:
    """The enabled plug-in terms of ``ae.terms`` as ``(name, term)``: each entry's ``_target_``
    (``module.Class``) imported and called with the entry's other keys (its gains); an entry
    with ``enabled: false`` is knocked out (never imported). Shapes are checked by
    :func:`aebench.ae.config.validate`; an import that fails is one line naming the key."""
    loaded = []
    for name, spec in terms.items():
        gains = {k: v for k, v in spec.items() if k not in ("_target_", "enabled")}
        if not spec.get("enabled", True):
            continue
        target = spec["_target_"]
        module, _, attr = target.rpartition(".")
        try:
            factory = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise ValueError(
                f"ae.terms.{name}._target_={target!r}: cannot import it ({exc}); the module must "
                "be importable (on PYTHONPATH)"
            ) from None
        loaded.append((name, factory(**gains)))
    return loaded


def _add_terms(
    u: list[float],
    terms: Sequence[tuple[str, Term]],
    s: Signals,
    z: list[float],
    zbar: list[float],
    kinds: list[str],
) -> list[float]:
    for name, term in terms:
        inc = [float(x) for x in term(s, z, zbar, kinds)]
        if len(inc) != len(u):
            raise ValueError(
                f"ae.terms.{name}: returned {len(inc)} increments for {len(u)} coefficients "
                f"({', '.join(kinds)}); it must return one float per coefficient"
            )
        u = [a + b for a, b in zip(u, inc, strict=True)]
    return u


@dataclass
class StepResult:
    z: torch.Tensor  # projected new chart coordinates
    step: torch.Tensor  # the evolution step after budget scaling and clip (before shrink)
    energy: torch.Tensor  # ||Pi(z + step) - z||_M^2 per step (divided by dt^2 for dt steps)
    lam: Any  # new dual variable
    shrink: torch.Tensor  # AE-5 switch s in [0, 1] (0 when resonance is off)
    coupling: torch.Tensor | None = None  # AE-7 C zeta (zeros when coupling is off)


def drive(
    z: torch.Tensor,
    zbar: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    s: Signals,
    p: LawParams,
    laws: LawsConfig,
    cfg: AEConfig,
) -> torch.Tensor:
    """u_t of AE-2 (+ AE-5's phase term, + AE-7's coupling); terms that are off are skipped."""
    u = torch.zeros_like(z)
    if laws.progress:
        u = u + progress_term(s.T, p.W[:, 0], p.tau[0])
    if laws.variance:
        u = u + variance_term(s.V, p.W[:, 1], p.tau[1], cfg.drive.centre_softplus)
    if laws.reward:
        u = u + reward_term(s.R, p.W[:, 2], p.tau[2])
    if laws.phase:
        u = u + phase_term(s.rho, p.W[:, 3], cfg.targets.rho_star, p.phase_tanh)
    if laws.leak:
        u = u + leak_term(z, zbar, p.leak)
    if laws.barrier:
        u = u + barrier_force(z, lo, hi, cfg.barrier.mu, cfg.barrier.width, p.lower)
    if laws.resonance:
        u = u + resonance_phase(s.rho, p.w_m, cfg.targets.rho_star)
    if laws.coupling:
        u = u + coupling_term(p.C, z, zbar)
    return u


def coefficient_step(
    z: torch.Tensor,
    zbar: torch.Tensor,
    lo: torch.Tensor,
    hi: torch.Tensor,
    s: Signals,
    lam: Any,
    guard: float,
    p: LawParams,
    laws: LawsConfig,
    cfg: AEConfig,
    dt: float = 1.0,
) -> StepResult:
    """One full coefficient update in the order of the module docstring (AE-2 ... AE-8, AE-6).

    ``dt`` = the number of optimizer steps this update stands for (``ae.every``): every per-step
    increment (drive, gauge, noise law, shrink, dual ascent) is taken ``dt`` times over, and the
    budget holds the per-step equivalent ``||step/dt||_M^2`` to B (the hard clip to
    ``dt^2 * clip * B``). ``dt = 1`` is the literal per-step law.

    Plug-in terms (``ae.terms``) are not differentiable here: a config with an enabled one is
    refused (they act in :func:`coefficient_step_floats`, the controller's path).
    """
    if any(spec.get("enabled", True) for spec in cfg.terms.values()):
        raise ValueError(
            f"ae.terms={sorted(cfg.terms)}: plug-in terms act in the controller's float path "
            "only; the tensor laws (AE-9 gradcheck, aebench-meta) cannot differentiate them"
        )
    step = (dt * cfg.eta_a * guard) * drive(z, zbar, lo, hi, s, p, laws, cfg)
    if laws.gauge and s.gamma is not None and s.gamma_star is not None:
        gd = gauge_drive(s.gamma, s.gamma_star, cfg.gauge.form, cfg.gauge.soft_clip)
        step = step + p.alpha * (dt * cfg.gauge.eta_gamma * guard) * gd
    if laws.noise:
        t = cfg.targets
        eps_T = t.eps_T_sqrt_v * math.sqrt(t.v_star) if t.eps_T_sqrt_v > 0 else t.eps_T
        nd = noise_drive(s.T, s.V, s.S, s.rho, p.kappa, eps_T, t.v_star, t.s_star, t.a_star)
        step = step + p.sigma * (dt * cfg.noise.eta_sigma * guard) * nd
    if laws.budget:
        step = budget_scale(step, lam)
        if cfg.budget.clip > 0:
            step = hard_clip(step, p.m, dt * dt * cfg.budget.clip * cfg.budget.B)
    if p.additive is not None:
        step = additive_in_chart(step, z, p.additive)
    z_new = z + step
    shrink = torch.zeros((), dtype=z.dtype)
    if laws.resonance:
        r = cfg.resonance
        shrink = shrink_amount(s.V, s.rho, r.v_max, r.rho_max, r.width, r.shrink_on_aligned)
        z_new = z_new - p.shrink_mask * (dt * math.log1p(r.kappa) * shrink)
    z_new = project(z_new, z, lo, hi)
    energy = budget_energy(project(z + step, z, lo, hi) - z, p.m) / (dt * dt)
    new_lam = lam
    if laws.budget:
        e = energy if isinstance(lam, torch.Tensor) else float(energy)
        if isinstance(e, torch.Tensor) or math.isfinite(e):
            new_lam = dual_update(lam, e, cfg.budget.B, dt * cfg.budget.eta_lambda)
    cz = coupling_term(p.C, z, zbar) if laws.coupling else torch.zeros_like(z)
    return StepResult(z=z_new, step=step, energy=energy, lam=new_lam, shrink=shrink, coupling=cz)


# ----------------------------------------------------------------------------- float path
# The controller's per-update arithmetic on plain Python floats (issue 15): a param group has a
# handful of coefficients, for which ~150 tiny float64 tensor ops cost more than the laws
# themselves. Same equations, same order of operations as the tensor functions above (which
# stay the reference and carry AE-9's differentiability: aebench.meta, tests/ae/test_ae9_smooth);
# tests/ae/test_fast_path.py replays both paths and checks every coefficient to 1e-12.
def _exp(x: float) -> float:
    try:
        return math.exp(x)
    except OverflowError:
        return math.inf


def _sigmoid(x: float) -> float:
    if x != x:
        return x
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _softplus(x: float) -> float:
    # torch.nn.functional.softplus (beta 1, threshold 20)
    return x if x > 20.0 else math.log1p(_exp(x))


def _is_finite(x: float) -> bool:
    return not (math.isinf(x) or x != x)


@dataclass
class FloatParams:
    """:class:`LawParams` as Python lists (one entry per kind; ``W`` and ``C`` as rows)."""

    W: list[list[float]]
    leak: list[float]
    C: list[list[float]]
    tau: list[float]
    w_m: list[float]
    kappa: list[float]
    m: list[float]
    lower: list[float]
    shrink_mask: list[float]
    alpha: list[float]
    sigma: list[float]
    phase_tanh: list[float]
    additive: list[float]
    #: C has a non-zero entry (else C zeta is skipped: all zeros)
    coupled: bool = True

    @classmethod
    def of(cls, p: LawParams) -> FloatParams:
        K = int(p.leak.shape[0])
        zeros = [0.0] * K
        C = p.C.tolist()
        return cls(
            W=p.W.tolist(),
            leak=p.leak.tolist(),
            C=C,
            tau=p.tau.tolist(),
            w_m=p.w_m.tolist(),
            kappa=p.kappa.tolist(),
            m=p.m.tolist(),
            lower=p.lower.tolist(),
            shrink_mask=p.shrink_mask.tolist(),
            alpha=p.alpha.tolist(),
            sigma=p.sigma.tolist(),
            phase_tanh=zeros if p.phase_tanh is None else p.phase_tanh.tolist(),
            additive=zeros if p.additive is None else p.additive.tolist(),
            coupled=any(c != 0.0 for row in C for c in row),
        )


@dataclass
class FloatStepResult:
    z: list[float]
    step: list[float]
    energy: float
    lam: float
    shrink: float
    coupling: list[float]


def _coupling(C: list[list[float]], z: list[float], zbar: list[float]) -> list[float]:
    # sum(map(mul)) adds the same products in the same order as sum(c * x for ...), faster
    d = [a - b for a, b in zip(z, zbar, strict=True)]
    return [sum(map(operator.mul, row, d)) for row in C]


def drive_floats(
    z: list[float],
    zbar: list[float],
    lo: list[float],
    hi: list[float],
    s: Signals,
    p: FloatParams,
    laws: LawsConfig,
    cfg: AEConfig,
    coupling: list[float] | None = None,
    terms: Sequence[tuple[str, Term]] = (),
    kinds: Sequence[str] = (),
) -> list[float]:
    """:func:`drive` on floats; ``coupling``: C zeta when already computed; ``terms``: the
    plug-in terms (:func:`load_terms`) added last, each called with ``kinds`` (one per entry
    of z)."""
    K = len(z)
    u = [0.0] * K
    if laws.progress:
        t = math.tanh(-float(s.T) / p.tau[0])
        u = [u[j] + p.W[j][0] * t for j in range(K)]
    if laws.variance:
        sp = _softplus(float(s.V) / p.tau[1])
        if cfg.drive.centre_softplus:
            sp = sp - LN2
        u = [u[j] + -p.W[j][1] * sp for j in range(K)]
    if laws.reward:
        t = math.tanh(float(s.R) / p.tau[2])
        u = [u[j] + p.W[j][2] * t for j in range(K)]
    if laws.phase:
        d = float(s.rho) - cfg.targets.rho_star
        dt_ = math.tanh(d)
        u = [u[j] + p.W[j][3] * (dt_ if p.phase_tanh[j] > 0 else d) for j in range(K)]
    if laws.leak:
        u = [u[j] + -p.leak[j] * (z[j] - zbar[j]) for j in range(K)]
    if laws.barrier:
        mu, w = cfg.barrier.mu, cfg.barrier.width
        for j in range(K):
            x = (z[j] - lo[j]) / (hi[j] - lo[j])
            u[j] = u[j] + mu * (p.lower[j] * _exp(-x / w) - _exp(-(1.0 - x) / w))
    if laws.resonance:
        d = float(s.rho) - cfg.targets.rho_star
        u = [u[j] + p.w_m[j] * d for j in range(K)]
    if laws.coupling:
        if p.coupled:
            cz = _coupling(p.C, z, zbar) if coupling is None else coupling
            u = [u[j] + cz[j] for j in range(K)]
        else:
            u = [u[j] + 0.0 for j in range(K)]
    if terms:
        u = _add_terms(u, terms, s, z, zbar, list(kinds))
    return u


def _project(z_new: list[float], z_old: list[float], lo: list[float], hi: list[float]) -> list:
    out = []
    for a, b, lo_j, hi_j in zip(z_new, z_old, lo, hi, strict=True):
        v = a if _is_finite(a) else b
        out.append(max(min(v, hi_j), lo_j))
    return out


def coefficient_step_floats(
    z: list[float],
    zbar: list[float],
    lo: list[float],
    hi: list[float],
    s: Signals,
    lam: float,
    guard: float,
    p: FloatParams,
    laws: LawsConfig,
    cfg: AEConfig,
    dt: float = 1.0,
    terms: Sequence[tuple[str, Term]] = (),
    kinds: Sequence[str] = (),
) -> FloatStepResult:
    """:func:`coefficient_step` on floats (same order of operations), plus the plug-in
    ``terms`` in the drive (:func:`drive_floats`)."""
    K = len(z)
    c = dt * cfg.eta_a * guard
    cz = _coupling(p.C, z, zbar) if laws.coupling and p.coupled else [0.0] * K
    u = drive_floats(z, zbar, lo, hi, s, p, laws, cfg, cz, terms, kinds)
    step = [c * x for x in u]
    if laws.gauge and s.gamma is not None and s.gamma_star is not None:
        g, gs = float(s.gamma), float(s.gamma_star)
        if cfg.gauge.form == "literal":
            gd = (gs - g) / gs
        else:
            G = cfg.gauge.soft_clip
            gd = G * math.tanh(math.log(gs / g) / G)
        c = dt * cfg.gauge.eta_gamma * guard
        step = [step[j] + (p.alpha[j] * c) * gd for j in range(K)]
    if laws.noise:
        t = cfg.targets
        eps_T = t.eps_T_sqrt_v * math.sqrt(t.v_star) if t.eps_T_sqrt_v > 0 else t.eps_T
        T, V, S, rho = float(s.T), float(s.V), float(s.S), float(s.rho)
        k = p.kappa
        stall = _exp(-((T / eps_T) ** 2))
        A = 0.5 * (1.0 + rho)
        nd = k[0] * stall + k[1] * S / t.s_star - k[2] * V / t.v_star + k[3] * (A - t.a_star)
        c = dt * cfg.noise.eta_sigma * guard
        step = [step[j] + (p.sigma[j] * c) * nd for j in range(K)]
    if laws.budget:
        r = math.sqrt(1.0 + float(lam))
        step = [x / r for x in step]
        if cfg.budget.clip > 0:
            cap = dt * dt * cfg.budget.clip * cfg.budget.B
            e = sum(m * x * x for m, x in zip(p.m, step, strict=True))
            if _is_finite(e) and e > cap:
                f = math.sqrt(cap / e)
                step = [x * f for x in step]
    if any(a > 0 for a in p.additive):
        for j in range(K):
            if p.additive[j] > 0:
                arg = max(1.0 - step[j] * _exp(z[j]), 1e-12)
                step[j] = -math.log(arg)
    z_new = [z[j] + step[j] for j in range(K)]
    shrink = 0.0
    if laws.resonance:
        r = cfg.resonance
        V, rho = float(s.V), float(s.rho)
        keep = (1.0 - _sigmoid((V - r.v_max) / (r.width * r.v_max))) * (
            1.0 - _sigmoid((-rho - r.rho_max) / r.width)
        )
        if r.shrink_on_aligned:
            keep = keep * (1.0 - _sigmoid((rho - r.rho_max) / r.width))
        shrink = 1.0 - keep
        amount = dt * math.log1p(r.kappa) * shrink
        z_new = [z_new[j] - p.shrink_mask[j] * amount for j in range(K)]
    z_new = _project(z_new, z, lo, hi)
    moved = _project([z[j] + step[j] for j in range(K)], z, lo, hi)
    energy = sum(
        m * d * d for m, d in zip(p.m, [moved[j] - z[j] for j in range(K)], strict=True)
    ) / (dt * dt)
    new_lam = lam
    if laws.budget and _is_finite(energy):
        new_lam = max(0.0, lam + dt * cfg.budget.eta_lambda * (energy - cfg.budget.B))
    return FloatStepResult(
        z=z_new, step=step, energy=energy, lam=new_lam, shrink=shrink, coupling=cz
    )


def barrier_potential_floats(
    z: list[float], lo: list[float], hi: list[float], mu: float, width: float, lower: list[float]
) -> float:
    """:func:`barrier_potential` on floats."""
    total = 0.0
    for zj, lj, hj, wj in zip(z, lo, hi, lower, strict=True):
        x = (zj - lj) / (hj - lj)
        total += mu * width * (hj - lj) * (wj * _exp(-x / width) + _exp(-(1.0 - x) / width))
    return total


def lyapunov_energy_floats(
    level_rel: float, z: list[float], zbar: list[float], m: list[float], weight: float, psi: float
) -> float:
    """:func:`lyapunov_energy` on floats."""
    d2 = sum(mj * (a - b) * (a - b) for mj, a, b in zip(m, z, zbar, strict=True))
    return level_rel + 0.5 * weight * d2 + psi
