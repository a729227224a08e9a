"""ae=canonical: the seed's AE-SGDm forms (additive beta update, tanh phase, eps_T ~ sqrt(V*))."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae import laws as L
from aebench.ae.charts import from_chart, to_chart
from aebench.ae.config import AEConfig


def test_additive_update_in_the_horizon_chart_is_exact():
    beta, s = 0.9, 0.03
    z = torch.tensor([to_chart("beta1", beta, 0.0)], dtype=torch.float64)
    dz = L.additive_in_chart(torch.tensor([s], dtype=torch.float64), z, torch.ones(1))
    assert from_chart("beta1", float(z + dz), 0.0) == pytest.approx(beta + s, rel=1e-12)


def test_phase_tanh_form():
    w = torch.tensor([2.0, 2.0], dtype=torch.float64)
    out = L.phase_term(0.8, w, 0.0, torch.tensor([1.0, 0.0], dtype=torch.float64))
    assert float(out[0]) == pytest.approx(2 * math.tanh(0.8)) and float(out[1]) == 1.6


def test_canonical_config_runs_and_moves_beta_additively():
    from tests.ae.ae_helpers import regression

    cfg = AEConfig(enabled=True)
    cfg.drive.tau_v, cfg.drive.centre_softplus = 0.05, False
    cfg.coefs.beta1.phase_tanh = cfg.coefs.beta1.additive = True
    cfg.targets.eps_T_sqrt_v = 0.1
    cfg.gauge.signal, cfg.gauge.form = "step", "literal"
    rows, _, _ = regression("sgdm", cfg, steps=150)
    assert all(math.isfinite(r["lr"]) and 0.0 <= r["momentum"] <= 0.999 for r in rows)
    assert rows[-1]["momentum"] != 0.9
