"""Goals of the benchmarks and the one line each measured ratio is reported on.

Every benchmark prints, besides its own table, one line per goal::

    RATIO <name> <measured> <goal> <ok|MISS|FAIL>

``ok``: within the goal; ``MISS``: above it by at most :data:`SLACK` (20%: noise of a shared
machine); ``FAIL``: above it by more. :func:`finish` exits non-zero on any ``FAIL``, so a
performance regression is seen (``make bench``, ``benchmarks/run_all.py``); it is not part of
CI's pass/fail (timings on a shared machine are not a test).
"""

from __future__ import annotations

import sys

SLACK = 1.20

_results: list[tuple[str, float, float]] = []


def report(name: str, measured: float, goal: float) -> str:
    """Record and print one ratio against its goal (lower is better); returns the verdict."""
    verdict = "ok" if measured <= goal else ("MISS" if measured <= goal * SLACK else "FAIL")
    _results.append((name, measured, goal))
    print(f"RATIO {name} {measured:.4f} {goal:.4f} {verdict}", flush=True)
    return verdict


def finish() -> None:
    """Exit 1 when a ratio missed its goal by more than :data:`SLACK`."""
    failed = [name for name, m, g in _results if m > g * SLACK]
    if failed:
        print(f"goals missed by more than {SLACK - 1:.0%}: {', '.join(failed)}", file=sys.stderr)
        sys.exit(1)
