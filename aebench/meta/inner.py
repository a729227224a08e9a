"""The functional AE inner loop: AE-SGDm and AE-Adam with every state a tensor (AE-9).

One step t, given parameters theta (a dict of tensors fed to the model by
``torch.func.functional_call``), the optimizer state, the AE state and the gains:

1. loss l_t and gradient g_t = dl/dtheta (``create_graph=True``: the meta-gradient flows through
   the signals, which depend on theta, into the earlier gains: the loop is closed);
2. AE-1 filters (:func:`aebench.ae.signals.loss_signal_step`, ``grad_signal_step``): T, V, rho, S;
3. after ``signals.warmup`` steps, the coefficient update in chart coordinates z
   (z = log alpha, log 1/(1-beta), log eps):
   ``u = W_p tanh(-T/tau_p) - W_v (softplus(V/tau_v) - ln 2) + W_c (rho - rho*) - Gamma (z - zbar)
   - dpsi/dz + W_m (rho - rho*) [alpha] + C (z - zbar)``;
   ``step = g eta_a u + g eta_gamma G tanh(log(q*/q)/G) [alpha, SGD only]``;
   AE-6: ``step /= sqrt(1 + lambda)``, then the **soft clip** ``step /= sqrt(1 + E/cap)`` with
   ``E = ||step||_M^2``, ``cap = budget.clip * B`` (smooth, and ``E_after < cap``);
   AE-5: ``z -= s log(1 + kappa)`` on alpha with the smooth switch s;
   AE-3: ``z <- z + step`` with **no projection**: the barrier term keeps z in Omega (it is
   bounded inside the box and grows exponentially outside it);
   AE-6 dual: ``lambda <- [lambda + eta_lambda (E - B)]_+`` (kept in the graph: a.e. smooth);
4. the optimizer step with the new coefficients (the coefficient that multiplies g_t has seen
   g_t, as in the controller): SGD with momentum (torch's form, dampening 0)
   ``b = beta b + g; theta -= alpha b``, or Adam ``m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
   theta -= alpha (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)``.

Detached (the non-smooth pieces, AE-9's exceptions): the gauge set point q* and the Lyapunov
guard g (AE-10, a discrete safety rule on the detached energy
``E = LP(l)/LP(l)_0 + (weight/2) ||z - zbar||_M^2 + psi(z)``). The gauge mirrors
:mod:`aebench.ae.gauge`: the signal is the controller's ``relative`` reading
``q = alpha <g, g> / LP(|l|)`` on SGD and idle on Adam (``gauge.signal=auto``); q* is the
geometric mean of q over ``gauge.warmup`` steps that start after ``gauge.delay`` steps, at the
configured lr (``gauge.calibrate_on='base'``: q a_ref / alpha) or at the lr in effect
(``'effective'``); the target is q* (the base lr is constant here), lowered by AE-5's shrink
memory where ``gauge.follow_shrink`` is on. Coupling acts both ways (C[alpha, beta1] and
C[beta1, alpha]). With the default delay and window (100 + 100 steps) the gauge acts only from
step 200 of a trajectory, so a meta-training horizon of 200 steps never sees it. Not in the inner
loop: the noise law (AE-4) and the reward term (no reward on the tuning problems); sigma stays at
its floor, where the controller adds no parameter noise either (on a stall the controller's noise
law raises sigma, which the inner loop does not model).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from aebench.ae import laws
from aebench.ae.config import AEConfig
from aebench.ae.signals import grad_signal_step, loss_signal_step

KINDS = {"sgdm": ["alpha", "beta1"], "adam": ["alpha", "beta1", "beta2", "eps"]}
_TINY = 1e-30


@dataclass
class OptSpec:
    """The inner optimizer and its configured coefficients (the AE priors zbar)."""

    name: str  # "sgdm" or "adam"
    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8

    @property
    def kinds(self) -> list[str]:
        if self.name not in KINDS:
            raise ValueError(f"optimizer={self.name!r}: the meta inner loop has sgdm or adam")
        return KINDS[self.name]


def _chart(kind: str, value: float) -> float:
    return -math.log1p(-value) if kind in ("beta1", "beta2") else math.log(value)


def chart_box(spec: OptSpec, cfg: AEConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z0, lo, hi) in chart space; relative boxes are multiples of the configured value."""
    z0, lo, hi = [], [], []
    for k in spec.kinds:
        c = getattr(cfg.coefs, k)
        v = {"alpha": spec.lr, "beta1": spec.beta1, "beta2": spec.beta2, "eps": spec.eps}[k]
        a, b = (c.lo * v, c.hi * v) if c.relative else (c.lo, c.hi)
        z0.append(_chart(k, v))
        lo.append(_chart(k, a))
        hi.append(_chart(k, b))
    t = lambda x: torch.tensor(x, dtype=torch.float64)  # noqa: E731
    return t(z0), t(lo), t(hi)


@dataclass
class GainTensors:
    W: torch.Tensor  # K x 3: w_p, w_v, w_c
    leak: torch.Tensor
    C: torch.Tensor
    w_m: torch.Tensor  # on alpha only
    tau_p: torch.Tensor
    tau_v: torch.Tensor


def gain_tensors(g: dict[str, torch.Tensor], kinds: list[str]) -> GainTensors:
    """Assemble the law tensors from the flat gain dict (:func:`aebench.meta.gains.all_gains`)."""
    W = torch.stack(
        [torch.stack([g[f"coefs.{k}.{n}"] for n in ("w_p", "w_v", "w_c")]) for k in kinds]
    )
    leak = torch.stack([g[f"coefs.{k}.leak"] for k in kinds])
    K = len(kinds)
    alpha = torch.tensor([1.0 if k == "alpha" else 0.0 for k in kinds], dtype=torch.float64)
    C = torch.zeros(K, K, dtype=torch.float64)
    if "beta1" in kinds:  # both ways, as aebench.ae.laws.params_from_config
        ia, ib = kinds.index("alpha"), kinds.index("beta1")
        e_ab = torch.zeros(K, K, dtype=torch.float64)
        e_ab[ia, ib] = 1.0
        e_ba = torch.zeros(K, K, dtype=torch.float64)
        e_ba[ib, ia] = 1.0
        C = e_ab * g["coupling.alpha_from_beta1"] + e_ba * g["coupling.beta1_from_alpha"]
    return GainTensors(W, leak, C, alpha * g["resonance.w_m"], g["drive.tau_p"], g["drive.tau_v"])


def init_state(params: dict[str, torch.Tensor], spec: OptSpec, cfg: AEConfig) -> dict:
    """Fresh inner state: theta, optimizer buffers, AE filters and coefficients."""
    z0, lo, hi = chart_box(spec, cfg)
    zero = torch.zeros((), dtype=torch.float64)
    st = {
        "theta": {k: v.detach().clone().to(torch.float64) for k, v in params.items()},
        "t": 0,
        "z": z0.clone(),
        "zbar": z0,
        "lo": lo,
        "hi": hi,
        "level": zero,
        "prev": zero,
        "T": zero,
        "V": zero,
        "rho": zero,
        "S": zero,
        "h": None,
        "lam": zero,
        "guard": 1.0,
        "qlog": 0.0,
        "qn": 0,
        "qseen": 0,
        "qstar": None,
        "shrink_log": 0.0,
        "E_prev": None,
        "rise": 0.0,
        "level0": None,
        "guard_events": 0,
    }
    zeros = {k: torch.zeros_like(v) for k, v in st["theta"].items()}
    if spec.name == "sgdm":
        st["buf"] = None
    else:
        st["m"] = dict(zeros)
        st["v"] = {k: torch.zeros_like(v) for k, v in zeros.items()}
    return st


def detach_state(st: dict) -> dict:
    """The same state cut from the graph (the start of a truncated window)."""

    def d(x):
        if isinstance(x, torch.Tensor):
            return x.detach()
        if isinstance(x, dict):
            return {k: d(v) for k, v in x.items()}
        return x

    return {k: d(v) for k, v in st.items()}


def coefficients(st: dict, kinds: list[str]) -> dict[str, torch.Tensor]:
    """Coefficient values from the chart coordinates z."""
    out = {}
    for i, k in enumerate(kinds):
        z = st["z"][i]
        out[k] = -torch.expm1(-z) if k in ("beta1", "beta2") else torch.exp(z)
    return out


def _ae_update(st: dict, gt: GainTensors, spec: OptSpec, cfg: AEConfig, gsq: torch.Tensor) -> None:
    """AE-2..AE-8 (+ AE-10 guard, detached) on st["z"], in place in the dict."""
    L = cfg.laws
    z, zbar, lo, hi = st["z"], st["zbar"], st["lo"], st["hi"]
    alpha_mask = torch.tensor([1.0 if k == "alpha" else 0.0 for k in spec.kinds], dtype=z.dtype)
    rho_star = cfg.targets.rho_star
    u = torch.zeros_like(z)
    if L.progress:
        u = u + laws.progress_term(st["T"], gt.W[:, 0], gt.tau_p)
    if L.variance:
        u = u + laws.variance_term(st["V"], gt.W[:, 1], gt.tau_v, cfg.drive.centre_softplus)
    if L.phase:
        u = u + laws.phase_term(st["rho"], gt.W[:, 2], rho_star)
    if L.leak:
        u = u + laws.leak_term(z, zbar, gt.leak)
    if L.barrier:
        lower = torch.ones_like(z)
        u = u + laws.barrier_force(z, lo, hi, cfg.barrier.mu, cfg.barrier.width, lower)
    if L.resonance:
        u = u + laws.resonance_phase(st["rho"], gt.w_m, rho_star)
    if L.coupling:
        u = u + laws.coupling_term(gt.C, z, zbar)
    g = st["guard"]
    step = (cfg.eta_a * g) * u
    if L.gauge and spec.name == "sgdm" and st["qstar"] is not None:
        q = torch.exp(z[0]) * gsq / (st["level"] + _TINY)
        # the target in effect (aebench.ae.gauge.update_set_point; gauge.scale: default 1)
        target = cfg.gauge.scale * st["qstar"] * math.exp(-st["shrink_log"])
        gd = laws.gauge_drive(q, target, cfg.gauge.form, cfg.gauge.soft_clip)
        step = step + alpha_mask * (cfg.gauge.eta_gamma * g) * gd
    m = torch.tensor([getattr(cfg.coefs, k).m for k in spec.kinds], dtype=z.dtype)
    if L.budget:
        step = step / torch.sqrt(1.0 + st["lam"])
        if cfg.budget.clip > 0:
            cap = cfg.budget.clip * cfg.budget.B
            step = step / torch.sqrt(1.0 + laws.budget_energy(step, m) / cap)
    z_new = z + step
    if L.resonance:
        r = cfg.resonance
        s = laws.shrink_amount(st["V"], st["rho"], r.v_max, r.rho_max, r.width, r.shrink_on_aligned)
        z_new = z_new - alpha_mask * math.log1p(r.kappa) * s
        if cfg.gauge.follow_shrink:  # aebench.ae.gauge.follow_shrink
            relax = min(1.0, cfg.gauge.eta_gamma)
            shrunk = math.log1p(r.kappa) * float(s.detach())
            st["shrink_log"] = st["shrink_log"] * (1.0 - relax) + shrunk
    if L.budget:
        st["lam"] = torch.clamp(
            st["lam"] + cfg.budget.eta_lambda * (laws.budget_energy(step, m) - cfg.budget.B),
            min=0.0,
        )
    st["z"] = z_new
    if L.lyapunov:  # AE-10 on detached values: the guard is a discrete safety rule
        ly = cfg.lyapunov
        d = (z_new - zbar).detach()
        E = float(st["level"].detach()) / st["level0"] + 0.5 * ly.weight * float((m * d * d).sum())
        if L.barrier:  # psi(z), as the controller's energy (lower wall on: alpha, betas, eps)
            E += float(
                laws.barrier_potential(
                    z_new.detach(), lo, hi, cfg.barrier.mu, cfg.barrier.width, torch.ones_like(z)
                )
            )
        if st["E_prev"] is not None:
            st["rise"] += (E - st["E_prev"] - st["rise"]) / ly.window
            st["guard"], hit = laws.guard_step(
                st["guard"], st["rise"], ly.tol, ly.shrink, ly.recover, ly.g_min
            )
            st["guard_events"] += int(hit)
        st["E_prev"] = E


def inner_step(
    st: dict,
    model: torch.nn.Module,
    loss_fn: Callable[[Callable, dict, int], torch.Tensor],
    gains: dict[str, torch.Tensor],
    spec: OptSpec,
    cfg: AEConfig,
    create_graph: bool = True,
    ae: bool = True,
) -> tuple[dict, torch.Tensor]:
    """One AE-optimizer step (module docstring); returns the new state and the training loss.

    ``loss_fn(f, theta, t)`` computes the training loss of step t, where ``f(theta, x)`` is
    ``torch.func.functional_call(model, theta, (x,))``. ``ae=False``: the vanilla optimizer.
    """
    st = dict(st)
    theta = st["theta"]
    if not create_graph:
        theta = {k: v.detach().requires_grad_(True) for k, v in theta.items()}
    elif not any(v.requires_grad for v in theta.values()):
        theta = {k: v.requires_grad_(True) for k, v in theta.items()}

    def f(p: dict, x: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(model, p, (x,))

    t = st["t"]
    loss = loss_fn(f, theta, t)
    names = list(theta)
    grads = torch.autograd.grad(loss, [theta[k] for k in names], create_graph=create_graph)
    grads = dict(zip(names, grads, strict=True))
    if not create_graph:
        loss = loss.detach()
    gflat = torch.cat([grads[k].reshape(-1) for k in names])
    gsq = (gflat * gflat).sum()
    sc = cfg.signals
    finite = bool(torch.isfinite(loss)) and bool(torch.isfinite(gsq))
    if ae and finite:
        if t == 0:
            st["level"], st["prev"] = loss.abs(), loss
        else:
            st["level"], st["prev"], st["T"], st["V"] = loss_signal_step(
                st["level"],
                st["prev"],
                st["T"],
                st["V"],
                loss,
                sc.tc_level,
                sc.tc_trend,
                sc.tc_var,
                sc.clip,
            )
        if st["h"] is not None:
            h = st["h"]
            st["rho"], st["S"] = grad_signal_step(
                st["rho"], st["S"], gsq, (gflat * h).sum(), (h * h).sum(), sc.tc_rho, sc.tc_s
            )
        st["h"] = gflat
        if st["level0"] is None:
            st["level0"] = max(float(st["level"].detach()), _TINY)
        if spec.name == "sgdm" and st["qstar"] is None:  # aebench.ae.gauge.update_set_point
            st["qseen"] += 1
            if st["qseen"] > cfg.gauge.delay:  # the window starts after the delay
                on_base = cfg.gauge.calibrate_on == "base"
                alpha = spec.lr if on_base else float(torch.exp(st["z"][0]).detach())
                q = alpha * float(gsq.detach()) / (float(st["level"].detach()) + _TINY)
                st["qlog"] += math.log(max(q, _TINY))
                st["qn"] += 1
                if st["qn"] >= cfg.gauge.warmup:  # calibrated set point, detached
                    qs = math.exp(st["qlog"] / st["qn"])
                    st["qstar"] = torch.tensor(qs, dtype=torch.float64)
        if t + 1 > sc.warmup:
            _ae_update(st, gain_tensors(gains, spec.kinds), spec, cfg, gsq)
    c = coefficients(st, spec.kinds)
    alpha = c["alpha"]
    if spec.name == "sgdm":
        b1 = c["beta1"]
        buf = grads if st["buf"] is None else {k: b1 * st["buf"][k] + grads[k] for k in names}
        st["buf"] = buf
        new = {k: theta[k] - alpha * buf[k] for k in names}
    else:
        b1, b2, eps = c["beta1"], c["beta2"], c["eps"]
        n = t + 1
        m = {k: b1 * st["m"][k] + (1 - b1) * grads[k] for k in names}
        v = {k: b2 * st["v"][k] + (1 - b2) * grads[k] * grads[k] for k in names}
        st["m"], st["v"] = m, v
        bc1, bc2 = 1 - b1**n, 1 - b2**n
        new = {
            k: theta[k] - alpha * (m[k] / bc1) / (torch.sqrt(v[k] / bc2 + _TINY) + eps)
            for k in names
        }
    if not create_graph:
        new = {k: v.detach() for k, v in new.items()}
        st = detach_state(st)
    st["theta"] = new
    st["t"] = t + 1
    return st, loss
