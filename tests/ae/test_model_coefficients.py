"""Model coefficients (gate, dropout, l1) through the binding mechanism: charts, read/write,
their drive directions on scripted signals, the shared budget, and vanilla bit-identity."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae.bindings import attribute_coefficient
from aebench.ae.charts import chart_bounds, from_chart, to_chart
from aebench.ae.config import AEConfig, law_names, validate
from aebench.ae.controller import AEControl
from tests.ae.ae_helpers import only


class _Holder:
    """Stands in for a model: per-block gates, a dropout and an L1 strength as plain floats."""

    def __init__(self, gates=(0.5, 0.5, 0.5), dropout=0.1, l1=1e-2):
        self.gates = list(gates)
        self.dropout = dropout
        self.l1 = l1

    def coefficients(self):
        n = len(self.gates)
        return [
            *(
                attribute_coefficient(self, "gates", "gate", f"gate_{i}", 1.0 / n, index=i)
                for i in range(n)
            ),
            attribute_coefficient(self, "dropout", "dropout", "dropout"),
            attribute_coefficient(self, "l1", "l1", "l1"),
        ]


def _drive(cfg, losses, holder=None, opt="sgdm"):
    """Scripted losses (constant gradient) through AEControl with the holder's coefficients."""
    holder = holder or _Holder()
    p = torch.nn.Parameter(torch.zeros(4))
    optim = (
        torch.optim.SGD([p], lr=0.1, momentum=0.9)
        if opt == "sgdm"
        else torch.optim.AdamW([p], lr=1e-2)
    )
    ctl = AEControl(optim, cfg, model_coefficients=holder.coefficients())
    rows = []
    for loss in losses:
        p.grad = torch.ones(4)
        rows.append(ctl.before_step(torch.tensor(loss)))
    return rows, holder, ctl


@pytest.mark.parametrize(
    ("kind", "value"),
    [
        ("gate", 0.5),
        ("gate", 0.013),
        ("gate", 0.98),
        ("dropout", 0.1),
        ("dropout", 0.45),
        ("l1", 0.02),
    ],
)
def test_chart_round_trip(kind, value):
    assert from_chart(kind, to_chart(kind, value, 1e-3), 1e-3) == pytest.approx(value, rel=1e-12)


def test_gate_chart_is_logit_and_floors_mean_off():
    assert to_chart("gate", 0.5) == 0.0 and to_chart("gate", 0.9) == pytest.approx(math.log(9))
    assert from_chart("dropout", to_chart("dropout", 0.0, 1e-3), 1e-3) == 0.0  # p = 0 stays off
    assert from_chart("l1", to_chart("l1", 0.0, 1e-6), 1e-6) == 0.0
    lo, hi = chart_bounds("gate", 0.01, 0.99, False, 0.5)
    assert lo == pytest.approx(-hi) and from_chart("gate", hi) == pytest.approx(0.99)


def test_binding_reads_and_writes_each_kind():
    h = _Holder()
    coefs = {c.column: c for c in h.coefficients()}
    assert {c.kind for c in coefs.values()} == {"gate", "dropout", "l1"}
    coefs["gate_1"].write(0.7)
    coefs["dropout"].write(0.2)
    coefs["l1"].write(0.05)
    assert h.gates == [0.5, 0.7, 0.5] and h.dropout == 0.2 and h.l1 == 0.05
    assert coefs["gate_1"].read() == 0.7 and coefs["gate_1"].share == pytest.approx(1 / 3)


def test_progress_opens_gates_and_lowers_dropout_and_l1():
    cfg = only("progress", "leak")
    cfg.signals.warmup = 5
    rows, h, _ = _drive(cfg, [10 * 0.98**t for t in range(120)])
    assert all(g > 0.55 for g in h.gates)  # capacity grows with progress
    assert h.dropout < 0.1 / 1.05 and h.l1 < 1e-2 / 1.05
    assert rows[-1]["gate_0"] == h.gates[0] and rows[-1]["l1"] == h.l1


def test_variance_spike_closes_gates_and_raises_dropout():
    cfg = only("variance", "leak")
    cfg.signals.warmup = 5
    rows, h, _ = _drive(cfg, [1.0] * 30 + [1.0 if t % 2 else 4.0 for t in range(80)])
    assert rows[29]["gate_0"] == 0.5  # zero variance: no pull, nothing written
    assert all(g < 0.48 for g in h.gates)  # capacity shrinks when variance spikes
    assert h.dropout > 0.1 * 1.05


def test_l1_rises_when_the_loss_stabilises():
    cfg = only("progress", "variance", "leak")
    cfg.signals.warmup = 5
    falling = [10 * 0.97**t for t in range(100)]
    rows, h, _ = _drive(cfg, falling + [falling[-1]] * 300)
    during = rows[99]["l1"]
    assert during < 1e-2 * 0.8  # held down while the fit moves fast
    assert rows[-1]["l1"] > during * 1.2 and rows[-1]["l1"] == pytest.approx(1e-2, rel=0.05)
    ls = [r["l1"] for r in rows[130:]]  # once the trend filter has caught up with the stall
    assert all(b >= a for a, b in zip(ls, ls[1:], strict=False))  # rises monotonically


def test_per_block_gates_keep_their_own_prior_and_share_the_budget():
    cfg = only("progress", "leak")
    cfg.signals.warmup = 5
    h = _Holder(gates=(0.2, 0.5, 0.8))
    _, h, ctl = _drive(cfg, [10 * 0.98**t for t in range(60)], holder=h)
    gs = ctl.groups[0]
    assert gs.keys[-5:] == ["gate_0", "gate_1", "gate_2", "dropout", "l1"]
    m = dict(zip(gs.keys, gs.params.m.tolist(), strict=True))
    assert m["gate_0"] == pytest.approx(1 / 3) and m["dropout"] == 1.0 and m["alpha"] == 1.0
    # the same chart increment for each (shared signals), around different priors
    dz = [
        to_chart("gate", g) - to_chart("gate", g0)
        for g, g0 in zip(h.gates, (0.2, 0.5, 0.8), strict=True)
    ]
    assert dz[0] > 0 and dz == pytest.approx([dz[0]] * 3, rel=1e-9)


def test_adapt_false_leaves_a_kind_alone_and_bad_values_fail():
    cfg = only("progress", "leak")
    cfg.coefs.gate.adapt = False
    cfg.signals.warmup = 5
    _, h, ctl = _drive(cfg, [10 * 0.98**t for t in range(60)])
    assert h.gates == [0.5, 0.5, 0.5] and "gate_0" not in ctl.groups[0].keys
    with pytest.raises(ValueError, match="gate_0=1.0: outside the logit chart"):
        _drive(AEConfig(enabled=True), [1.0], holder=_Holder(gates=(1.0,)))
    h = _Holder()
    bad = h.coefficients()[:1]
    bad[0].kind = "alpha"
    with pytest.raises(ValueError, match="kind='alpha'; allowed: gate, dropout, l1"):
        AEControl(
            torch.optim.SGD([torch.nn.Parameter(torch.zeros(2))], lr=0.1),
            AEConfig(),
            model_coefficients=bad,
        )
    cfg = AEConfig()
    cfg.coefs.gate.hi = 1.0
    with pytest.raises(ValueError, match=r"ae.coefs.gate.lo/hi.*need 0 < lo < hi < 1"):
        validate(cfg)


def _gated_net(gates: list[float], with_ae: bool, steps: int = 25):
    torch.manual_seed(0)
    lin1, lin2 = torch.nn.Linear(6, 8), torch.nn.Linear(8, 1)
    h = _Holder(gates=gates)
    opt = torch.optim.AdamW([*lin1.parameters(), *lin2.parameters()], lr=1e-2)
    cfg = AEConfig(enabled=True)
    for name in law_names():
        setattr(cfg.laws, name, False)
    ctl = AEControl(opt, cfg, model_coefficients=h.coefficients()) if with_ae else None
    g = torch.Generator().manual_seed(1)
    for _ in range(steps):
        x = torch.randn(16, 6, generator=g)
        z = lin1(x)
        z = z + h.gates[0] * torch.tanh(z)
        loss = ((lin2(z) - x[:, :1]) ** 2).mean() + h.l1 * lin2.weight.abs().sum()
        opt.zero_grad()
        loss.backward()
        if ctl:
            ctl.before_step(loss.detach())
        opt.step()
    return [p.detach().clone() for p in [*lin1.parameters(), *lin2.parameters()]], h


def test_all_laws_off_with_model_coefficients_is_vanilla_bit_identical():
    ref, h_ref = _gated_net([0.5], with_ae=False)
    got, h = _gated_net([0.5], with_ae=True)
    assert all(torch.equal(a, b) for a, b in zip(ref, got, strict=True))
    assert (h.gates, h.dropout, h.l1) == (h_ref.gates, h_ref.dropout, h_ref.l1)
