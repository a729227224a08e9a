"""The controller's per-update tensor work in few passes over memory and one host transfer.

Per AE update the controller needs five reductions over a param group's gradients g (AE-1's
three dot products with the stored vector h and the preconditioned pair of the gauge,
:mod:`aebench.ae.bindings`)::

    ||g||^2, g.h, ||h||^2, ||P g||^2, <g, P g>

What an update costs on a CPU is passes over memory: the gradients, h and Adam's ``v`` come from
main memory after the backward pass (measured: ~30-50 us the first pass over the regression
MLP's 76k numbers, ~110-150 us over the tiny CNN's 94k, ~8 us each later pass over the same
buffer; docs/performance.md). So:

* g is flattened once (one ``cat``) and ``P g`` is built in a second transient buffer; the
  reductions are ``dot`` products on those (BLAS, one read each), and no number is brought to
  the host here: :func:`group_stats` returns a :class:`Reading` of 0-dim tensors on the
  gradients' device, read with everything else of the update by :func:`read_update` in one
  ``stack`` and one ``tolist``.
* rho's copy (``rho_buffer=copy``) is one flat buffer, :class:`GradCopy`, with a view per
  parameter (those views are the controller's ``GroupState.prev``): h needs no ``cat``, the copy
  of an update is one contiguous copy of the flattened g, and ``||h||^2`` is the previous
  update's ``||g||^2`` when h is that update's g (``ae.every=1``), not a pass.
* Adam's ``d = sqrt(v / bc) + eps`` is built as ``sqrt(v) + eps sqrt(bc)`` (= ``sqrt(bc) d``),
  one pass fewer, and the factors ``bc``, ``sqrt(bc)`` are applied to the two sums on the host.

The sums are the same quantities as the per-tensor path, summed in another order and, for Adam,
rounded differently: equal to the last bits in float64, to float32 rounding (~1e-7 relative)
for float32 gradients (``tests/ae/test_fast_path.py`` replays a gradient sequence through both).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch.optim import Optimizer

from aebench.ae.bindings import Binding


def _flat(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """The tensors flattened and concatenated (one copy pass)."""
    return torch.cat([t.reshape(-1) for t in tensors])


@dataclass
class Reading:
    """One param group's five statistics before the host read: ``parts[i] * factors[i]`` is
    entry i of ``[||g||^2, g.h, ||h||^2, ||P g||^2, <g, P g>]``; a part is a 0-dim tensor on the
    gradients' device or a Python float. ``flat_grad`` is the flattened g (rho's copy takes it
    after the read, :meth:`GradCopy.take`), ``params`` the parameters it belongs to."""

    parts: list[torch.Tensor | float]
    factors: tuple[float, ...]
    flat_grad: torch.Tensor | None = None
    params: Sequence[torch.Tensor] = ()
    #: the tensor parts, in order (what the host read brings over)
    tensors: list[torch.Tensor] = field(init=False)

    def __post_init__(self) -> None:
        self.tensors = [p for p in self.parts if isinstance(p, torch.Tensor)]

    def values(self, host: Iterator[float]) -> tuple[float, ...]:
        """The five statistics, taking the host values of the tensor parts from ``host``."""
        return tuple(
            (next(host) if isinstance(p, torch.Tensor) else p) * f
            for p, f in zip(self.parts, self.factors, strict=True)
        )

    def read(self) -> tuple[float, ...]:
        """The five statistics (one host transfer; the controller reads all at once instead)."""
        return self.values(iter(to_host(*self.tensors)))


class GradCopy:
    """rho's gradient copy (``rho_buffer=copy``): one flat buffer and a view per parameter.

    ``views`` (``id(p)`` -> view) is the dict the controller keeps as ``GroupState.prev``. Code
    that replaces or clears its entries (a device move, PBT's exploit) is noticed by
    :meth:`intact`; the controller then rebuilds the copy from what the dict holds. ``sq`` is
    ``||h||^2`` as a 0-dim device tensor when h is a flattened g whose ``||g||^2`` was measured
    (the copy of an ``ae.every=1`` update), else None.
    """

    def __init__(self, flat: torch.Tensor, params: Sequence[torch.Tensor], views: dict) -> None:
        self.flat = flat
        self.ids = tuple(id(p) for p in params)
        self._views = tuple(
            v.view(p.shape)
            for v, p in zip(flat.split([p.numel() for p in params]), params, strict=True)
        )
        views.update(zip(self.ids, self._views, strict=True))
        self.sq: torch.Tensor | None = None

    @classmethod
    def of(cls, tensors: Sequence[torch.Tensor], params: Sequence[torch.Tensor], views: dict):  # noqa: ANN206
        """A new copy holding ``tensors`` (one per parameter, flattened into a new buffer)."""
        return cls(_flat(tensors), params, views)

    def intact(self, params: Sequence[torch.Tensor], views: dict) -> bool:
        """True when ``views`` still maps these parameters, in this order, to this buffer."""
        # each id maps to its own view object: identity also checks the order
        return len(params) == len(self._views) and all(
            views.get(id(p)) is v for p, v in zip(params, self._views, strict=True)
        )

    def store(self, grads: Sequence[torch.Tensor]) -> None:
        """Copy the gradients in (one pass)."""
        torch.cat([g.reshape(-1) for g in grads], out=self.flat)
        self.sq = None

    def take(self, reading: Reading) -> None:
        """Copy an update's flattened g in (one contiguous pass; cheaper here than new views of
        the flattened g, ~1.5 us each); its ``||g||^2`` becomes ``||h||^2`` of the next
        update."""
        assert reading.flat_grad is not None
        self.flat.copy_(reading.flat_grad)
        self.sq = _first_tensor(reading)

    @classmethod
    def adopt(cls, reading: Reading, views: dict):  # noqa: ANN206
        """A new copy that keeps an update's flattened g as its buffer (the first update)."""
        assert reading.flat_grad is not None
        copy = cls(reading.flat_grad, reading.params, views)
        copy.sq = _first_tensor(reading)
        return copy


def _first_tensor(reading: Reading) -> torch.Tensor | None:
    """``||g||^2`` of a reading as a device tensor (None where it is a number)."""
    first = reading.parts[0]
    return first if isinstance(first, torch.Tensor) else None


def _adam_denominator(
    optimizer: Optimizer,
    group: dict,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    g: torch.Tensor,
) -> tuple[torch.Tensor, float]:
    """``(s d, s)``: Adam's ``d = sqrt(v_hat) + eps`` flattened, times a host factor s
    (``|g| + eps`` and s = 1 before the first step), with no host read of a device tensor."""
    eps = float(group["eps"])
    states = [optimizer.state.get(p) for p in params]
    if any(st is None or "exp_avg_sq" not in st for st in states):  # before the first step
        return g.abs().add_(eps), 1.0
    beta2 = float(group["betas"][1])
    d = _flat([st["exp_avg_sq"] for st in states])
    counters = [st["step"] for st in states]
    first = counters[0]
    if isinstance(first, torch.Tensor) and first.device.type != "cpu":
        # fused or capturable Adam keeps its counters on the device: stay there
        t = torch.stack([c.double().reshape(()) for c in counters])
        bc = torch.where(t > 0, 1.0 - torch.pow(beta2, t), torch.ones_like(t))
        numels = torch.tensor([x.numel() for x in grads], device=d.device)
        d.div_(bc.to(d.device).repeat_interleave(numels))
        return d.sqrt_().add_(eps), 1.0
    steps = [float(c) for c in counters]  # host-side counters (torch's default)
    if any(t != steps[0] for t in steps):
        bcs = [1.0 - beta2**t if t > 0 else 1.0 for t in steps]
        torch._foreach_div_(list(d.split([x.numel() for x in grads])), bcs)
        return d.sqrt_().add_(eps), 1.0
    # sqrt(v / bc) + eps = (sqrt(v) + eps sqrt(bc)) / sqrt(bc): one pass fewer
    s = math.sqrt(1.0 - beta2 ** steps[0]) if steps[0] > 0 else 1.0
    return d.sqrt_().add_(eps * s), s


def group_stats(
    binding: Binding,
    optimizer: Optimizer,
    group: dict,
    params: Sequence[torch.Tensor],
    grads: Sequence[torch.Tensor],
    prevs: Sequence[torch.Tensor] | torch.Tensor | None,
    scale: float = 1.0,
    prev_sq: torch.Tensor | None = None,
    gpg: bool = True,
) -> Reading:
    """The :class:`Reading` of ``[||g||^2, g.h, ||h||^2, ||P g||^2, <g, P g>]`` of one param
    group, with no host synchronisation.

    ``prevs`` is h: per parameter (the momentum buffers) or flat (rho's :class:`GradCopy`),
    None when there is none (then ``g.h = ||h||^2 = 0``); ``prev_sq``, when given, is
    ``||h||^2`` already measured. ``scale`` brings h to gradient units (the momentum buffer's
    factor; 1 for the copy), so the second and third entries are ``scale g.h`` and
    ``scale^2 ||h||^2``. ``gpg=False``: ``<g, P g>`` is not needed (it feeds only the gauge's
    relative signal) and Adam's is not summed (reads 0). P is the family's preconditioner as in
    :meth:`Binding.precond`: identity for SGD, ``1 / (sqrt(v_hat) + eps)`` for Adam,
    ``1 / RMS(g)`` per tensor for Adafactor; other bindings use their own ``precond``.
    """
    if not grads:
        return Reading([0.0] * 5, (1.0,) * 5)
    family = binding.family
    g = _flat(grads)
    gg = g.dot(g)
    parts: list[torch.Tensor | float] = [gg]
    if prevs is None:
        parts += [0.0, 0.0]
    else:
        h = prevs if isinstance(prevs, torch.Tensor) else _flat(prevs)
        parts += [g.dot(h), h.dot(h) if prev_sq is None else prev_sq]
    mult = (1.0, scale, scale * scale)
    if family == "adam":
        d, s = _adam_denominator(optimizer, group, params, grads, g)
        w = torch.div(g, d, out=d)  # P g / s, in d's buffer
        return Reading([*parts, w.dot(w), w.dot(g) if gpg else 0.0], (*mult, s * s, s), g, params)
    if family == "sgd":
        return Reading([*parts, gg, gg], (*mult, 1.0, 1.0), g, params)
    if family == "adafactor":
        # P g = g / RMS(g) per tensor: ||P g||^2 = numel, <g, P g> = sum ||g_i|| sqrt(numel_i)
        norms = torch.stack(torch._foreach_norm(list(grads))).double()
        roots = torch.tensor(
            [math.sqrt(x.numel()) for x in grads], dtype=torch.float64, device=norms.device
        )
        pre = [float(g.numel()), (norms * roots).sum()]
    else:
        pair = binding.precond(optimizer, group, list(params), list(grads))
        pre = [pair[0], pair[1]]
    return Reading([*parts, *pre], (*mult, 1.0, 1.0), g, params)


def to_host(*values: torch.Tensor | float | None) -> list[float]:
    """Bring scalars and 1-D tensors over in one transfer (one ``stack`` or ``cat`` and one
    ``tolist``), flattened in order; dtypes promote (exactly: float32 to float64, ...).

    Tensors may live on different devices only if they are on the CPU already; ``None`` and
    Python numbers pass through (as their float)."""
    tensors = [v for v in values if isinstance(v, torch.Tensor)]
    if not tensors:
        return [float(v) for v in values if v is not None]
    scalars = all(t.dim() == 0 for t in tensors)
    try:
        joined = torch.stack(tensors) if scalars else torch.cat([t.reshape(-1) for t in tensors])
    except RuntimeError:  # on several devices: bring the CPU ones to the first one's
        dev = tensors[0].device
        joined = torch.cat([t.to(dev).reshape(-1) for t in tensors])
    flat = iter(joined.tolist())
    if scalars:
        return [
            float(next(flat)) if isinstance(v, torch.Tensor) else float(v)
            for v in values
            if v is not None
        ]
    out: list[float] = []
    for v in values:
        if isinstance(v, torch.Tensor):
            out.extend(float(next(flat)) for _ in range(v.numel()))
        elif v is not None:
            out.append(float(v))
    return out


def read_update(
    pending: Sequence[tuple[Any, Any]],
    loss: Any,
    reward: Any,
    measured: Sequence[Reading | Sequence[float] | None],
) -> tuple[list[tuple[float, float | None]], list[tuple[float, ...] | None]]:
    """Everything one AE update needs from the device, in one transfer.

    ``pending``: the ``(loss, reward)`` pairs of the steps since the last update (the loss
    filters take them in order at this update, so the steps between updates read nothing);
    ``loss``, ``reward``: this step's (0-dim tensors or numbers; reward may be None);
    ``measured``: per param group its :class:`Reading` (or a tuple of floats, or None without
    gradients). Returns the pairs as floats (pending first, this step's last) and the
    per-group statistics as tuples (None kept).
    """
    pairs = [*pending, (loss, reward)]
    values: list[Any] = []
    for lo, re in pairs:
        values.append(lo)
        if re is not None:
            values.append(re)
    for m in measured:
        if isinstance(m, Reading):
            values += m.tensors
    host = iter(to_host(*values))
    out_pairs = [(next(host), None if re is None else next(host)) for _, re in pairs]
    stats: list[tuple[float, ...] | None] = []
    for m in measured:
        if m is None:
            stats.append(None)
        elif isinstance(m, Reading):
            stats.append(m.values(host))
        else:
            stats.append(tuple(float(x) for x in m))
    return out_pairs, stats
