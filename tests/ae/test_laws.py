"""One test per law of its direction and bounds, on scripted signals or small plain loops."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae import laws as L
from aebench.ae.config import AEConfig, LawsConfig
from tests.ae.ae_helpers import only, scripted

N = 80
ONES = torch.ones(4)


def _alpha(rows):
    return [r["lr"] for r in rows]


# ------------------------------------------------------------------ AE-2 drive terms
def test_progress_falling_loss_raises_alpha_rising_lowers():
    falling, _ = scripted(only("progress", "leak"), [10 * 0.99**t for t in range(N)], ONES)
    rising, _ = scripted(only("progress", "leak"), [10 * 1.01**t for t in range(N)], ONES)
    assert falling[-1]["lr"] > 0.1 * 1.05
    assert rising[-1]["lr"] < 0.1 / 1.05


def test_variance_spike_lowers_alpha():
    quiet = [1.0] * 40
    spiky = quiet + [1.0 if t % 2 else 3.0 for t in range(40)]
    rows, _ = scripted(only("variance", "leak"), spiky, ONES)
    assert rows[39]["lr"] == 0.1  # zero variance exerts no pull (centred softplus): no write
    assert rows[-1]["lr"] < 0.1 / 1.05
    assert rows[-1]["V"] > rows[39]["V"]


@pytest.mark.parametrize("centre", [True, False])
def test_softplus_equilibrium(centre):
    """readings #3: centred, an idle controller rests at the prior; literal, at
    z* = zbar - W_v ln2 / Gamma."""
    cfg = only("variance", "leak")
    cfg.drive.centre_softplus = centre
    cfg.eta_a = 0.5  # speeds convergence only; the equilibrium does not depend on eta_a
    rows, _ = scripted(cfg, [1.0] * 150, ONES)
    c = cfg.coefs.alpha
    expected = 0.0 if centre else -c.w_v * math.log(2.0) / c.leak
    assert math.log(rows[-1]["lr"] / 0.1) == pytest.approx(expected, abs=1e-6)


def test_phase_aligned_raises_alternating_lowers():
    up, _ = scripted(only("phase", "leak"), [1.0] * N, ONES)
    down, _ = scripted(only("phase", "leak"), [1.0] * N, [ONES * (-1) ** t for t in range(N)])
    assert up[-1]["lr"] > 0.1 * 1.02 and up[-1]["momentum"] > 0.9  # beta1 tracks rho
    assert down[-1]["lr"] < 0.1 / 1.02 and down[-1]["momentum"] < 0.9


def test_reward_rising_raises_alpha():
    cfg = only("reward", "leak")
    p = torch.nn.Parameter(torch.zeros(4))
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    from aebench.ae.controller import AEControl

    ctl = AEControl(opt, cfg)
    for t in range(N):
        p.grad = ONES.clone()
        ctl.before_step(torch.tensor(1.0), reward=1.0 + 0.01 * t)
    assert opt.param_groups[0]["lr"] > 0.1 * 1.05


def test_barrier_pushes_away_from_walls_and_is_bounded():
    lo, hi = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 1.0])
    lower = torch.tensor([1.0, 0.0])
    f = L.barrier_force(torch.tensor([0.001, 0.001]), lo, hi, 1.0, 0.02, lower)
    assert f[0] > 0.9 and abs(f[1]) < 1e-10  # no lower wall for zero-floor kinds
    assert L.barrier_force(torch.tensor([0.999, 0.5]), lo, hi, 1.0, 0.02, lower)[0] < -0.9
    assert abs(L.barrier_force(torch.tensor([0.5, 0.5]), lo, hi, 1.0, 0.02, lower)[0]) < 1e-9


# ------------------------------------------------------------------ AE-4 noise law
def test_noise_stall_raises_sigma_variance_spike_lowers_it():
    cfg = only("noise")
    cfg.noise.sigma_init = 1e-4
    stall, _ = scripted(cfg, [1.0] * N, ONES)
    spike, _ = scripted(cfg, [1.0 if t % 2 else 2.0 for t in range(N)], ONES)
    assert stall[-1]["sigma"] > 2e-4
    assert spike[-1]["sigma"] < 0.5e-4
    assert all(r["sigma"] <= cfg.coefs.sigma.hi for r in stall)


# ------------------------------------------------------------------ AE-5 resonance
def test_resonance_alternating_gradients_shrink_alpha_not_beta():
    cfg = only("resonance")
    rows, ctl = scripted(cfg, [1.0] * N, [ONES * (-1) ** t for t in range(N)])
    calm, _ = scripted(cfg, [1.0] * N, ONES)
    assert rows[-1]["rho"] < -0.9 and rows[-1]["shrink"] > 0.99
    assert rows[-1]["lr"] < 0.1 * 0.1  # a tenfold shrink at least
    assert rows[-1]["momentum"] == 0.9  # readings #8: the shrink touches alpha and sigma only
    assert calm[-1]["shrink"] < 1e-6 and calm[-1]["lr"] > 0.1  # aligned: phase term only


# ------------------------------------------------------------------ AE-6 budget
def _budget_run(budget_on: bool, n: int = 400):
    cfg = AEConfig()
    cfg.laws = LawsConfig(**{k: False for k in vars(LawsConfig())})
    cfg.laws.progress = True
    cfg.laws.budget = budget_on
    cfg.coefs.alpha.w_p = 20.0  # a drive far beyond the budget
    p = L.params_from_config(cfg, ["alpha", "beta1"])
    z = torch.tensor([0.0, 2.3], dtype=torch.float64)
    lo = torch.tensor([-50.0, 0.0], dtype=torch.float64)
    hi = torch.tensor([50.0, 6.9], dtype=torch.float64)
    lam, energies = 0.0, []
    sig = L.Signals(T=-0.05, V=0.0, R=0.0, rho=0.0, S=0.0)
    for _ in range(n):
        res = L.coefficient_step(z, z.clone(), lo, hi, sig, lam, 1.0, p, cfg.laws, cfg)
        energies.append(float(res.energy))
        z, lam = res.z, res.lam
    return cfg, energies, lam


def test_budget_holds_on_average_not_per_step():
    cfg, energies, lam = _budget_run(True)
    B, n = cfg.budget.B, len(energies)
    # the guarantee of dual ascent: sum(E - B) <= lambda_n / eta_lambda
    assert sum(e - B for e in energies) <= lam / cfg.budget.eta_lambda + 1e-12
    assert sum(energies[n // 2 :]) / (n - n // 2) <= 1.5 * B  # long-run average near the budget
    assert max(energies) <= cfg.budget.clip * B * (1 + 1e-9)  # the hard per-step clip
    _, free, _ = _budget_run(False)
    assert sum(free) / n > 2 * B  # without the law the same drive exceeds the budget


# ------------------------------------------------------------------ AE-7 coupling
def test_coupling_longer_momentum_horizon_pulls_alpha_down():
    cfg = only("coupling")
    cfg.coefs.beta1.prior = 0.5  # base 0.9 sits above its prior: zeta_beta1 > 0
    rows, _ = scripted(cfg, [1.0] * N, ONES)
    assert rows[-1]["lr"] < 0.1 / 1.02
    cfg.coupling.alpha_from_beta1 = 0.5
    rows, _ = scripted(cfg, [1.0] * N, ONES)
    assert rows[-1]["lr"] > 0.1 * 1.02


# ------------------------------------------------------------------ AE-10 Lyapunov guard
def test_guard_cuts_meta_step_when_energy_rises():
    cfg = only("lyapunov", "progress")
    rising, ctl = scripted(cfg, [1.0 * 1.01**t for t in range(N)], ONES)
    falling, _ = scripted(cfg, [1.0 * 0.99**t for t in range(N)], ONES)
    assert rising[-1]["guard"] < 0.5 and ctl.groups[0].guards > 0
    assert falling[-1]["guard"] == 1.0
    assert falling[-1]["energy"] < falling[25]["energy"]


# ------------------------------------------------------------------ AE-3 / Omega under NaN/inf
def test_coefficients_never_leave_omega_under_nonfinite_input():
    cfg = AEConfig(enabled=True)
    cfg.coefs.alpha.w_p = 1e300  # absurd gain: inf/NaN drive
    cfg.signals.warmup = 0
    bad = [1.0, float("nan"), 1e308, float("inf"), -float("inf"), 1e-308, 0.0, 5.0] * 10
    grads = []
    for t in range(len(bad)):
        g = ONES * (1e30 if t % 3 else -1e-30)
        if t % 5 == 0:
            g = g.clone()
            g[0] = float("nan")
        grads.append(g)
    for opt in ("sgdm", "adamw"):
        rows, ctl = scripted(cfg, bad, grads, opt=opt)
        base = 0.1 if opt == "sgdm" else 1e-2
        for r in rows:
            assert base * cfg.coefs.alpha.lo * (1 - 1e-9) <= r["lr"] <= base * cfg.coefs.alpha.hi
            beta = r.get("momentum", r.get("beta1"))
            assert cfg.coefs.beta1.lo <= beta <= cfg.coefs.beta1.hi
            assert 0.0 <= r["sigma"] <= cfg.coefs.sigma.hi
            assert math.isfinite(r["budget_lambda"])
        assert ctl.skips > 0


def test_projection_replaces_nonfinite_and_clamps():
    z_old = torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64)
    z_new = torch.tensor([float("nan"), float("inf"), -7.0], dtype=torch.float64)
    lo, hi = torch.zeros(3, dtype=torch.float64), torch.ones(3, dtype=torch.float64)
    assert L.project(z_new, z_old, lo, hi).tolist() == [0.5, 0.5, 0.0]
