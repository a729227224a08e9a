"""Helpers for the AE tests: small problems driven in a plain loop by AEControl."""

from __future__ import annotations

import torch

from aebench.ae.config import AEConfig, LawsConfig, law_names
from aebench.ae.controller import AEControl


def only(*names: str, cfg: AEConfig | None = None) -> AEConfig:
    """A config with exactly the named laws on (all others off)."""
    cfg = cfg or AEConfig(enabled=True)
    cfg.laws = LawsConfig(**{n: n in names for n in law_names()})
    return cfg


def regression(
    opt: str = "sgdm",
    cfg: AEConfig | None = None,
    steps: int = 100,
    scale: float = 1.0,
    seed: int = 0,
    lr: float | None = None,
    reward: bool = False,
) -> tuple[list[dict], torch.Tensor, AEControl]:
    """Minibatch linear regression (d=10, batch 32) with SGDm or AdamW under AEControl.

    Returns the logged rows (plus ``loss``), the final weights and the controller. ``cfg=None``
    runs the vanilla optimizer (no controller at all).
    """
    g = torch.Generator().manual_seed(seed)
    d = 10
    a = torch.randn(d, 1, generator=g)
    w = torch.nn.Parameter(torch.zeros(d, 1))
    if opt == "sgdm":
        optim = torch.optim.SGD([w], lr=lr or 0.05, momentum=0.9)
    elif opt == "adamw":
        optim = torch.optim.AdamW([w], lr=lr or 1e-2)
    else:
        optim = torch.optim.Adafactor([w], lr=lr or 1e-2)
    ctl = AEControl(optim, cfg, seed=seed) if cfg is not None else None
    rows = []
    for _ in range(steps):
        x = torch.randn(32, d, generator=g)
        y = x @ a + 0.1 * torch.randn(32, 1, generator=g)
        loss = scale * ((x @ w - y) ** 2).mean()
        optim.zero_grad()
        loss.backward()
        r = -loss.item() if reward else None
        row = ctl.before_step(loss.detach(), r) if ctl else {}
        optim.step()
        if ctl:
            ctl.after_step()
        row["loss"] = loss.item()
        rows.append(row)
    return rows, w.detach().clone(), ctl


def scripted(
    cfg: AEConfig, losses: list[float], grads: list[torch.Tensor] | torch.Tensor, opt: str = "sgdm"
) -> tuple[list[dict], AEControl]:
    """Feed a scripted sequence of losses and gradients to AEControl (no optimizer step), so a
    law's response to a chosen signal pattern can be read off the coefficients."""
    p = torch.nn.Parameter(torch.zeros(4))
    if opt == "sgdm":
        optim = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    else:
        optim = torch.optim.AdamW([p], lr=1e-2)
    ctl = AEControl(optim, cfg)
    rows = []
    for t, loss in enumerate(losses):
        grad = grads[t] if isinstance(grads, list) else grads
        p.grad = grad.clone()
        rows.append(ctl.before_step(torch.tensor(loss)))
    return rows, ctl
