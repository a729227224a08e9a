"""Read a run's ``curves.csv`` (docs/records.md) into float arrays, one per column.

Blank cells (a column not logged at that step) and ``nan`` become NaN; ``inf``/``-inf`` are
kept. Parsing uses pandas' C parser. Its fixed cost per call (~1-2 ms) would dominate a large
sweep of small files, so :func:`read_many` parses files in batches: the files of a batch that
share a header line are concatenated and parsed in one call (~0.3 ms a file, reading included,
for 100-row files), then split by row counts. A batch that fails to parse is re-read file by
file, so one bad file is reported alone.
"""

from __future__ import annotations

import io
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd


@dataclass(frozen=True)
class Curves:
    """The columns of one ``curves.csv``: ``step`` first, sorted by step, all float64."""

    columns: dict[str, np.ndarray]

    @property
    def steps(self) -> np.ndarray:
        return self.columns["step"]

    def get(self, name: str) -> np.ndarray | None:
        return self.columns.get(name)

    def names(self) -> list[str]:
        return list(self.columns)

    def __len__(self) -> int:
        return len(self.columns["step"])


#: files parsed together at most (bounds the memory of one batch)
BATCH = 1000


def _finish(columns: dict[str, np.ndarray]) -> Curves:
    """Check the step column and sort rows by step."""
    if "step" not in columns:
        raise ValueError("no 'step' column")
    steps = columns["step"]
    if np.isnan(steps).any():
        raise ValueError("a row without a step")
    if steps.size > 1 and (np.diff(steps) < 0).any():
        order = np.argsort(steps, kind="stable")
        columns = {k: v[order] for k, v in columns.items()}
    return Curves(columns)


def _parse_group(header: str, bodies: list[str], counts: list[int]) -> list[Curves]:
    """Parse the bodies of files that share ``header`` in one call; ValueError if any fails."""
    text = header + "\n" + "".join(bodies)
    try:
        frame = pd.read_csv(io.StringIO(text), engine="c", dtype=float)
    except (pd.errors.ParserError, TypeError) as err:
        raise ValueError(str(err)) from err
    names = [str(c) for c in frame.columns]
    if len(set(names)) != len(names) or frame.shape[0] != sum(counts):
        raise ValueError("ragged batch")
    # one column per row (pandas keeps a float frame column-major, so usually no copy): each
    # file's columns are then contiguous slices, not copies
    cols = np.ascontiguousarray(frame.to_numpy(dtype=float).T)
    out, start = [], 0
    for n in counts:
        out.append(_finish({name: cols[j, start : start + n] for j, name in enumerate(names)}))
        start += n
    return out


def read_many(paths: Sequence[str | Path]) -> Iterator[tuple[int, Curves | Exception]]:
    """``(index, Curves or the error)`` for each path, in batches (module doc). Errors are the
    ``OSError``/``ValueError`` that :func:`read_curves` would raise for that file."""
    for lo in range(0, len(paths), BATCH):
        groups: dict[str, list[tuple[int, str, int]]] = {}
        for i in range(lo, min(lo + BATCH, len(paths))):
            try:
                with open(paths[i]) as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as err:
                yield i, (err if isinstance(err, OSError) else ValueError(str(err)))
                continue
            head, sep, body = text.partition("\n")
            if not sep or not head.strip():
                yield i, ValueError("empty file")
                continue
            if body and not body.endswith("\n"):
                body += "\n"
            groups.setdefault(head.rstrip("\r"), []).append((i, body, body.count("\n")))
        for header, items in groups.items():
            try:
                parsed = _parse_group(header, [b for _, b, _ in items], [n for _, _, n in items])
            except ValueError:
                for i, _, _ in items:  # one file is bad: find it
                    try:
                        yield i, read_curves(paths[i])
                    except (OSError, ValueError) as err:
                        yield i, err
                continue
            for (i, _, _), curves in zip(items, parsed, strict=True):
                yield i, curves


def read_curves(path: str | Path) -> Curves:
    """The curves at ``path``; ValueError when the file has no ``step`` column or a cell that is
    not a number, OSError when it cannot be read."""
    try:
        frame = pd.read_csv(path, engine="c")
    except pd.errors.EmptyDataError as err:
        raise ValueError("empty file") from err
    except pd.errors.ParserError as err:
        raise ValueError(str(err).strip().splitlines()[0]) from err
    columns: dict[str, np.ndarray] = {}
    for name in frame.columns:
        col = frame[name]
        if col.dtype.kind not in "fiu":
            numeric = pd.to_numeric(col, errors="coerce")
            if (numeric.isna() & col.notna()).any():
                raise ValueError(f"column {name!r} holds a value that is not a number")
            col = numeric
        columns[str(name)] = col.to_numpy(dtype=float)
    return _finish(columns)
