"""The controller's per-update tensor work in few, large passes and one host transfer.

Per AE update the controller needs five reductions over a param group's gradients (AE-1's three
dot products and the preconditioned pair of the gauge, :mod:`aebench.ae.bindings`)::

    ||g||^2, g.h, ||h||^2, ||P g||^2, <g, P g>

Here g, h (and Adam's ``v``) are each flattened once into a transient buffer (one ``cat``),
``P g`` is built in place in v's buffer, and the five numbers are five ``dot`` products (BLAS,
one read pass each) stacked on the device: about 14 kernels instead of ~40 (foreach norms,
a product-sum per tensor, a preconditioner pass). On the project's CPU this measured 123 us
against 206 us for AdamW on the 76k-parameter regression MLP (docs/performance.md); the
transient buffers are freed after the update, nothing is kept between updates (the persistent
state stays rho's copy), and
nothing synchronises with the device: :func:`group_stats` returns a float64 tensor on the
gradients' device, and the caller brings everything it needs over in one ``tolist``
(:func:`to_host`).

The sums are the same quantities as the per-tensor path, summed in another order: equal to the
last bits in float64, to float32 rounding (~1e-7 relative) for float32 gradients
(``tests/ae/test_fast_path.py`` replays a gradient sequence through both).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch.optim import Optimizer

from aebench.ae.bindings import Binding


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The tensors flattened and concatenated (one copy pass)."""
    return torch.cat([t.reshape(-1) for t in tensors])


def _adam_denominator(
    optimizer: Optimizer,
    group: dict,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    g: torch.Tensor,
) -> torch.Tensor:
    """Adam's ``d = sqrt(v_hat) + eps`` flattened (``|g| + eps`` before the first step), with
    no host read of a device tensor."""
    eps = float(group["eps"])
    states = [optimizer.state.get(p, {}) for p in params]
    if any("exp_avg_sq" not in st for st in states):  # before the first step: v_hat = g^2
        return g.abs().add_(eps)
    beta2 = float(group["betas"][1])
    d = _flat([st["exp_avg_sq"] for st in states])
    counters = [st["step"] for st in states]
    if any(isinstance(c, torch.Tensor) and c.device.type != "cpu" for c in counters):
        # fused or capturable Adam keeps its counters on the device: stay there
        t = torch.stack([c.double().reshape(()) for c in counters])
        bc = torch.where(t > 0, 1.0 - torch.pow(beta2, t), torch.ones_like(t))
        numels = torch.tensor([x.numel() for x in grads], device=d.device)
        d.div_(bc.to(d.device).repeat_interleave(numels))
    else:
        steps = [float(c) for c in counters]  # host-side counters (torch's default)
        if len(set(steps)) == 1:
            d.div_(1.0 - beta2 ** steps[0] if steps[0] > 0 else 1.0)
        else:
            bcs = [1.0 - beta2**t if t > 0 else 1.0 for t in steps]
            torch._foreach_div_(list(d.split([x.numel() for x in grads])), bcs)
    return d.sqrt_().add_(eps)


def group_stats(
    binding: Binding,
    optimizer: Optimizer,
    group: dict,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    prevs: Sequence[torch.Tensor] | None,
    scale: float = 1.0,
) -> torch.Tensor:
    """``[||g||^2, g.h, ||h||^2, ||P g||^2, <g, P g>]`` of one param group, float64, on the
    gradients' device, with no host synchronisation.

    ``prevs`` is h per parameter (rho's copy or the momentum buffers), None when there is none
    (then ``g.h = ||h||^2 = 0``); ``scale`` brings h to gradient units (the momentum buffer's
    factor; 1 for the copy), so the second and third entries are ``scale g.h`` and
    ``scale^2 ||h||^2``. P is the family's preconditioner as in :meth:`Binding.precond`:
    identity for SGD, ``1 / (sqrt(v_hat) + eps)`` for Adam, ``1 / RMS(g)`` per tensor for
    Adafactor; other bindings use their own ``precond``.
    """
    if not grads:
        return torch.zeros(5, dtype=torch.float64)
    family = binding.family
    g = _flat(grads)
    parts = [g.dot(g)]
    if prevs is not None:
        h = _flat(prevs)
        parts += [g.dot(h), h.dot(h)]
    else:
        parts += [torch.zeros((), dtype=g.dtype, device=g.device)] * 2
    if family == "adam":
        d = _adam_denominator(optimizer, group, params, grads, g)
        w = torch.div(g, d, out=d)  # P g, in d's buffer
        parts += [w.dot(w), w.dot(g)]
    elif family == "sgd":
        parts += [parts[0], parts[0]]
    if family in ("adam", "sgd"):
        return _scaled(torch.stack(parts).double(), scale)
    if family == "adafactor":
        # P g = g / RMS(g) per tensor: ||P g||^2 = numel, <g, P g> = sum ||g_i|| sqrt(numel_i)
        norms = torch.stack(torch._foreach_norm(list(grads))).double()
        roots = torch.tensor(
            [math.sqrt(x.numel()) for x in grads], dtype=torch.float64, device=norms.device
        )
        pre = torch.stack([norms.new_tensor(float(g.numel())), (norms * roots).sum()])
    else:
        pre = binding.precond(optimizer, group, list(params), list(grads))
    stats = torch.stack(parts).double()
    return _scaled(torch.cat([stats, pre.to(device=stats.device, dtype=torch.float64)]), scale)


def _scaled(stats: torch.Tensor, scale: float) -> torch.Tensor:
    """h's entries brought to gradient units in float64 (``scale g.h``, ``scale^2 ||h||^2``)."""
    if scale == 1.0:
        return stats
    mult = torch.tensor([1.0, scale, scale * scale, 1.0, 1.0], dtype=torch.float64)
    return stats * mult.to(stats.device)


def to_host(*values: torch.Tensor | float | None) -> list[float]:
    """Bring scalars and 1-D tensors over in one transfer (one ``tolist``), flattened in order.

    Tensors may live on different devices only if they are on the CPU already; ``None`` and
    Python numbers pass through (as their float)."""
    tensors = [v.detach().reshape(-1).double() for v in values if isinstance(v, torch.Tensor)]
    flat = iter(torch.cat([t.to(tensors[0].device) for t in tensors]).tolist() if tensors else ())
    out: list[float] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.extend(next(flat) for _ in range(v.numel()))
        elif v is not None:
            out.append(float(v))
    return out


def read_update(
    pending: Sequence[tuple[Any, Any]],
    loss: Any,
    reward: Any,
    measured: Sequence[torch.Tensor | Sequence[float] | None],
) -> tuple[list[tuple[float, float | None]], list[tuple[float, ...] | None]]:
    """Everything one AE update needs from the device, in one transfer.

    ``pending``: the ``(loss, reward)`` pairs of the steps since the last update (the loss
    filters take them in order at this update, so the steps between updates read nothing);
    ``loss``, ``reward``: this step's (tensors or numbers; reward may be None); ``measured``: per
    param group the :func:`group_stats` tensor (or a tuple of floats, or None without
    gradients). Returns the pairs as floats (pending first, this step's last) and the per-group
    statistics as tuples (None kept).
    """
    pairs = [*pending, (loss, reward)]
    values: list[Any] = []
    for lo, re in pairs:
        values += [lo, re]
    values += [m if isinstance(m, torch.Tensor) else None for m in measured]
    host = iter(to_host(*values))
    out_pairs = [(next(host), None if re is None else next(host)) for _, re in pairs]
    stats: list[tuple[float, ...] | None] = []
    for m in measured:
        if m is None:
            stats.append(None)
        elif isinstance(m, torch.Tensor):
            stats.append(tuple(next(host) for _ in range(m.numel())))
        else:
            stats.append(tuple(float(x) for x in m))
    return out_pairs, stats
