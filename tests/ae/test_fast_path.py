"""The controller's fast path (aebench/ae/flatgrad.py, the flat parameter noise) against the
per-tensor path it replaced, kept here as the reference (issue 15).

* the gradient statistics of one update equal the reference's: to the last bits in float64, to
  float32 rounding in float32;
* the parameter noise is bit-identical to the per-tensor draw (same generator stream);
* a fixed gradient sequence replayed through a controller on the reference path and one on the
  package's path gives every coefficient and signal equal to 1e-12 relative, also when rho's
  copy (``GroupState.prev``) is replaced or cleared mid-run;
* one update brings values to the host once (``.item()``/``.tolist()``/``float()`` counted).
"""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae.bindings import AdafactorBinding, add_parameter_noise, binding_for
from aebench.ae.config import AEConfig
from aebench.ae.controller import AEControl
from aebench.ae.flatgrad import group_stats, to_host
from aebench.ae.signals import grad_stats

SHAPES = [(7, 5), (5,), (3, 4, 2), (1,)]


# ----------------------------------------------------------------------------- the reference path
def ref_grad_stats(grads, prevs):  # noqa: ANN001, ANN201
    """The per-tensor gradient statistics the controller used before issue 15."""
    gn = torch.stack(torch._foreach_norm(grads)).double()
    gsq = (gn * gn).sum()
    if prevs is None:
        zero = torch.zeros((), dtype=torch.float64)
        return torch.stack([gsq, zero, zero])
    pn = torch.stack(torch._foreach_norm(prevs)).double()
    dots = torch.stack([(g * h).sum() for g, h in zip(grads, prevs, strict=True)])
    return torch.stack([gsq, dots.double().sum(), (pn * pn).sum()])


def ref_adam_precond(optimizer, group, params, grads):  # noqa: ANN001, ANN201
    """AdamBinding.precond as it was (a flat pass with torch.dot, host copies)."""
    eps = float(group["eps"])
    states = [optimizer.state.get(p, {}) for p in params]
    if any("exp_avg_sq" not in st for st in states):
        d = torch._foreach_add(torch._foreach_abs(grads), eps)
    else:
        beta2 = float(group["betas"][1])
        steps = [float(st["step"]) for st in states]
        if len(set(steps)) == 1:
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


def ref_measure(ctl: AEControl, group: dict, gs) -> tuple[float, ...] | None:  # noqa: ANN001
    """AEControl._measure as it was: per-tensor passes, a host copy per part."""
    ps = [p for p in group["params"] if p.grad is not None and not p.grad.is_sparse]
    grads = [p.grad for p in ps]
    if not ps:
        return None
    scale = 1.0
    if ctl.cfg.rho_buffer == "copy":
        prevs = [gs.prev[id(p)] for p in ps if id(p) in gs.prev]
        if len(prevs) != len(ps):
            prevs = None
    else:
        prevs = []
        for p in ps:
            buf, scale = ctl.binding.momentum(ctl.optimizer, group, p)
            if buf is None:
                prevs = None
                break
            prevs.append(buf)
    st = ref_grad_stats(grads, prevs)
    family = ctl.binding.family
    if family == "sgd":
        pre = st[:1].repeat(2)
    elif family == "adam":
        pre = ref_adam_precond(ctl.optimizer, group, ps, grads)
    else:
        pre = ctl.binding.precond(ctl.optimizer, group, ps, grads)
    gsq, dot, psq, pre_sq, gpg = torch.cat([st, pre]).tolist()
    if prevs is None:
        dot, psq = 0.0, 0.0
    return gsq, dot * scale, psq * scale * scale, pre_sq, gpg


@torch.no_grad()
def ref_noise(params, sigma, rms_floor, generator):  # noqa: ANN001
    """add_parameter_noise as it was: a draw per tensor, scales on the host."""
    if sigma <= 0.0 or not math.isfinite(sigma):
        return
    norms = torch.stack(torch._foreach_norm([p.detach() for p in params])).float().cpu().tolist()
    scales = [
        sigma * max(n / math.sqrt(max(p.numel(), 1)), rms_floor)
        for n, p in zip(norms, params, strict=True)
    ]
    noise = [
        torch.randn(p.shape, generator=generator, device=p.device, dtype=p.dtype) for p in params
    ]
    torch._foreach_mul_(noise, scales)
    torch._foreach_add_(params, noise)


class RefControl(AEControl):
    """The controller on the reference measurement path and the reference law arithmetic."""

    def _measure(self, group, gs):  # noqa: ANN001, ANN202
        return ref_measure(self, group, gs)

    def _laws(self, gs, z, zbar, lo, hi, sig):  # noqa: ANN001, ANN202
        return ref_laws(self, gs, z, zbar, lo, hi, sig)

    def _lyapunov(self, gs, level_rel, z, zbar, psi):  # noqa: ANN001, ANN202
        return ref_lyapunov(self, gs, level_rel, z, zbar, psi)


def ref_laws(ctl: AEControl, gs, z_l, zbar_l, lo_l, hi_l, sig):  # noqa: ANN001, ANN201
    """The law arithmetic as it was before issue 15: float64 tensors through the tensor
    composition :func:`aebench.ae.laws.coefficient_step` (which stays in the package for AE-9's
    gradients and the meta-learner)."""
    from aebench.ae import laws as L

    cfg = ctl.cfg
    dt = torch.float64
    z, zbar, lo_t, hi_t = (torch.tensor(x, dtype=dt) for x in (z_l, zbar_l, lo_l, hi_l))
    res = L.coefficient_step(
        z, zbar, lo_t, hi_t, sig, gs.lam, gs.guard, gs.params, cfg.laws, cfg, dt=float(cfg.every)
    )
    psi = 0.0
    if cfg.laws.barrier:
        psi = float(
            L.barrier_potential(
                res.z, lo_t, hi_t, cfg.barrier.mu, cfg.barrier.width, gs.params.lower
            )
        )
    return res.z.tolist(), float(res.lam), float(res.shrink), res.coupling.tolist(), psi


def ref_lyapunov(ctl: AEControl, gs, level_rel, z, zbar, psi):  # noqa: ANN001, ANN201
    """AE-10's energy as it was: float64 tensors through :func:`aebench.ae.laws.lyapunov_energy`."""
    from aebench.ae import laws as L

    ez, ezbar = ctl._energy_coordinates(gs, z, zbar)
    dt = torch.float64
    return float(
        L.lyapunov_energy(
            level_rel,
            torch.tensor(ez, dtype=dt),
            torch.tensor(ezbar, dtype=dt),
            gs.params.m,
            ctl.cfg.lyapunov.weight,
            psi,
        )
    )


def tensors(dtype: torch.dtype, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(s, generator=g, dtype=dtype) for s in SHAPES]


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(a), abs(b), 1e-300)


# ----------------------------------------------------------------------------- statistics
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
def test_grad_stats_match_the_per_tensor_sums(dtype, tol) -> None:  # noqa: ANN001
    g, h = tensors(dtype, 0), tensors(dtype, 1)
    for prevs in (h, None):
        new, old = grad_stats(g, prevs).tolist(), ref_grad_stats(g, prevs).tolist()
        assert all(rel(a, b) <= tol for a, b in zip(new, old, strict=True)), (new, old)


def _adam_with_state(dtype: torch.dtype, steps: int) -> tuple[torch.optim.Optimizer, list]:
    ps = [torch.nn.Parameter(t) for t in tensors(dtype, 2)]
    opt = torch.optim.AdamW(ps, lr=1e-3)
    for k in range(steps):
        for p, gr in zip(ps, tensors(dtype, 10 + k), strict=True):
            p.grad = gr
        opt.step()
    for p, gr in zip(ps, tensors(dtype, 99), strict=True):
        p.grad = gr
    return opt, ps


@pytest.mark.parametrize("steps", [0, 3, -3])
@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-13), (torch.float32, 1e-5)])
def test_group_stats_adam_matches_the_reference(steps, dtype, tol) -> None:  # noqa: ANN001
    """``steps=-3``: three steps, then one parameter's counter differs (a per-tensor bias
    correction)."""
    opt, ps = _adam_with_state(dtype, abs(steps))
    if steps < 0:
        opt.state[ps[0]]["step"] += 2
    group, grads, prevs = opt.param_groups[0], [p.grad for p in ps], tensors(dtype, 5)
    new = list(group_stats(binding_for(opt), opt, group, ps, grads, prevs, 0.5).read())
    st = ref_grad_stats(grads, prevs).tolist()
    pre = ref_adam_precond(opt, group, ps, grads).tolist()
    old = [st[0], st[1] * 0.5, st[2] * 0.25, *pre]
    assert all(rel(a, b) <= tol for a, b in zip(new, old, strict=True)), (new, old)


def test_group_stats_sgd_and_adafactor() -> None:
    ps = [torch.nn.Parameter(t) for t in tensors(torch.float64, 3)]
    grads = tensors(torch.float64, 4)
    for p, gr in zip(ps, grads, strict=True):
        p.grad = gr
    sgd = torch.optim.SGD(ps, lr=0.1, momentum=0.9)
    new = list(group_stats(binding_for(sgd), sgd, sgd.param_groups[0], ps, grads, None).read())
    gsq = ref_grad_stats(grads, None).tolist()[0]
    assert [rel(a, b) < 1e-13 for a, b in zip(new, [gsq, 0.0, 0.0, gsq, gsq], strict=True)] == [
        True
    ] * 5
    adafactor = torch.optim.Adafactor(ps, lr=0.01)
    got = group_stats(
        AdafactorBinding(), adafactor, adafactor.param_groups[0], ps, grads, None
    ).read()
    want = AdafactorBinding().precond(adafactor, adafactor.param_groups[0], ps, grads).tolist()
    assert rel(got[3], want[0]) < 1e-13 and rel(got[4], want[1]) < 1e-13


def test_to_host_flattens_in_order() -> None:
    assert to_host(torch.tensor(2.0), None, 3, torch.tensor([4.0, 5.0])) == [2.0, 3.0, 4.0, 5.0]


# ----------------------------------------------------------------------------- noise
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_flat_noise_is_bit_identical_to_the_per_tensor_draw(dtype) -> None:  # noqa: ANN001
    a, b = tensors(dtype, 6), tensors(dtype, 6)
    a[1].zero_()  # RMS below the floor: the floor sets the scale
    b[1].zero_()
    ga, gb = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    for sigma in (1e-2, 3e-4):
        add_parameter_noise(a, sigma, 1e-3, ga)
        ref_noise(b, sigma, 1e-3, gb)
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert torch.equal(ga.get_state(), gb.get_state())


def test_no_noise_at_the_floor_draws_nothing() -> None:
    a = tensors(torch.float32, 7)
    before = [t.clone() for t in a]
    gen = torch.Generator().manual_seed(0)
    state = gen.get_state()
    add_parameter_noise(a, 0.0, 1e-3, gen)
    assert torch.equal(gen.get_state(), state)
    assert all(torch.equal(x, y) for x, y in zip(a, before, strict=True))


# ----------------------------------------------------------------------------- replay
def _arm_config(arm: str, **kw) -> AEConfig:  # noqa: ANN003
    """``ae=on`` (the schema defaults) or ``ae=canonical`` (conf/ae/canonical.yaml over them)."""
    if arm == "on":
        return AEConfig(enabled=True, **kw)
    from pathlib import Path

    from omegaconf import OmegaConf

    from aebench.ae.config import coerce

    conf = Path(__file__).resolve().parents[2] / "conf" / "ae"
    raw = OmegaConf.merge(OmegaConf.load(conf / "on.yaml"), OmegaConf.load(conf / "canonical.yaml"))
    data = OmegaConf.to_container(raw)
    data.pop("defaults", None)
    data.update(kw)
    return coerce(data)


def _replay(
    cls: type[AEControl],
    opt_name: str,
    rho_buffer: str,
    every: int,
    steps: int = 40,
    arm: str = "on",
) -> list[dict[str, float]]:
    """A fixed gradient and loss sequence through a controller; the rows and coefficients."""
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(t) for t in tensors(torch.float64, 11)]
    if opt_name == "sgd":
        opt = torch.optim.SGD(ps, lr=0.05, momentum=0.9)
    else:
        opt = torch.optim.AdamW(ps, lr=3e-3)
    cfg = _arm_config(arm, every=every, rho_buffer=rho_buffer)
    cfg.gauge.delay, cfg.gauge.warmup = 5, 5  # the gauge acts within the 40 steps (SGD)
    cfg.noise.sigma_init = 1e-3  # noise on from the start: the noise path is replayed too
    ctl = cls(opt, cfg, seed=1)
    out = []
    for t in range(steps):
        for p, gr in zip(ps, tensors(torch.float64, 100 + t), strict=True):
            p.grad = gr * (1.0 + 0.5 * math.sin(0.3 * t))
        loss = torch.tensor(2.0 * math.exp(-0.05 * t) + 0.1 * math.sin(t), dtype=torch.float64)
        row = ctl.before_step(loss)
        opt.step()
        ctl.after_step()
        out.append(
            {
                **row,
                **{f"c_{k}": v for k, v in ctl.coefficients().items()},
                "p0": float(ps[0].detach().sum()),
            }
        )
    return out


@pytest.mark.parametrize(
    "opt_name,rho_buffer,every,arm",
    [
        ("adamw", "copy", 1, "on"),
        ("sgd", "copy", 1, "on"),
        ("sgd", "momentum", 1, "on"),
        ("adamw", "copy", 4, "on"),
        ("sgd", "copy", 1, "canonical"),  # tanh phase, additive beta, literal gauge, eps_T
        ("adamw", "copy", 1, "canonical"),
    ],
)
def test_replay_fast_path_equals_reference(opt_name, rho_buffer, every, arm) -> None:  # noqa: ANN001
    ref = _replay(RefControl, opt_name, rho_buffer, every, arm=arm)
    new = _replay(AEControl, opt_name, rho_buffer, every, arm=arm)
    moved = False
    for t, (a, b) in enumerate(zip(ref, new, strict=True)):
        assert a.keys() == b.keys()
        for key in a:
            x, y = a[key], b[key]
            if math.isnan(x) and math.isnan(y):
                continue
            assert rel(x, y) <= 1e-12, (t, key, x, y)
        moved |= a["c_alpha"] != ref[0]["c_alpha"] if "c_alpha" in a else a["lr"] != ref[0]["lr"]
    assert moved  # the laws acted: the comparison is not between two idle controllers


def _rows_with(cls: type[AEControl], disturb, every: int, steps: int = 12) -> list[dict]:  # noqa: ANN001
    """Rows of a controller on a fixed gradient sequence; ``disturb(ctl, t)`` runs before each
    step (to replace or clear rho's copy as a swarm's device move or PBT's exploit does)."""
    ps = [torch.nn.Parameter(t) for t in tensors(torch.float64, 11)]
    opt = torch.optim.SGD(ps, lr=0.05, momentum=0.9)
    ctl = cls(opt, AEConfig(enabled=True, every=every), seed=1)
    rows = []
    for t in range(steps):
        for p, gr in zip(ps, tensors(torch.float64, 100 + t), strict=True):
            p.grad = gr
        disturb(ctl, t)
        rows.append(ctl.before_step(torch.tensor(1.0 + 0.1 * math.sin(t), dtype=torch.float64)))
        opt.step()
    return rows


def _replace(ctl: AEControl, t: int) -> None:
    if t == 6:  # new tensors (other values) in place of the views, after the copy of step 5
        gs = ctl.groups[0]
        for key, value in gs.prev.items():
            gs.prev[key] = value * -0.5


def _clear(ctl: AEControl, t: int) -> None:
    if t == 6:
        ctl.groups[0].prev.clear()


@pytest.mark.parametrize("every", [1, 3])
@pytest.mark.parametrize("disturb", [_replace, _clear])
def test_rho_copy_follows_replaced_or_cleared_views(disturb, every) -> None:  # noqa: ANN001
    """The flat copy notices ``GroupState.prev`` being replaced or cleared and measures what the
    dict holds, as the per-tensor reference (which reads the dict) does."""
    ref = _rows_with(RefControl, disturb, every)
    new = _rows_with(AEControl, disturb, every)
    for a, b in zip(ref, new, strict=True):
        assert a.keys() == b.keys()
        assert all(
            (math.isnan(a[k]) and math.isnan(b[k])) or rel(a[k], b[k]) <= 1e-12 for k in a
        ), (a, b)
    plain = _rows_with(AEControl, lambda ctl, t: None, every)
    assert new[6]["rho"] != plain[6]["rho"]  # the disturbance reached the update of step 6
    if disturb is _clear:  # no h at that update: rho is not fed, and is again one update later
        assert new[6]["rho"] == new[5]["rho"] != new[6 + every]["rho"]


# ----------------------------------------------------------------------------- host transfers
class _Counter:
    """Counts Tensor.item / tolist / __float__ / cpu calls while active."""

    names = ("item", "tolist", "__float__", "cpu")

    def __init__(self, monkeypatch: pytest.MonkeyPatch, host_tensors: list[torch.Tensor]) -> None:
        self.calls: list[str] = []
        self.active = False
        # tensors that live on the host by design (Adam's step counters, torch's default when
        # neither fused nor capturable): reading them is no device synchronisation
        host = {id(t) for t in host_tensors}
        for name in self.names:
            original = getattr(torch.Tensor, name)

            def wrapped(t, *a, _name=name, _orig=original, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
                if self.active and id(t) not in host:
                    self.calls.append(_name)
                return _orig(t, *a, **k)

            monkeypatch.setattr(torch.Tensor, name, wrapped)


def _model_step(
    ctl: AEControl,
    opt: torch.optim.Optimizer,
    model: torch.nn.Module,
    x: torch.Tensor,
    counter: _Counter | None = None,
) -> None:
    """One training step; ``counter`` counts inside the controller's two calls only (the
    optimizer's own reads of its CPU step counters are not the controller's)."""
    loss = model(x).pow(2).mean()
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if counter is not None:
        counter.active = True
    ctl.before_step(loss.detach())
    if counter is not None:
        counter.active = False
    opt.step()
    if counter is not None:
        counter.active = True
    ctl.after_step()
    if counter is not None:
        counter.active = False


@pytest.mark.parametrize("opt_name", ["adamw", "sgd"])
def test_one_host_transfer_per_update(monkeypatch, opt_name) -> None:  # noqa: ANN001
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 1))
    if opt_name == "sgd":
        opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    else:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    cfg = AEConfig(enabled=True, every=2)
    cfg.noise.sigma_init = 1e-3  # the noise path runs in the counted steps
    ctl = AEControl(opt, cfg, seed=0)
    x = torch.randn(16, 6)
    for _ in range(4):
        _model_step(ctl, opt, model, x)
    steps = [st["step"] for st in opt.state.values() if isinstance(st.get("step"), torch.Tensor)]
    counter = _Counter(monkeypatch, steps)
    _model_step(ctl, opt, model, x, counter)  # an update step (t = 4, every = 2), with noise
    update_calls = list(counter.calls)
    counter.calls.clear()
    _model_step(ctl, opt, model, x, counter)  # a step between updates
    between_calls = list(counter.calls)
    assert ctl.groups[0].sigma > 0
    assert len(update_calls) == 1, update_calls
    assert between_calls == []  # the loss of a step between updates is read at the next update


# ----------------------------------------------------------------------------- noise cadence
def _noise_run(noise_every: int, sigma: float, steps: int = 7) -> list[torch.Tensor]:
    """Parameters after each step of a run whose only motion is the sigma noise (zero grads)."""
    ps = [torch.nn.Parameter(t) for t in tensors(torch.float32, 12)]
    opt = torch.optim.SGD(ps, lr=0.01)
    cfg = AEConfig(enabled=True, noise_every=noise_every)
    cfg.coefs.sigma.adapt = False  # sigma held at sigma_init
    cfg.noise.sigma_init = sigma
    ctl = AEControl(opt, cfg, seed=4)
    out = []
    for _ in range(steps):
        for p in ps:
            p.grad = torch.zeros_like(p)
        ctl.before_step(torch.tensor(1.0))
        opt.step()
        ctl.after_step()
        out.append(torch.cat([p.detach().reshape(-1) for p in ps]).clone())
    return out


def test_noise_every_draws_on_every_kth_update_with_sqrt_k_std() -> None:
    start = torch.cat([t.reshape(-1) for t in tensors(torch.float32, 12)])
    runs = _noise_run(3, 1e-3)
    moved = [not torch.equal(a, b) for a, b in zip([start, *runs[:-1]], runs, strict=True)]
    assert moved == [True, False, False, True, False, False, True]
    # the first draw is the one a per-update draw of std sigma sqrt(3) makes
    assert torch.equal(runs[0], _noise_run(1, 1e-3 * math.sqrt(3), steps=1)[0])
