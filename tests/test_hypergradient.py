"""Hypergradient descent (baselines/hypergradient.py) against its update rule written out by
hand, and the direction its lr moves on a quadratic."""

from __future__ import annotations

import math

import pytest
import torch

from baselines.hypergradient import SGDHD, AdamHD


def _quadratic_run(opt_cls, theta0: list[float], curv: list[float], steps: int, **kw):  # noqa: ANN001, ANN202
    """f = 1/2 sum c_i theta_i^2; returns (alphas after each step, thetas after each step)."""
    p = torch.nn.Parameter(torch.tensor(theta0, dtype=torch.float64))
    c = torch.tensor(curv, dtype=torch.float64)
    opt = opt_cls([p], **kw)
    alphas, thetas = [], []
    for _ in range(steps):
        opt.zero_grad()
        (0.5 * (c * p * p).sum()).backward()
        opt.step()
        alphas.append(opt.param_groups[0]["hd_lr"])
        thetas.append(p.detach().clone().tolist())
    return alphas, thetas


def test_sgd_hd_matches_the_hand_computed_steps() -> None:
    """f = theta^2/2 from theta = 1, alpha_0 = 0.1, beta = 0.01, by hand:
    g1 = 1: alpha stays 0.1, theta = 0.9; g2 = 0.9: alpha = 0.1 + 0.01 * 0.9 * 1 = 0.109,
    theta = 0.9 - 0.109 * 0.9 = 0.8019; g3 = 0.8019: alpha = 0.109 + 0.01 * 0.8019 * 0.9 =
    0.1162171, theta = 0.8019 * (1 - 0.1162171) = 0.70870550751."""
    alphas, thetas = _quadratic_run(SGDHD, [1.0], [1.0], 3, lr=0.1, hypergrad_lr=0.01)
    assert alphas == pytest.approx([0.1, 0.109, 0.1162171], abs=1e-15)
    assert [t[0] for t in thetas] == pytest.approx([0.9, 0.8019, 0.70870550751], abs=1e-14)


def _reference(
    theta0: list[float],
    curv: list[float],
    steps: int,
    lr: float,
    beta: float,
    kind: str,
    mu: float = 0.0,
    nesterov: bool = False,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> tuple[list[float], list[float]]:
    """The paper's rules in plain Python floats, per coordinate (independent of torch)."""
    theta, alpha = list(theta0), lr
    prev = None
    m = [0.0] * len(theta)
    v = [0.0] * len(theta)
    buf = None
    alphas = []
    for t in range(1, steps + 1):
        g = [c * x for c, x in zip(curv, theta, strict=True)]
        if prev is not None:
            alpha += beta * sum(a * b for a, b in zip(g, prev, strict=True))
        if kind == "sgd":
            if mu > 0:
                buf = g if buf is None else [mu * b + gi for b, gi in zip(buf, g, strict=True)]
                d = [gi + mu * b for gi, b in zip(g, buf, strict=True)] if nesterov else list(buf)
            else:
                d = list(g)
        else:
            b1, b2 = betas
            m = [b1 * mi + (1 - b1) * gi for mi, gi in zip(m, g, strict=True)]
            v = [b2 * vi + (1 - b2) * gi * gi for vi, gi in zip(v, g, strict=True)]
            d = [
                (mi / (1 - b1**t)) / (math.sqrt(vi / (1 - b2**t)) + eps)
                for mi, vi in zip(m, v, strict=True)
            ]
        theta = [x - alpha * di for x, di in zip(theta, d, strict=True)]
        prev = d
        alphas.append(alpha)
    return alphas, theta


@pytest.mark.parametrize(
    "cls,kind,kw",
    [
        (SGDHD, "sgd", {}),
        (SGDHD, "sgd", {"momentum": 0.9}),
        (SGDHD, "sgd", {"momentum": 0.9, "nesterov": True}),
        (AdamHD, "adam", {}),
    ],
)
def test_update_rule_matches_the_reference_over_several_steps(cls, kind, kw) -> None:  # noqa: ANN001
    theta0, curv = [1.0, -2.0], [1.0, 4.0]
    beta = 0.01 if kind == "sgd" else 1e-3
    alphas, thetas = _quadratic_run(cls, theta0, curv, 6, lr=0.05, hypergrad_lr=beta, **kw)
    ref_alphas, ref_theta = _reference(
        theta0, curv, 6, 0.05, beta, kind, kw.get("momentum", 0.0), kw.get("nesterov", False)
    )
    assert alphas == pytest.approx(ref_alphas, rel=1e-12, abs=1e-15)
    assert thetas[-1] == pytest.approx(ref_theta, rel=1e-12, abs=1e-15)
    assert len(set(alphas)) > 1  # the rule did act


def test_adam_hd_second_step_by_hand() -> None:
    """Adam-HD, f = theta^2/2, theta = 1, alpha_0 = 0.1, beta = 0.01, eps = 1e-8: the first
    direction is d_1 = m_hat/(sqrt(v_hat)+eps) = 1/(1 + 1e-8), theta_1 = 1 - 0.1 d_1 = g_2, so
    alpha_2 = 0.1 + 0.01 g_2 d_1."""
    alphas, _ = _quadratic_run(AdamHD, [1.0], [1.0], 2, lr=0.1, hypergrad_lr=0.01)
    assert alphas[0] == 0.1
    d1 = 1 / (1 + 1e-8)
    assert alphas[1] == pytest.approx(0.1 + 0.01 * (1 - 0.1 * d1) * d1, abs=1e-15)


@pytest.mark.parametrize("cls,beta", [(SGDHD, 1e-3), (AdamHD, 1e-4)])
def test_lr_rises_when_too_small_and_falls_when_too_large(cls, beta) -> None:  # noqa: ANN001
    """On f = theta^2/2 (curvature 1; GD is stable below lr 2): from lr 1e-3 every step falls
    short, consecutive directions align and alpha rises at every step; from lr 1.9 (SGD) or 1.5
    (Adam with beta1 = 0, whose step is then about lr * sign(g)) every step overshoots the
    optimum, consecutive directions oppose and alpha falls at every step."""
    up, _ = _quadratic_run(cls, [1.0], [1.0], 20, lr=1e-3, hypergrad_lr=beta)
    assert up[0] == 1e-3 and all(b > a for a, b in zip(up, up[1:], strict=False))
    high, kw = (1.9, {}) if cls is SGDHD else (1.5, {"betas": (0.0, 0.999)})
    down, thetas = _quadratic_run(cls, [1.0], [1.0], 10, lr=high, hypergrad_lr=beta * 10, **kw)
    assert all(a * b < 0 for (a,), (b,) in zip(thetas, thetas[1:], strict=False))  # overshoots
    assert down[0] == high and all(b < a for a, b in zip(down, down[1:], strict=False))


def test_zero_hypergrad_lr_is_the_plain_optimizer() -> None:
    torch.manual_seed(0)
    x = torch.randn(5, dtype=torch.float64)
    for hd_cls, plain in ((SGDHD, torch.optim.SGD), (AdamHD, torch.optim.Adam)):
        a = torch.nn.Parameter(x.clone())
        b = torch.nn.Parameter(x.clone())
        kw = {"momentum": 0.9} if plain is torch.optim.SGD else {}
        oa = hd_cls([a], lr=0.01, hypergrad_lr=0.0, **kw)
        ob = plain([b], lr=0.01, **kw)
        for _ in range(5):
            for p, o in ((a, oa), (b, ob)):
                o.zero_grad()
                ((p**4).sum() + (p**2).sum()).backward()
                o.step()
        assert torch.allclose(a, b, rtol=1e-12, atol=1e-14)


def test_bad_arguments_raise() -> None:
    p = [torch.nn.Parameter(torch.zeros(1))]
    with pytest.raises(ValueError, match="hypergrad_lr"):
        SGDHD(p, hypergrad_lr=-1.0)
    with pytest.raises(ValueError, match="nesterov"):
        SGDHD(p, nesterov=True)
    with pytest.raises(ValueError, match="betas"):
        AdamHD(p, betas=(1.0, 0.9))
