"""The IDX file format of MNIST and Fashion-MNIST, read without dependencies.

Layout (LeCun's MNIST page; Fashion-MNIST uses it unchanged): a 4-byte magic number
``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32 sizes, then the data in C order.
Only type ``0x08`` (unsigned byte) occurs in these data sets, so the two magics accepted are
``0x00000801`` (labels, 1 dimension) and ``0x00000803`` (images, 3 dimensions: n, rows, cols).
A file may be gzip-compressed (recognised by its first two bytes ``1f 8b``, not by its name).

Every defect raises :class:`IdxError`, a :class:`~tasks.hf_data.DataUnavailable`, so the CLI
prints one line and writes nothing: a wrong magic number, a truncated header or body, trailing
bytes, a corrupt gzip stream.
"""

from __future__ import annotations

import gzip
import struct
import zlib
from pathlib import Path

import torch

from tasks.hf_data import DataUnavailable

GZIP_MAGIC = b"\x1f\x8b"
UBYTE = 0x08
#: magic number -> what it holds
MAGICS = {0x00000801: "labels", 0x00000803: "images"}


class IdxError(DataUnavailable):
    """An IDX file that cannot be read; the message names the file and the defect."""


def _raw_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if data[:2] != GZIP_MAGIC:
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        raise IdxError(f"{path}: corrupt or truncated gzip stream ({err})") from None


def read_idx(path: str | Path, expect: str | None = None) -> torch.Tensor:
    """The uint8 tensor stored in the IDX file ``path`` (plain or gzip).

    ``expect`` (``labels`` or ``images``) also checks the magic number is that kind's.
    """
    path = Path(path)
    data = _raw_bytes(path)
    if len(data) < 4:
        raise IdxError(f"{path}: truncated: {len(data)} bytes, shorter than the 4-byte magic")
    magic = struct.unpack(">I", data[:4])[0]
    kind = MAGICS.get(magic)
    if kind is None or data[2] != UBYTE:
        raise IdxError(
            f"{path}: magic number 0x{magic:08x} is not an IDX ubyte file "
            "(0x00000801 labels or 0x00000803 images)"
        )
    if expect is not None and kind != expect:
        raise IdxError(f"{path}: holds {kind} (magic 0x{magic:08x}), expected {expect}")
    ndim = data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IdxError(f"{path}: truncated header: {len(data)} bytes, needs {header}")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    size = 1
    for d in shape:
        size *= d
    body = len(data) - header
    if body != size:
        what = "truncated" if body < size else "trailing bytes"
        raise IdxError(
            f"{path}: {what}: the header's shape {tuple(shape)} needs {size} data bytes, "
            f"the file has {body}"
        )
    flat = torch.frombuffer(bytearray(data[header:]), dtype=torch.uint8)
    return flat.view(*shape) if shape else flat


def write_idx(path: str | Path, array: torch.Tensor, compress: bool | None = None) -> Path:
    """Write the uint8 ``array`` as an IDX file (gzip when ``compress``, or when ``compress``
    is None and the name ends in ``.gz``); the format's inverse of :func:`read_idx`."""
    path = Path(path)
    a = array.to(torch.uint8).contiguous()
    head = bytes((0, 0, UBYTE, a.dim())) + struct.pack(f">{a.dim()}I", *a.shape)
    blob = head + a.numpy().tobytes()
    if compress or (compress is None and path.suffix == ".gz"):
        blob = gzip.compress(blob, mtime=0)
    path.write_bytes(blob)
    return path
