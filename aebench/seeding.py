"""Seed streams. Every random stream of a run derives from the run's seed alone.

That is what makes arms comparable (docs/records.md, "Pairing and fairness"): for a given seed the
initial weights (stream ``init``), the data (``data``) and the batch order (``order``) are the
same whatever optimizer, schedule or AE setting is chosen, because none of those is hashed in.
"""

from __future__ import annotations

import hashlib

import torch

STREAMS = ("global", "init", "data", "order", "noise")


def derive_seed(seed: int, stream: str) -> int:
    """A 63-bit seed for ``stream`` that depends only on ``(seed, stream)``, stable across runs."""
    digest = hashlib.sha256(f"aebench:{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def generator(seed: int, stream: str) -> torch.Generator:
    """A CPU ``torch.Generator`` seeded for ``stream``; independent of the global RNG."""
    return torch.Generator().manual_seed(derive_seed(seed, stream))


def tensor_hash(*tensors: torch.Tensor) -> str:
    """A short content hash of tensors (used to prove pairing in the run record)."""
    h = hashlib.sha256()
    for t in tensors:
        t = t.detach().cpu().contiguous()
        h.update(str(tuple(t.shape)).encode())
        h.update(str(t.dtype).encode())
        h.update(t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.float().numpy().tobytes())
    return h.hexdigest()[:16]
