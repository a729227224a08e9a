"""Recovery after a drift switch: the settling time of a phase onto its own asymptote.

Why not "back to the previous phase's level": that reference depends on which phase follows
which (a harder corruption after an easier one never gets back to the easier one's loss and
reads "never recovered"; an easier one after a harder one reads 0), so it scores the phase order,
not the optimizer. The reference here belongs to the phase itself.

Definition, for each switch (the first logged row of a new phase) and that phase's logged rows
``x_0, ..., x_{n-1}`` at steps ``s_0, ..., s_{n-1}``:

* **asymptote** ``A``: the median of the phase's last ``tail`` fraction of rows (at least 3),
  the level the phase settles to; or, when a ``reference`` level is given for the phase (the same
  phase's level in a stationary control run), that level.
* **smoothed curve** ``m``: the centred running median over ``2h + 1`` rows, the window shrinking
  symmetrically at the phase's ends, ``h = max(1, round(smooth * n))`` (1% of the phase by
  default: short against a recovery, so a 50-step recovery is not erased, as a window of a
  tenth of the run erased it; a median keeps a step's edge where it is).
* **noise** ``sigma``: ``1.4826 MAD(diff(x)) / sqrt 2``, the robust per-row noise std from first
  differences (insensitive to the switch's jump and to a slow trend); the running median's own std
  is ``sigma_m = 1.2533 sigma / sqrt(2h + 1)`` (the median of a Gaussian sample).
* **band** half-width ``w = max(band * D, z * sigma_m)`` with ``D = max_i |m_i - A|`` the
  disturbance depth: the control-engineering settling band (10% of the excursion by default),
  never narrower than the smoothed curve's own noise (``z`` = 3).
* **recovery time** ``s_i - s_0`` for the first row ``i`` from which ``m`` stays inside
  ``[A - w, A + w]`` for ``hold`` rows (``max(3, round(0.05 n))``, clipped to the phase): a curve
  that passes through the band (an overshoot) has not settled. 0 when there is nothing to
  recover (``D <= z sigma_m``: the switch moved the curve by less than its noise).
* **censored** (``inf``) when the settling row lies inside the tail the asymptote was read from
  (the phase was still moving at its end, so it has no asymptote of its own yet), when a
  ``reference`` is never reached, or when the phase has fewer than ``min_fraction`` of the
  complete phases' median length (a run that stopped, e.g. diverged, inside a phase is censored
  at the step it stopped). The restricted time ``min(t, phase length)`` is what the analysis
  averages (as for ``time_to_target``).

Precision: a curve that steps back is read to the row; one that approaches its band slowly is
read to about ``sigma_m / |slope|`` at the crossing (tests: recoveries of 50, 100 and 300 steps
are read back within 10% on step, linear and exponential shapes with 3% noise).

The settling time alone does not say *where* the phase settled (a run whose return collapsed
from 500 to 37 and stayed there settles fast), so each switch also reports its asymptote ``A``
in the curve's units (``levels``; :attr:`Recovery.level_score` is their scale-free summary,
higher = better): compare arms on both. The band is symmetric, so the reading does
not depend on whether the curve is a loss or a return.

Pure numpy (no torch), so the analysis installs without the training stack.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

#: settling band as a fraction of the disturbance depth
BAND = 0.10
#: the running median's half-width as a fraction of the phase's rows
SMOOTH = 0.01
#: the asymptote is the median of this last fraction of the phase's rows
TAIL = 0.20
#: the band is at least this many standard deviations of the smoothed curve
Z = 3.0
#: rows the smoothed curve must stay in the band, as a fraction of the phase's rows
HOLD = 0.05
#: a phase shorter than this fraction of the median complete phase is censored (run stopped)
MIN_FRACTION = 0.5


@dataclass(frozen=True)
class Recovery:
    """Recovery after the drift switches of one run (module doc of :mod:`analysis.recovery`)."""

    switches: int
    censored: int
    mean_restricted: float
    times: tuple[float, ...]  # per switch; inf where never settled (censored)
    levels: tuple[float, ...] = ()  # per switch: the phase's asymptote A (NaN if censored short)

    higher_is_better: bool = False

    @property
    def mean_level(self) -> float:
        finite = [v for v in self.levels if math.isfinite(v)]
        return float(np.mean(finite)) if finite else math.nan

    @property
    def level_score(self) -> float:
        """Where the phases settled, higher = better and scale-free: the mean over switches of
        ``log A`` (a return) or ``-log A`` (a loss); NaN unless every finite level is > 0. A
        difference of 0.1 between arms is a ~10% better settled level."""
        finite = [v for v in self.levels if math.isfinite(v)]
        if not finite or min(finite) <= 0:
            return math.nan
        sign = 1.0 if self.higher_is_better else -1.0
        return float(sign * np.mean(np.log(finite)))


def median(x: np.ndarray) -> float:
    """``np.median`` of a 1-D array, the same value without its per-call overhead (most of a
    recovery reading's cost, many thousands of small calls in a large sweep): the middle
    sorted value, or the mean of the two middle ones, summed from 0 as numpy's mean sums them; NaN
    for an empty array or one holding NaN."""
    s = np.sort(x, kind="quicksort")
    n = s.size
    if n == 0 or s[-1] != s[-1]:  # NaN sorts last
        return math.nan
    k = n // 2
    if n % 2:
        return float(0.0 + s[k])
    return float((0.0 + s[k - 1] + s[k]) / 2.0)


def running_median(x: np.ndarray, h: int) -> np.ndarray:
    """Centred running median over ``[i-k, i+k]``, ``k = min(h, i, n-1-i)``: the window shrinks
    symmetrically at the ends, so the curve's first row (the switch) keeps its value instead of
    being pulled toward the rows after it."""
    n = x.size
    x = x.astype(float)
    if h <= 0 or n < 3:
        return x
    if np.isfinite(x).all():
        # full windows in the interior (no padding needed); the ends are set below
        out = np.empty(n)
        if h == 1:  # the usual window (phases under 150 rows): the middle of three, as
            # np.median gives it (its mean of one value adds it to 0.0), without a sort
            a, b, c = x[:-2], x[1:-1], x[2:]
            out[1:-1] = 0.0 + np.maximum(np.minimum(a, b), np.minimum(np.maximum(a, b), c))
        elif n >= 2 * h + 1:
            windows = np.lib.stride_tricks.sliding_window_view(x, 2 * h + 1)
            out[h : n - h] = np.median(windows, axis=1)
    else:
        pad = np.concatenate([np.full(h, np.nan), x, np.full(h, np.nan)])
        out = np.nanmedian(np.lib.stride_tricks.sliding_window_view(pad, 2 * h + 1), axis=1)
    for i in range(min(h, n)):
        for j in (i, n - 1 - i):
            k = min(j, n - 1 - j)
            out[j] = median(x[j - k : j + k + 1])
    return out


def noise_std(x: np.ndarray) -> float:
    """Robust per-row noise std from first differences: ``1.4826 MAD(diff x) / sqrt 2``."""
    d = np.diff(x)
    if d.size < 2:
        return 0.0
    return float(1.4826 * median(np.abs(d - median(d))) / math.sqrt(2.0))


def settling(
    steps: np.ndarray,
    x: np.ndarray,
    reference: float | None = None,
    band: float = BAND,
    smooth: float = SMOOTH,
    tail: float = TAIL,
    z: float = Z,
    hold: float = HOLD,
) -> tuple[float, float]:
    """``(settling time, asymptote)`` of one phase (module doc); the time is ``inf`` if censored."""
    n = x.size
    if n == 0:
        return math.inf, math.nan
    n_tail = min(n, max(3, round(tail * n)))
    level = median(x[n - n_tail :]) if reference is None else float(reference)
    h = max(1, round(smooth * n))
    m = running_median(x, h)
    sigma_m = 1.2533 * noise_std(x) / math.sqrt(2 * h + 1)
    depth = float(np.max(np.abs(m - level)))
    if depth <= z * sigma_m:
        return 0.0, level
    width = max(band * depth, z * sigma_m)
    inside = np.abs(m - level) <= width
    k = min(n, max(3, round(hold * n)))
    # rows i where m stays inside for k rows (or to the phase's end, when fewer remain)
    outside_after = np.concatenate([np.cumsum((~inside)[::-1])[::-1], [0]])
    idx = np.arange(n)
    stop = np.minimum(idx + k, n)
    held = inside & (outside_after[idx] - outside_after[stop] == 0)
    hits = np.flatnonzero(held)
    last_allowed = n - 1 if reference is not None else n - n_tail
    if hits.size == 0 or hits[0] > last_allowed:
        return math.inf, level
    return float(steps[hits[0]] - steps[0]), level


def recovery(
    steps: np.ndarray,
    series: np.ndarray,
    phase: np.ndarray,
    references: Sequence[float] | None = None,
    higher_is_better: bool = False,
    **kwargs: float,
) -> Recovery:
    """Settling after each change of ``phase`` (module doc). ``references``: optional level per
    switch (the same phase's level in a stationary control run) replacing the own asymptote.
    ``higher_is_better`` orients :attr:`Recovery.level_score` only (the band is symmetric).
    ``kwargs`` override the constants of :func:`settling`; ``min_fraction`` the short-phase rule."""
    min_fraction = float(kwargs.pop("min_fraction", MIN_FRACTION))
    steps, series, phase = (np.asarray(a, float) for a in (steps, series, phase))
    keep = np.isfinite(series) & np.isfinite(phase)
    s, x, ph = steps[keep], series[keep], phase[keep]
    starts = np.flatnonzero(np.diff(ph) != 0) + 1
    if starts.size == 0:
        return Recovery(0, 0, math.nan, (), higher_is_better=higher_is_better)
    bounds = np.concatenate([starts, [x.size]])
    # a phase's length in steps: to the next switch; the last one to the last logged step + the
    # logging cadence (its rows cover [start, last + cadence))
    cadence = median(np.diff(s)) if s.size > 1 else 1.0
    ends = [s[b] if b < x.size else s[-1] + cadence for b in bounds[1:]]
    lengths = [float(e - s[b]) for b, e in zip(bounds[:-1], ends, strict=True)]
    # the complete phases: the one before the first switch and all but the last after it
    complete = [float(s[bounds[0]] - s[0]), *lengths[:-1]]
    typical = median(np.asarray(complete, float))
    times, restricted, levels = [], [], []
    for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
        ref = None if references is None else references[k]
        if lengths[k] < min_fraction * typical:
            t, level = math.inf, math.nan
        else:
            t, level = settling(s[lo:hi], x[lo:hi], ref, **kwargs)
        times.append(t)
        levels.append(level)
        restricted.append(min(t, lengths[k]))
    return Recovery(
        switches=len(times),
        censored=sum(not math.isfinite(t) for t in times),
        mean_restricted=float(np.mean(restricted)),
        times=tuple(times),
        levels=tuple(levels),
        higher_is_better=higher_is_better,
    )
