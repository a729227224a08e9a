"""Configuration of the AE controller: plain dataclasses usable as Hydra structured configs.

Every gain, target, time constant, meta-step and bound of the ten laws lives here, grouped by the
law it belongs to, with the equation it enters. Units (readings #2): the loss signals T, V and R
are *relative* (scale-free, see :mod:`aebench.ae.signals`), so ``tau_p``, ``tau_v``, ``tau_r``,
``v_star``, ``v_max`` and ``eps_T`` are dimensionless and do not depend on the task's loss scale;
scale regulation is left to the gauge law (AE-8) alone.

How the defaults were chosen (readings #10): on two easy stationary problems driven in a plain
loop with :class:`aebench.ae.controller.AEControl` -- minibatch linear regression (d=20, batch 32)
with well-tuned SGDm (lr 0.05, momentum 0.9) and AdamW (lr 1e-2), and the 2-D Rosenbrock function
with SGDm (lr 1e-3, momentum 0.9) -- aiming for alpha within about a factor 2 of the tuned value
and sigma at its floor (do no harm), while a stall, a variance spike, a loss-scale change and
alternating gradients each move the coefficients visibly within ~100 steps. Measured with these
defaults over 600 steps of regression: SGDm ends at lr 0.0497 (loss 0.0153 vs 0.0147 vanilla),
AdamW at lr 0.0083 (0.0096 vs 0.0097), sigma stays 0. On Rosenbrock the target is *not* met: an
overshoot in the curved valley near step 100 trips the resonance shrink and alpha ends at its
lower bound (1e-3 x base) after 2000 steps, though the loss ends lower (3e-12 vs 1.4e-8). The
literal fixed-target gauge (``gauge.signal=step``) was rejected on the regression problem (it
held the initial step length and left the loss 100x above vanilla). The defaults were not tuned
on any experiment that tests a prediction, nor to make a unit test pass.

Re-checked after the issue 13 fixes (the gauge loop closed and calibrated after a 100-step
delay over 100 steps, its target following the schedule; budget energy of the projected step;
AE-10 distance of off-floor kinds in their own units; coupling both ways), plain loop on the
suite's regression MLP (batch 256, 3000 steps, ``LambdaLR(1.0)``, eval every 30 steps, target
val MSE 0.015), seeds 0-2 only (the shared 2-core machine did not allow 10): SGDm lr 0.1 mean
780 steps to target vs vanilla 830 (0.94x), mean final val MSE 0.01435 vs 0.01413 (+1.6%);
AdamW lr 3e-4 740 vs 1020 steps (0.73x), 0.013789 vs 0.013772 (+0.1%); mean guard 0.92 on
SGDm seed 0 (was 0.098). The new gauge delay/window (100/100 steps) was set by the stated rule
(5x the slowest filter constant; a window for q's noise), not searched. Rosenbrock numbers are
in docs/ae.md. The older measurements below
predate those fixes.

Checked through the suite with ``aebench -m experiment=ae_defaults_check`` (regression and
Rosenbrock x SGDm, AdamW x AE off/on x 3 seeds, cpu scale, tuned base lrs; mean final metric,
AE vs vanilla): regression AdamW 0.01383 vs 0.01377, SGDm 0.01446 vs 0.01422; Rosenbrock AdamW
2.2e-4 vs 2.8e-4, SGDm 3.3e-9 vs 1.2e-12; every run reached its target. What remains, and
was left as measured rather than tuned away:

* SGDm regression: the calibrated relative gauge (AE-8) lowers lr to ~0.15x base as the minibatch
  noise comes to dominate ||g||^2 near the loss floor, and time-to-target doubles (median 1680 vs
  900 steps); ``ablation=no_gauge`` reaches it at 720. A fixed set point cannot tell a loss-scale
  change from the slow drift of its own signal during convergence (a linear tracker absorbs
  both alike); the gauge is kept on because answering a scale change is its job (prediction 2).
  On Adam the same drift cut lr 40x, which is why ``gauge.signal=auto`` idles there.
* The noise law (AE-4, literal) raises sigma steadily at a noisy loss floor (the stall term and
  S/S* are positive there) to ~3e-4; the Lyapunov guard (AE-10), whose energy counts sigma's
  distance from its floor, then holds the meta-steps near ``g_min`` (mean guard ~0.1).
* Rosenbrock SGDm: alpha ends at its lower bound after resonance shrinks (see above), reaching
  the target sooner (step 200 vs 700) but ending higher.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

#: coefficient kinds AE can evolve, in the order of the vector ``a`` (and of zeta in AE-7)
KINDS: tuple[str, ...] = (
    "alpha",
    "beta1",
    "beta2",
    "eps",
    "weight_decay",
    "sigma",
    "gate",
    "dropout",
    "l1",
    "es_sigma",
)
#: the kinds a task's model exposes (:meth:`aebench.task.Task.coefficients`), not an optimizer
MODEL_KINDS: tuple[str, ...] = ("gate", "dropout", "l1")


@dataclass
class LawsConfig:
    """The ablation mask: one boolean per removable law or drive term (``ae.laws.<name>``).

    ``progress``, ``variance``, ``reward``, ``phase``, ``leak`` and ``barrier`` are the six terms of
    the constitutive drive AE-2; ``noise`` is AE-4, ``resonance`` AE-5 (its phase term W_m and the
    shrink), ``budget`` AE-6 (dual variable and hard clip), ``coupling`` AE-7, ``gauge`` AE-8 and
    ``lyapunov`` AE-10 (the guard; the energy is logged either way). AE-1 (measurement), AE-3
    (multiplicative evolution with projection onto Omega) and AE-9 (a property, not a mechanism)
    cannot be removed. A law that is off is skipped entirely: its gains are never read.
    """

    progress: bool = True
    variance: bool = True
    reward: bool = True
    phase: bool = True
    leak: bool = True
    barrier: bool = True
    noise: bool = True
    resonance: bool = True
    budget: bool = True
    coupling: bool = True
    gauge: bool = True
    lyapunov: bool = True


@dataclass
class CoefConfig:
    """One coefficient kind: whether AE evolves it, its AE-2 gains, leak, prior and box Omega.

    Gains act in the kind's chart coordinate z (:mod:`aebench.ae.charts`):
    ``u_k = w_p tanh(-T/tau_p) - w_v [softplus(V/tau_v) - ln2] + w_r tanh(R/tau_r)
    + w_c (rho - rho*) - leak (z_k - zbar_k) - dpsi/dz_k`` (AE-2).

    Omega (AE-3 projection) is the box ``[lo, hi]`` in the coefficient's own units, mapped to chart
    space. ``relative=True`` (log-chart kinds only) reads ``lo`` and ``hi`` as multiples of the base
    value (the optimizer's configured or scheduled value). For ``weight_decay``, ``sigma``, ``l1``
    and ``dropout`` ``lo`` is also the chart floor: zero maps to ``chart(lo)`` and a coefficient
    at its floor is written as exactly 0. ``prior`` is a-bar in the coefficient's units;
    ``None`` means the base value. ``m`` is the kind's weight in the budget metric M (AE-6) and
    in the energy (AE-10).
    """

    adapt: bool = True
    w_p: float = 0.0
    w_v: float = 0.0
    w_r: float = 0.0
    w_c: float = 0.0
    leak: float = 1.0
    lo: float = 1e-3
    hi: float = 1e3
    relative: bool = True
    prior: float | None = None
    m: float = 1.0
    #: adapt a coefficient configured at its "off" value (momentum 0, weight decay 0); by
    #: default such a coefficient stays off (plain SGD stays plain SGD)
    adapt_at_off: bool = False
    #: ``ae=canonical`` (seed AE-SGDm's beta line): the phase term as ``w_c tanh(rho - rho*)``
    #: instead of ``w_c (rho - rho*)``, and the update additive in the coefficient's own units
    #: (``beta += eta u``, projected) instead of in its chart
    phase_tanh: bool = False
    additive: bool = False


def _alpha() -> CoefConfig:
    # seed AE-SGDm: k1 tanh(-T/tau) - k2 softplus(V/V*) + k3 (rho - rho*)
    #               - gamma_a (log a - log abar);
    # here (ae=on) the softplus is centred and scaled by tau_v, not V* (ae=canonical: literal).
    # leak 0.5: per step the leak pulls log alpha back with eta_a * leak = 0.005 against the
    # gauge's eta_gamma = 0.02 (log form, slope 1), so a scale change is compensated to
    # 0.02 / (0.02 + 0.005) = 80% in steady state; without the gauge the leak bounds the drift
    return CoefConfig(w_p=0.5, w_v=1.0, w_r=0.5, w_c=0.25, leak=0.5, lo=1e-3, hi=1e3, relative=True)


def _beta1() -> CoefConfig:
    # seed AE-SGDm: beta += eta_b (b1 tanh(rho - rho*) - b2 softplus(V/V*)
    #                             - gamma_b (beta - bbar)).
    # ae=on reads it in the horizon chart log 1/(1-beta) with a linear phase term w_c (rho - rho*)
    # and the centred softplus; ae=canonical has the additive tanh form. "beta1 tracks rho"
    return CoefConfig(w_c=0.5, w_v=0.5, leak=1.0, lo=0.0, hi=0.999, relative=False)


def _beta2() -> CoefConfig:
    # Section 6: "beta2 rises with V" (negative variance gain = rise)
    return CoefConfig(w_v=-0.5, leak=1.0, lo=0.9, hi=0.99999, relative=False)


def _eps() -> CoefConfig:
    # Section 6: "eps grows with instability (V) and relaxes with quality (rho above rho*)"
    return CoefConfig(w_v=-0.5, w_c=-0.25, leak=1.0, lo=1e-2, hi=1e3, relative=True)


def _weight_decay() -> CoefConfig:
    # the theory names lambda as a coefficient but gives it no drive direction: not adapted by
    # default; set adapt=true and gains to let AE move it
    return CoefConfig(adapt=False, leak=1.0, lo=1e-8, hi=1.0, relative=False)


def _sigma() -> CoefConfig:
    # sigma moves by the noise law AE-4 (and AE-5's shrink, AE-7, AE-6); no AE-2 drive or leak
    return CoefConfig(leak=0.0, lo=1e-6, hi=1e-3, relative=False)


def _es_sigma() -> CoefConfig:
    # sigma of an Evolution Strategy (baselines/es, aebench.ae.bindings.ESBinding): the
    # optimizer's own perturbation std (the param group's ``sigma``, absolute in parameter units),
    # which AE moves in place of adding parameter noise. Like sigma: moved by the noise law AE-4,
    # no AE-2 drive, no leak; unlike it, no V term and no AE-5 shrink (ESBinding.noise_reads_V,
    # step_free: the ES step does not scale with sigma). Never 0 (a zero perturbation
    # gives no estimate): log chart, and a box relative to the configured value, [1e-3, 10] x.
    # Chosen on the tuning problems (EGGROLL, 300 generations, cpu scale, docs/es.md): with the
    # earlier [0.1, 10] x, AE-4's curvature signal held sigma on the lower wall on Rosenbrock
    # (K ~ 3-4 in the valley); with [1e-3, 10] x it settles at 0.028-0.031 x, off both walls
    # (final f 4.40 / 3.92 / 4.40 at seeds 0-2 against 9.45 / 9.68 / 9.99 with AE off), and on
    # regression sigma stays at 0.22-0.26 x whichever lower wall.
    return CoefConfig(leak=0.0, lo=1.0e-3, hi=10.0, relative=True)


# Model-side kinds (protocol H.14 and I.15; bound through Task.coefficients, not a param group).
# Gains from the theory's sentences, in AE-2's sign convention (u = w_p tanh(-T/tau_p)
# - w_v [softplus(V/tau_v) - ln2] + ...: w_p > 0 raises a coefficient while the loss falls,
# w_v > 0 lowers it while the relative variance V is high), with the magnitudes of alpha's drive
# (w_p 0.5, w_v 1.0: the theory states capacity in the same shape as the step size, "grows when
# progress, shrinks when variance spikes") and the leak 1.0 of every kind without a regulator
# of its own. Not measured on, or tuned for, experiments 14 and 15 (no run had been made when
# they were set). Only the progress and variance terms are named by the theory for these kinds:
# w_r = w_c = 0. Laws on them: AE-2 (these terms, leak, barrier), AE-3 projection onto the box,
# AE-6 (they share the budget ||dz||_M^2 with the optimizer's kinds), AE-10 (in the energy) and
# the AE-10 guard's meta-step factor. Not AE-5's shrink (a step-size safety: alpha and sigma
# only, readings #8; the variance response of these kinds is their w_v), not AE-7 (the
# theory names no cross-term for them: their rows and columns of C are zero), AE-4 and AE-8
# (sigma's and alpha's own laws).
def _gate() -> CoefConfig:
    # H.14 "capacity grows when progress; shrinks when variance spikes": w_p > 0, w_v > 0. Logit
    # chart; the box keeps every gate inside (0, 1) where the chart exists. With several gates
    # (one per block) each carries m / N in the budget metric (Task.coefficients' ``share``), so
    # the N gates together weigh as one coefficient.
    return CoefConfig(w_p=0.5, w_v=1.0, leak=1.0, lo=0.01, hi=0.99, relative=False)


def _dropout() -> CoefConfig:
    # the opposite way to the gates (dropout removes capacity): progress lowers p, a variance
    # spike raises it. Chart logit0: p at the floor lo is written as exactly 0 (no dropout);
    # hi is p_max. Beware the loop this closes: dropout itself adds minibatch loss variance.
    return CoefConfig(w_p=-0.5, w_v=-1.0, leak=1.0, lo=1e-3, hi=0.5, relative=False)


def _l1() -> CoefConfig:
    # I.15 "lambda rises as training stabilizes". Reading (docs/readings.md style): "stabilizes" is
    # low V and a stalling trend (T -> 0). AE-2's terms can only express it as the *absence* of
    # a push down: with the centred softplus (readings #3) V = 0 exerts no pull, and
    # tanh(-T/tau_p) vanishes at a stall, so no term is positive on a stable run (the only
    # stall indicator in the theory, AE-4's 1{|T| < eps_T}, belongs to sigma's noise law). So:
    # w_p < 0 holds lambda below its prior while the loss falls fast, w_v > 0 while the loss is
    # noisy, and the leak raises it back toward the prior a-bar (the configured lambda, or
    # ``prior``) as both fade: lambda rises over training as the fit settles, never above the
    # prior (set ``prior`` above the configured value to let it climb past where it started).
    # Chart log0 like weight decay (0 = no penalty).
    return CoefConfig(w_p=-0.5, w_v=1.0, leak=1.0, lo=1e-6, hi=1.0, relative=False)


@dataclass
class CoefsConfig:
    """Per-kind settings; kinds a family (or a task's model) does not have are ignored (e.g.
    beta2 on SGD, gate on a model without gated blocks)."""

    alpha: CoefConfig = field(default_factory=_alpha)
    beta1: CoefConfig = field(default_factory=_beta1)
    beta2: CoefConfig = field(default_factory=_beta2)
    eps: CoefConfig = field(default_factory=_eps)
    weight_decay: CoefConfig = field(default_factory=_weight_decay)
    sigma: CoefConfig = field(default_factory=_sigma)
    gate: CoefConfig = field(default_factory=_gate)
    dropout: CoefConfig = field(default_factory=_dropout)
    l1: CoefConfig = field(default_factory=_l1)
    es_sigma: CoefConfig = field(default_factory=_es_sigma)


@dataclass
class SignalsConfig:
    """AE-1 filter time constants (in steps; EMA y += (x - y)/tc) and the signal bound."""

    tc_level: float = 10.0  # LP(l): the loss level that makes T and V relative (fast: a trend
    # falling by a fraction f per step adds about (tc_level f)^2 of lag to V)
    tc_trend: float = 20.0  # T = LP(relative loss increment)
    tc_var: float = 20.0  # V = LP(relative squared deviation from the level)
    tc_reward: float = 20.0  # R = LP(relative reward increment)
    tc_rho: float = 10.0  # rho = LP(cos(g_t, g_{t-1}))
    tc_s: float = 20.0  # S = LP(relative gradient noise)
    clip: float = 10.0  # bound on each relative per-step input (A2: signals are bounded)
    warmup: int = 20  # finite steps the filters see before the first coefficient update


@dataclass
class DriveConfig:
    """AE-2 drive scales and the softplus reading (readings #3)."""

    tau_p: float = 0.01  # tanh(-T/tau_p): 1% relative loss drop per step saturates progress
    tau_v: float = 1.0  # softplus(V/tau_v): relative variance 1 = loss std equal to its level
    tau_r: float = 0.01  # tanh(R/tau_r)
    centre_softplus: bool = True  # use softplus(V/tau_v) - ln 2 (zero at V=0)


@dataclass
class TargetsConfig:
    """Set points shared by the laws: rho*, V*, S*, A* and the stall threshold eps_T (AE-2/4/5)."""

    rho_star: float = 0.0
    v_star: float = 0.05
    s_star: float = 1.0
    a_star: float = 0.5
    #: stall threshold of AE-4 (relative trend). ae=on: fixed 1e-3 (a relative drift of 0.1% per
    #: step counts as a stall); the seed says eps_T proportional to sqrt(V*): ``eps_T_sqrt_v``
    eps_T: float = 1e-3
    #: > 0: the stall threshold is ``eps_T = eps_T_sqrt_v * sqrt(v_star)`` (the seed's
    #: eps_T proportional to sqrt(V*); ``ae=canonical``), replacing ``eps_T``
    eps_T_sqrt_v: float = 0.0


@dataclass
class NoiseConfig:
    """AE-4: log sigma += eta_sigma (k_s stall + k_u S/S* - k_v V/V* + k_a (A - A*)).

    ``sigma_init`` is sigma at step 0 (0 = at the floor = no noise); ``rms_floor`` floors the
    parameter RMS in the noise form (see :func:`aebench.ae.bindings.add_parameter_noise`).
    """

    eta_sigma: float = 0.05
    kappa_s: float = 1.0
    kappa_u: float = 0.5
    kappa_v: float = 1.0
    kappa_a: float = 0.5
    sigma_init: float = 0.0
    rms_floor: float = 1e-3


@dataclass
class ResonanceConfig:
    """AE-5: u_alpha += W_m (rho - rho*); shrink alpha and sigma by 1/(1+kappa) when
    V > V_max or rho < -rho_max (soft switch of width ``width``; see laws.shrink_amount)."""

    w_m: float = 0.25
    kappa: float = 0.1
    v_max: float = 1.0
    rho_max: float = 0.5
    width: float = 0.05
    shrink_on_aligned: bool = False  # literal |rho| > rho_max (also shrink when rho > rho_max)


@dataclass
class BudgetConfig:
    """AE-6: per-step change ||dz||_M^2 <= B on average via the dual variable lambda, plus an
    optional hard per-step clip at ``clip * B`` (0 disables the clip)."""

    B: float = 1e-3
    eta_lambda: float = 100.0
    clip: float = 4.0


@dataclass
class CouplingConfig:
    """AE-7: u += C zeta with zeta = z - zbar (chart deviations from the priors).

    Only the entries the theory motivates are exposed: ``alpha_from_beta1`` = C[alpha, beta1]
    (negative: a longer momentum horizon pulls the step size down, keeping alpha/(1-beta) near its
    prior) and ``beta1_from_alpha`` = C[beta1, alpha] (negative: a larger step shortens the
    momentum horizon). Both negative give the theory's coupling curve (best regions with log alpha
    and log 1/(1-beta) negatively correlated), and act both ways by default.

    Stability: the linear part of the (alpha, beta1) drive is ``(C - Gamma) zeta``; with the
    defaults (leaks 0.5 and 1.0) ``C - Gamma = [[-0.5, -0.5], [-0.5, -1.0]]``, trace -1.5,
    determinant 0.25, eigenvalues -0.19 and -1.31: both negative, so the coupled pair relaxes to
    the prior (checked in ``tests/ae/test_budget_guard_coupling.py``). In general it is stable while
    ``leak_a leak_b > C_ab C_ba``.
    """

    alpha_from_beta1: float = -0.5
    beta1_from_alpha: float = -0.5


@dataclass
class GaugeConfig:
    """AE-8: log alpha += eta_gamma * G tanh(log(x*/x_t) / G), x the regulated step signal.

    ``signal`` (see :func:`aebench.ae.laws.gauge_drive`): ``relative`` regulates
    ``q = alpha <g, P g> / LP(|l|)``, the first-order predicted relative loss decrease per step
    (dimensionless); ``step`` regulates the literal ``gamma = alpha ||P g||`` (parameter units).
    Both make alpha scale as 1/c when the loss is multiplied by c, so gamma is matched either way.
    ``auto`` (default) picks per optimizer family
    (:attr:`aebench.ae.bindings.Binding.gauge_signal`): ``relative`` for SGD, whose q stays
    roughly constant while a tuned run converges (||g||^2 ~ l), so the gauge answers scale
    changes and not convergence itself; ``none`` (the gauge idles) for Adam and Adafactor,
    whose updates are already invariant to the loss scale. Measured on
    ``task=regression optimizer=adamw scale=cpu seed=0`` (vanilla val MSE 0.0138): regulating q
    (which grows like 1/sqrt(l) under Adam) cut lr 40x, val 0.0165; regulating the literal
    gamma (||P g|| falls as Adam's v lags with beta2 = 0.999) raised lr 10x and overfit, val
    0.0158. ``none`` is also accepted explicitly.
    ``target``: ``calibrate`` sets x* to the geometric mean of x over ``warmup`` steps after
    ``delay`` steps (the user's tuned step defines the set point; restores x after a scale change
    during the run), ``absolute`` uses ``gamma_star`` (restores x against a scale present from
    step 0; in the units of ``signal`` at the configured lr: the value a run records in
    ``extra.ae.gauge_set_point``). The set point follows the schedule's factor and any swarm/PBT
    shift of the base lr; the mechanism is :mod:`aebench.ae.gauge`. ``form``: ``log`` (default,
    above) or ``literal`` ((x* - x)/x*, the theory's form; both agree to first order).
    """

    eta_gamma: float = 0.02
    signal: str = "auto"
    target: str = "calibrate"
    gamma_star: float = 0.0
    #: calibration window (steps) and the delay before it (steps): :mod:`aebench.ae.gauge`
    warmup: int = 100
    delay: int = 100
    #: ``target='from_run'``: a run's ``result.json`` (or its folder) whose
    #: ``extra.ae.gauge_set_point`` is reused, one value per param group; ``{seed}`` in the path
    #: is replaced by the run seed (e09/e10: every level shares its seed's reference set point)
    from_run: str = ""
    #: ``calibrate``: ``base`` (default) takes x* from the signal at the configured lr (x divided
    #: by AE's own offset), ``effective`` from the signal at the lr in effect (the earlier
    #: reading; it books the other laws' early drift of alpha into x*): :mod:`aebench.ae.gauge`.
    #: Chosen as a reading (the set point is the user's tuned step), not tuned: the e07 runs that
    #: showed the drift being locked in were a diagnosis. On the tuning problem (regression,
    #: SGDm, cpu scale, seed 0) it reached the target at step 720 (``effective`` 1080, vanilla
    #: 900), final val MSE 0.014551 (0.014710; vanilla 0.014250); Adam is unaffected (idle).
    calibrate_on: str = "base"
    #: the target follows AE-5's shrink of alpha, relaxing at eta_gamma (opt-in; the measured
    #: reason it is off by default is in :mod:`aebench.ae.gauge`, "Resonance")
    follow_shrink: bool = False
    form: str = "log"
    soft_clip: float = 3.0
    #: multiplier on the set point in effect, ``x*_t = scale * x* base_t / a_ref`` (whichever
    #: ``target`` gave x*; the recorded ``extra.ae.gauge_set_point`` stays x* itself): 1 keeps the
    #: calibrated step; a tuning knob (ruleset=external, conf/ae/on.yaml search_space) that moves
    #: the step AE regulates to, where the gauge acts (SGD: ``signal=relative``)
    scale: float = 1.0


@dataclass
class LyapunovConfig:
    """AE-10: energy E = LP(l)/LP(l)_0 + (weight/2) ||z - zbar||_M^2 + psi(z); guard rule: with
    D = LP_window(E_t - E_{t-1}), if D > tol the meta-step factor g *= shrink (not below g_min),
    else g = min(1, g * recover). g multiplies eta_a, eta_sigma and eta_gamma."""

    weight: float = 1.0
    window: float = 20.0
    tol: float = 1e-3
    shrink: float = 0.98
    recover: float = 1.02
    g_min: float = 0.05


@dataclass
class BarrierConfig:
    """AE-2 barrier: -dpsi/dz = mu (exp(-x/w) - exp(-(1-x)/w)), x = (z-lo)/(hi-lo)."""

    mu: float = 1.0
    width: float = 0.02


@dataclass
class AEConfig:
    """The AE controller (``ae=on`` sets ``enabled: true``).

    ``eta_a`` is the meta-step of AE-3 (and AE-6's eta_a). ``rho_buffer``: ``copy`` keeps one
    gradient copy per parameter (one parameter-sized buffer per param group, used for rho and S);
    ``momentum`` reuses the optimizer's momentum buffer (SGD ``momentum_buffer``, Adam
    ``exp_avg``) as the proxy for g_{t-1}: zero extra memory. ``log_every``: curve cadence.
    ``noise_seed`` is mixed with the run seed for the noise generator.

    ``every`` (the controller's cadence, k): the loss filters (T, V, R) take every step's loss,
    but the gradient signals (rho, S, gamma) are measured and the coefficients updated only on
    every k-th step, as the integration of k steps of the per-step laws: every rate (eta_a,
    eta_gamma, eta_sigma, the resonance shrink, the dual ascent, the guard factors) is applied
    k times over, the gradient filters' time constants count in updates (tc/k), the budget
    compares the per-step equivalent ||dz/k||_M^2 with B, and the sigma noise of k steps is
    added at once (std sigma sqrt(k): the sum of k independent draws). rho stays
    cos(g_t, g_{t-1}): with ``rho_buffer=copy`` the gradient is copied on the step before each
    update only. Default 1, the literal theory; k > 1 trades the controller's bandwidth
    (signals with time constants of 10-20 steps) for cost on models whose step takes well
    under a millisecond (see ``benchmarks/ae_overhead.py``); keep k well below the smallest
    signal time constant.
    """

    enabled: bool = False
    laws: LawsConfig = field(default_factory=LawsConfig)
    coefs: CoefsConfig = field(default_factory=CoefsConfig)
    signals: SignalsConfig = field(default_factory=SignalsConfig)
    drive: DriveConfig = field(default_factory=DriveConfig)
    targets: TargetsConfig = field(default_factory=TargetsConfig)
    noise: NoiseConfig = field(default_factory=NoiseConfig)
    resonance: ResonanceConfig = field(default_factory=ResonanceConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    coupling: CouplingConfig = field(default_factory=CouplingConfig)
    gauge: GaugeConfig = field(default_factory=GaugeConfig)
    lyapunov: LyapunovConfig = field(default_factory=LyapunovConfig)
    barrier: BarrierConfig = field(default_factory=BarrierConfig)
    eta_a: float = 0.01
    rho_buffer: str = "copy"
    log_every: int = 10
    noise_seed: int = 0
    every: int = 1
    #: sigma-noise cadence in updates: the noise of ``every * noise_every`` steps is added on every
    #: ``noise_every``-th update, std ``sigma sqrt(every * noise_every)`` (the sum of that many
    #: independent draws); 1 (default) = every update. See docs/performance.md.
    noise_every: int = 1
    #: the tuning search space of AE (read by rulesets, aebench/tuning.py; not by the controller)
    search_space: dict[str, Any] = field(default_factory=dict)
    #: plug-in drive terms by name, ``{name: {_target_: module.Class, enabled: true, <gains>}}``
    #: (:class:`aebench.ae.laws.Term`, docs/howto_add_law.md); ``enabled: false`` knocks one out.
    #: Empty by default, and then left out of the arm id (aebench/identity.py)
    terms: dict[str, Any] = field(default_factory=dict)


def law_names() -> list[str]:
    """The removable laws and drive terms, in the order of :class:`LawsConfig`."""
    return [f.name for f in dataclasses.fields(LawsConfig)]


def check_law_names(names: Iterable[str]) -> None:
    """Raise ``ValueError`` naming the first unknown law and listing the valid ones."""
    valid = law_names()
    for name in names:
        if name not in valid:
            raise ValueError(f"ae.laws.{name}: unknown law {name!r}; valid: {', '.join(valid)}")


def all_off(cfg: AEConfig | None = None) -> AEConfig:
    """A copy of ``cfg`` (default config if None) with every law and drive term off (plug-in
    terms included)."""
    cfg = dataclasses.replace(cfg or AEConfig())
    cfg.laws = LawsConfig(**{name: False for name in law_names()})
    cfg.terms = {}
    return cfg


def coerce(cfg: Any) -> AEConfig:
    """An :class:`AEConfig` from an AEConfig, a mapping or an OmegaConf DictConfig."""
    if cfg is None:
        return AEConfig()
    if isinstance(cfg, AEConfig):
        return cfg
    if not isinstance(cfg, Mapping):
        try:
            from omegaconf import DictConfig, OmegaConf
        except ImportError as exc:  # pragma: no cover
            raise TypeError(f"cannot read an AE config from {type(cfg).__name__}") from exc
        if isinstance(cfg, DictConfig):
            obj = OmegaConf.to_object(cfg)
            if isinstance(obj, AEConfig):
                return obj
            cfg = obj
        else:
            raise TypeError(f"cannot read an AE config from {type(cfg).__name__}")
    return _from_mapping(AEConfig, cfg, "ae")


def _from_mapping(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        if key not in names:
            if cls is LawsConfig:
                check_law_names([key])
            raise ValueError(f"{prefix}.{key}: unknown key; allowed: {', '.join(sorted(names))}")
        default = getattr(cls(), key)
        if dataclasses.is_dataclass(default) and isinstance(value, Mapping):
            kwargs[key] = _from_mapping(type(default), value, f"{prefix}.{key}")
        else:
            kwargs[key] = value
    return cls(**kwargs)


def _fail(key: str, value: Any, allowed: str) -> None:
    raise ValueError(f"{key}={value!r}: {allowed}")


def _positive(key: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        _fail(key, value, "must be a finite number > 0")


def _nonneg(key: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        _fail(key, value, "must be a finite number >= 0")


def _finite(key: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value)):
        _fail(key, value, "must be a finite number")


#: the instance attribute (not a field: no part of the config, its record or its equality) by
#: which :func:`validate` marks an :class:`AEConfig` it built and checked
_CHECKED = "_checked_by_validate"


def validate(cfg: Any) -> AEConfig:
    """Check every field; raise ``ValueError`` with one line naming key, value and what is allowed.

    Returns the coerced :class:`AEConfig`. One it builds (from a mapping, a DictConfig or None:
    the command line's way) is marked as checked, so :func:`validated` passes it on as it is and
    the controllers it reaches check nothing twice; an AEConfig given is checked and returned
    unmarked, since its owner may change it and pass it again (``dataclasses.replace`` makes an
    unmarked copy too).
    """
    built = not isinstance(cfg, AEConfig)
    cfg = coerce(cfg)
    for name in law_names():
        value = getattr(cfg.laws, name)
        if not isinstance(value, bool):
            _fail(f"ae.laws.{name}", value, "must be true or false")
    for kind in KINDS:
        c: CoefConfig = getattr(cfg.coefs, kind)
        key = f"ae.coefs.{kind}"
        for gain in ("w_p", "w_v", "w_r", "w_c"):
            _finite(f"{key}.{gain}", getattr(c, gain))
        _nonneg(f"{key}.leak", c.leak)
        _positive(f"{key}.m", c.m)
        _finite(f"{key}.lo", c.lo)
        _finite(f"{key}.hi", c.hi)
        if kind in ("beta1", "beta2"):
            if c.relative:
                _fail(f"{key}.relative", c.relative, "must be false for beta (horizon chart)")
            if not 0.0 <= c.lo < c.hi < 1.0:
                _fail(f"{key}.lo/hi", (c.lo, c.hi), "need 0 <= lo < hi < 1")
        elif kind in ("gate", "dropout"):
            if c.relative:
                _fail(f"{key}.relative", c.relative, "must be false (logit chart)")
            if not 0.0 < c.lo < c.hi < 1.0:
                _fail(f"{key}.lo/hi", (c.lo, c.hi), "need 0 < lo < hi < 1 (logit chart)")
        else:
            if not 0.0 < c.lo < c.hi:
                _fail(f"{key}.lo/hi", (c.lo, c.hi), "need 0 < lo < hi (log chart)")
            if kind in ("weight_decay", "sigma", "l1") and c.relative:
                _fail(f"{key}.relative", c.relative, "must be false (the value may be 0)")
        if c.prior is not None:
            _finite(f"{key}.prior", c.prior)
    s = cfg.signals
    if not (isinstance(s.warmup, int) and s.warmup >= 0):
        _fail("ae.signals.warmup", s.warmup, "must be an integer >= 0")
    for name in ("tc_level", "tc_trend", "tc_var", "tc_reward", "tc_rho", "tc_s"):
        value = getattr(s, name)
        if not (isinstance(value, int | float) and math.isfinite(value) and value >= 1.0):
            _fail(f"ae.signals.{name}", value, "must be a time constant >= 1 (steps)")
    _positive("ae.signals.clip", s.clip)
    for name in ("tau_p", "tau_v", "tau_r"):
        _positive(f"ae.drive.{name}", getattr(cfg.drive, name))
    t = cfg.targets
    if not -1.0 <= t.rho_star <= 1.0:
        _fail("ae.targets.rho_star", t.rho_star, "must lie in [-1, 1]")
    _positive("ae.targets.v_star", t.v_star)
    _positive("ae.targets.s_star", t.s_star)
    if not 0.0 <= t.a_star <= 1.0:
        _fail("ae.targets.a_star", t.a_star, "must lie in [0, 1]")
    _positive("ae.targets.eps_T", t.eps_T)
    _nonneg("ae.targets.eps_T_sqrt_v", t.eps_T_sqrt_v)
    n = cfg.noise
    _nonneg("ae.noise.eta_sigma", n.eta_sigma)
    for name in ("kappa_s", "kappa_u", "kappa_v", "kappa_a"):
        _finite(f"ae.noise.{name}", getattr(n, name))
    _nonneg("ae.noise.sigma_init", n.sigma_init)
    _positive("ae.noise.rms_floor", n.rms_floor)
    r = cfg.resonance
    _finite("ae.resonance.w_m", r.w_m)
    _nonneg("ae.resonance.kappa", r.kappa)
    _positive("ae.resonance.v_max", r.v_max)
    if not 0.0 <= r.rho_max <= 1.0:
        _fail("ae.resonance.rho_max", r.rho_max, "must lie in [0, 1]")
    _positive("ae.resonance.width", r.width)
    b = cfg.budget
    _positive("ae.budget.B", b.B)
    _nonneg("ae.budget.eta_lambda", b.eta_lambda)
    if b.clip != 0 and not (math.isfinite(b.clip) and b.clip >= 1.0):
        _fail("ae.budget.clip", b.clip, "must be 0 (off) or >= 1 (multiple of B)")
    _finite("ae.coupling.alpha_from_beta1", cfg.coupling.alpha_from_beta1)
    _finite("ae.coupling.beta1_from_alpha", cfg.coupling.beta1_from_alpha)
    g = cfg.gauge
    _nonneg("ae.gauge.eta_gamma", g.eta_gamma)
    if g.signal not in ("auto", "relative", "step", "none"):
        _fail("ae.gauge.signal", g.signal, "allowed: auto, relative, step, none")
    if g.target not in ("calibrate", "absolute", "from_run"):
        _fail("ae.gauge.target", g.target, "allowed: calibrate, absolute, from_run")
    if g.target == "from_run" and not str(g.from_run):
        _fail("ae.gauge.from_run", g.from_run, "target=from_run needs a result.json path")
    if g.target == "absolute":
        _positive("ae.gauge.gamma_star", g.gamma_star)
    if not (isinstance(g.warmup, int) and g.warmup >= 1):
        _fail("ae.gauge.warmup", g.warmup, "must be an integer >= 1")
    if not (isinstance(g.delay, int) and g.delay >= 0):
        _fail("ae.gauge.delay", g.delay, "must be an integer >= 0 (steps before the window)")
    if not isinstance(g.follow_shrink, bool):
        _fail("ae.gauge.follow_shrink", g.follow_shrink, "must be true or false")
    if g.calibrate_on not in ("base", "effective"):
        _fail("ae.gauge.calibrate_on", g.calibrate_on, "allowed: base, effective")
    if g.form not in ("log", "literal"):
        _fail("ae.gauge.form", g.form, "allowed: log, literal")
    _positive("ae.gauge.soft_clip", g.soft_clip)
    _positive("ae.gauge.scale", g.scale)
    lp = cfg.lyapunov
    _nonneg("ae.lyapunov.weight", lp.weight)
    if not (math.isfinite(lp.window) and lp.window >= 1.0):
        _fail("ae.lyapunov.window", lp.window, "must be >= 1 (steps)")
    _nonneg("ae.lyapunov.tol", lp.tol)
    if not 0.0 < lp.shrink <= 1.0:
        _fail("ae.lyapunov.shrink", lp.shrink, "must lie in (0, 1]")
    if not (math.isfinite(lp.recover) and lp.recover >= 1.0):
        _fail("ae.lyapunov.recover", lp.recover, "must be >= 1")
    if not 0.0 < lp.g_min <= 1.0:
        _fail("ae.lyapunov.g_min", lp.g_min, "must lie in (0, 1]")
    _nonneg("ae.barrier.mu", cfg.barrier.mu)
    _positive("ae.barrier.width", cfg.barrier.width)
    _nonneg("ae.eta_a", cfg.eta_a)
    if cfg.rho_buffer not in ("copy", "momentum"):
        _fail("ae.rho_buffer", cfg.rho_buffer, "allowed: copy, momentum")
    if not (isinstance(cfg.log_every, int) and cfg.log_every >= 1):
        _fail("ae.log_every", cfg.log_every, "must be an integer >= 1")
    if not (isinstance(cfg.every, int) and cfg.every >= 1):
        _fail("ae.every", cfg.every, "must be an integer >= 1 (steps between AE updates)")
    if not (isinstance(cfg.noise_every, int) and cfg.noise_every >= 1):
        _fail("ae.noise_every", cfg.noise_every, "must be an integer >= 1 (updates between draws)")
    if not isinstance(cfg.noise_seed, int):
        _fail("ae.noise_seed", cfg.noise_seed, "must be an integer")
    _check_terms(cfg.terms)
    if built:
        setattr(cfg, _CHECKED, True)
    return cfg


def _check_terms(terms: Any) -> None:
    """``ae.terms``: each entry a mapping with a ``_target_`` import path whose module can be
    found (located, not imported: the preflight stays torch-free) and, if given, a boolean
    ``enabled`` (the term's gains are the term's own to check)."""
    if not isinstance(terms, Mapping):
        _fail("ae.terms", terms, "must be a mapping {name: {_target_: module.Class, ...}}")
    for name, spec in terms.items():
        key = f"ae.terms.{name}"
        if not isinstance(spec, Mapping):
            _fail(key, spec, "must be a mapping with _target_ (module.Class) and the term's gains")
        target = spec.get("_target_")
        if not (isinstance(target, str) and "." in target.strip(".")):
            _fail(f"{key}._target_", target, "must be an import path module.Class")
        module = target.rpartition(".")[0]
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            _fail(f"{key}._target_", target, f"no module {module!r} on the path (PYTHONPATH)")
        if not isinstance(spec.get("enabled", True), bool):
            _fail(f"{key}.enabled", spec["enabled"], "must be true or false")


def validated(cfg: Any) -> AEConfig:
    """``cfg`` as a checked :class:`AEConfig`: as it is if :func:`validate` built it, else
    through :func:`validate` (a mapping, a DictConfig, an AEConfig made in code)."""
    if isinstance(cfg, AEConfig) and getattr(cfg, _CHECKED, False):
        return cfg
    return validate(cfg)
