"""One forest plot per prediction: each stratum's effect with the interval its test inverts,
the prediction's threshold as a dashed line, the marker coloured by the verdict.

``verdict_<prediction>.png`` in the figures folder. A stratum without an effect (too few runs,
no pairs) is drawn as an empty row labelled with its verdict, so the figure shows every stratum
the report lists. Imported only when figures are drawn (matplotlib's Agg backend).
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import pandas as pd

from analysis.figures import _plt, close, drawing, slug

#: marker colours by verdict (colour-blind safe: Okabe-Ito)
VERDICT_COLOURS = {
    "supported": "#009E73",
    "refuted": "#D55E00",
    "inconclusive": "#999999",
}


def _finite(value: object) -> float | None:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _test_rows(evidence: pd.DataFrame, prediction: str) -> pd.DataFrame:
    rows = evidence[evidence["prediction"] == prediction]
    if "role" in rows.columns:
        tests = rows[rows["role"] == "test"]
        rows = tests if not tests.empty else rows
    return rows.reset_index(drop=True)


#: font size of the row and stratum labels, and the width (in characters) they wrap at
LABEL_SIZE = 7
WRAP = 48
#: figure width and the average glyph width of the label font, in em (DejaVu Sans, the
#: default font): the left margin is sized from the longest label instead of by
#: ``tight_layout``, whose extra layout passes were a third of a forest plot's cost
WIDTH_IN = 10.0
EM_PER_CHAR = 0.6


def _layout(rows: pd.DataFrame) -> tuple[list[float], list[tuple[float, str]], int, str]:
    """Where everything goes, top to bottom: the y of each row; ``(y, text)`` of each stratum
    header (the rows of one stratum, its data source and stratum fields, listed under one
    header line naming it); the number of lines used; and what every stratum shares (its
    data source and the ``field=value`` parts common to all, said once in the title and left
    out of the headers; empty with a single stratum)."""
    ys: list[float] = []
    groups: list[tuple[int, str, str]] = []
    line, previous = 0, None
    for _, row in rows.iterrows():
        where = (str(row.get("data_source", "")), str(row.get("stratum", "")))
        if where != previous:
            groups.append((-line, *where))
            line += 1
            previous = where
        ys.append(-line)
        line += 1
    parts = [stratum.split(" ") for _, _, stratum in groups]
    sources = {ds for _, ds, _ in groups}
    shared, common = "", set()
    if len(groups) > 1 and len(sources) == 1:
        common = {p for p in set.intersection(*(set(p) for p in parts)) if "=" in p}
        shared = " ".join([next(iter(sources)), *[p for p in parts[0] if p in common]])
    headers = []
    for (y, ds, _), fields in zip(groups, parts, strict=True):
        kept = " ".join(p for p in fields if p not in common)
        headers.append((y, kept if shared else f"{ds}: {kept}"))
    return ys, headers, line, shared


@drawing
def verdict_figure(evidence: pd.DataFrame, prediction: str, out: Path) -> Path | None:
    """Draw the forest plot of ``prediction``'s test rows into ``out``; None if it has none."""
    from matplotlib.collections import LineCollection

    rows = _test_rows(evidence, prediction)
    if rows.empty:
        return None
    plt = _plt()
    ys, headers, lines, shared = _layout(rows)
    # one line per row and per stratum header; compact lines once there are many
    per_line = 0.45 if lines <= 24 else 0.3
    height = 1.2 + per_line * lines + (0.2 if shared else 0.0)
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    labels, bounded, ticks, dots, unbounded = [], [], [], {}, []
    for (_, row), y in zip(rows.iterrows(), ys, strict=True):
        outcome = str(row.get("outcome", "inconclusive"))
        colour = VERDICT_COLOURS.get(outcome, "#999999")
        effect = _finite(row.get("effect"))
        low, high = _finite(row.get("ci_low")), _finite(row.get("ci_high"))
        if low is not None and high is not None:
            bounded.append(([(low, y), (high, y)], colour))
        else:  # an unbounded side (too few pairs for the level): dotted to the axis edge
            unbounded.append((y, colour, low, high, effect))
        if effect is not None:
            dots.setdefault(colour, []).append((effect, y))
        else:
            ax.text(
                0.02,
                y,
                f"{outcome}: no estimate",
                va="center",
                fontsize=8,
                color=colour,
                transform=ax.get_yaxis_transform(),
            )
        threshold = _finite(row.get("threshold"))
        if threshold is not None:
            ticks.append([(threshold, y - 0.35), (threshold, y + 0.35)])
        labels.append(
            textwrap.fill(
                f"{row.get('metric', '')} ({row.get('effect_kind', '')}, {outcome})", WRAP
            )
        )
    if bounded:
        ax.add_collection(
            LineCollection([s for s, _ in bounded], colors=[c for _, c in bounded], lw=2.0)
        )
    if ticks:
        ax.add_collection(LineCollection(ticks, colors="k", linestyles="--", lw=1.0))
    for colour, points in dots.items():
        ax.plot([x for x, _ in points], [y for _, y in points], "o", color=colour, ms=7)
    ax.autoscale_view()
    left, right = ax.get_xlim()
    dotted = []
    for y, colour, low, high, effect in unbounded:
        anchor = next((v for v in (low, high, effect) if v is not None), None)
        if anchor is not None:
            dotted.append(
                (
                    [
                        (low if low is not None else left, y),
                        (high if high is not None else right, y),
                    ],
                    colour,
                )
            )
    if dotted:
        ax.add_collection(
            LineCollection(
                [s for s, _ in dotted], colors=[c for _, c in dotted], lw=1.5, linestyles=":"
            ),
            autolim=False,
        )
    ax.set_xlim(left, right)
    for y, where in headers:
        ax.text(
            0.005,
            y,
            textwrap.shorten(where, 2 * WRAP + 40),
            va="center",
            fontsize=LABEL_SIZE,
            color="0.25",
            weight="bold",
            transform=ax.get_yaxis_transform(),
        )
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=LABEL_SIZE)
    ax.set_ylim(-lines + 0.4, 0.6)
    ax.set_xlabel(
        "effect with its interval (dotted: unbounded on that side); dashed: the row's threshold"
    )
    title = f"{prediction}: effect and interval per stratum (bold) and metric"
    if shared:
        title += "\n" + textwrap.shorten(f"every stratum: {shared}", 150)
    ax.set_title(title, fontsize=10, y=1.0)
    ax.grid(axis="x", alpha=0.3)
    widest = max(len(part) for label in labels for part in label.splitlines())
    label_in = widest * LABEL_SIZE * EM_PER_CHAR / 72 + 0.25
    fig.subplots_adjust(
        left=min(0.6, label_in / WIDTH_IN),
        right=0.98,
        bottom=0.6 / height,
        top=1 - (0.55 if shared else 0.35) / height,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"verdict_{slug(prediction)}.png"
    fig.savefig(path, dpi=110 if lines <= 24 else 90, pil_kwargs={"compress_level": 1})
    close(fig)
    return path


def verdict_figures(evidence: pd.DataFrame, out: Path) -> list[Path]:
    """One forest plot per prediction present in ``evidence``."""
    if evidence.empty or "prediction" not in evidence.columns:
        return []
    paths = [verdict_figure(evidence, p, out) for p in evidence["prediction"].unique()]
    return [p for p in paths if p is not None]
