"""The functional inner loop (aebench/meta/inner.py) mirrors the controller (aebench/ae/): the same
regression stream through ``AEControl`` on a torch optimizer and through ``inner_step`` gives the
same coefficients step by step, to rounding. Everything the inner loop leaves out by design is
switched off on both sides: the noise law (AE-4), the reward term, and the hard budget clip (the
inner loop's soft clip replaces it); the gauge calibrates after a short delay and window so that
it acts within the run."""

from __future__ import annotations

import math

import pytest
import torch

from aebench.ae.config import AEConfig
from aebench.ae.controller import AEControl
from aebench.meta.gains import all_gains
from aebench.meta.inner import OptSpec, coefficients, init_state, inner_step

STEPS, D = 120, 10
F64 = torch.float64


def _cfg(follow_shrink: bool = False) -> AEConfig:
    cfg = AEConfig()
    cfg.enabled = True
    cfg.laws.noise = False
    cfg.laws.reward = False
    cfg.budget.clip = 0.0
    cfg.gauge.delay = 20
    cfg.gauge.warmup = 20
    if follow_shrink:  # AE-5 shrinks alpha often (50x over the run, inside its box)
        cfg.gauge.follow_shrink = True
        cfg.resonance.v_max = 0.3
    return cfg


class _Linear(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(D, 1, dtype=F64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.w


def _stream() -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(D, 1, generator=g, dtype=F64)
    xs = [torch.randn(32, D, generator=g, dtype=F64) for _ in range(STEPS)]
    return xs, [x @ a + 0.1 * torch.randn(32, 1, generator=g, dtype=F64) for x in xs]


def _controller(opt: str, lr: float, follow: bool) -> list[tuple[float, ...]]:
    xs, ys = _stream()
    model = _Linear()
    if opt == "sgdm":
        optim = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    else:
        optim = torch.optim.Adam(model.parameters(), lr=lr)
    ctl = AEControl(optim, _cfg(follow), seed=0)
    out = []
    for x, y in zip(xs, ys, strict=True):
        loss = ((model(x) - y) ** 2).mean()
        optim.zero_grad()
        loss.backward()
        ctl.before_step(loss.detach())
        optim.step()
        ctl.after_step()
        g = optim.param_groups[0]
        out.append((g["lr"], g["momentum"]) if opt == "sgdm" else (g["lr"], *g["betas"], g["eps"]))
    return out


def _inner(opt: str, lr: float, follow: bool) -> tuple[list[tuple[float, ...]], dict]:
    xs, ys = _stream()
    cfg = _cfg(follow)
    spec = OptSpec(opt, lr=lr)
    gains = all_gains(cfg, spec.kinds, {})
    st = init_state({"w": torch.zeros(D, 1, dtype=F64)}, spec, cfg)

    def loss_fn(f, theta, t):  # noqa: ANN001, ANN202
        return ((f(theta, xs[t]) - ys[t]) ** 2).mean()

    out = []
    for _ in range(STEPS):
        st, _ = inner_step(st, _Linear(), loss_fn, gains, spec, cfg, create_graph=False)
        c = coefficients(st, spec.kinds)
        out.append(tuple(float(c[k]) for k in spec.kinds))
    return out, st


def _chart(kind_index: int, v: float) -> float:
    return math.log(v) if kind_index in (0, 3) else -math.log1p(-v)  # lr, eps | betas


@pytest.mark.parametrize(
    ("opt", "lr", "follow"), [("sgdm", 0.05, False), ("adam", 0.01, False), ("sgdm", 0.05, True)]
)
def test_inner_loop_matches_the_controller(opt: str, lr: float, follow: bool) -> None:
    ctl = _controller(opt, lr, follow)
    inner, st = _inner(opt, lr, follow)
    worst = max(
        abs(_chart(i, a) - _chart(i, b))
        for ra, rb in zip(ctl, inner, strict=True)
        for i, (a, b) in enumerate(zip(ra, rb, strict=True))
    )
    assert worst < 1e-9, worst
    assert abs(math.log(ctl[-1][0] / lr)) > 1e-3  # the laws moved the lr: a real comparison
    if opt == "sgdm":
        assert st["qstar"] is not None  # the gauge calibrated and acted in the run
    if follow:
        assert st["shrink_log"] > 0.1  # the target followed the shrink
