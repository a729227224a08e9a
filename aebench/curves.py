"""The run's curves: rows keyed by step, columns added by whoever logs (recorder, AE, swarm)."""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Callable

from aebench.record import atomic_write_text


class CurveBuffer:
    """Rows of ``curves.csv`` held in memory and written atomically.

    ``log(step, **values)`` merges values into the row of ``step`` (several callbacks can add
    columns to one step). Columns appear in the order they were first logged, ``step`` first.
    ``sinks`` receive each logged dict as well (e.g. a W&B logger).
    """

    def __init__(self, first_columns: tuple[str, ...] = ()) -> None:
        self.rows: dict[int, dict[str, float]] = {}
        self.columns: list[str] = ["step", *first_columns]
        self.sinks: list[Callable[[int, dict[str, float]], None]] = []

    def log(self, step: int, **values: float) -> None:
        row = self.rows.setdefault(step, {})
        for name, value in values.items():
            if name not in row and name not in self.columns:
                self.columns.append(name)
            row[name] = float(value)
        for sink in self.sinks:
            sink(step, values)

    def column(self, name: str) -> list[tuple[int, float]]:
        return [(s, r[name]) for s, r in sorted(self.rows.items()) if name in r]

    def to_csv(self) -> str:
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(self.columns)
        for step in sorted(self.rows):
            row = self.rows[step]
            writer.writerow([step] + [_fmt(row.get(c)) for c in self.columns[1:]])
        return out.getvalue()

    def write(self, path: str) -> None:
        atomic_write_text(path, self.to_csv())


def _fmt(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return repr(value)
