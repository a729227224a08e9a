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


def verdict_figure(evidence: pd.DataFrame, prediction: str, out: Path) -> Path | None:
    """Draw the forest plot of ``prediction``'s test rows into ``out``; None if it has none."""
    from analysis.figures import _plt, slug

    rows = _test_rows(evidence, prediction)
    if rows.empty:
        return None
    plt = _plt()
    # compact rows once there are many (a knock-out over 20 strata has 60): the figure's
    # canvas and its text were most of a 10,000-run report's drawing time (issue 14, item 8)
    per_row = 0.7 if len(rows) <= 12 else 0.42
    height = 1.4 + per_row * len(rows)
    fig, ax = plt.subplots(figsize=(10.0, height))
    labels = []
    unbounded: list[tuple] = []
    for i, row in rows.iterrows():
        y = len(rows) - 1 - i
        outcome = str(row.get("outcome", "inconclusive"))
        colour = VERDICT_COLOURS.get(outcome, "#999999")
        effect = _finite(row.get("effect"))
        low, high = _finite(row.get("ci_low")), _finite(row.get("ci_high"))
        if low is not None and high is not None:
            ax.plot([low, high], [y, y], color=colour, lw=2.0)
        else:  # an unbounded side (too few pairs for the level): dotted to the axis edge
            unbounded.append((y, colour, low, high, effect))
        if effect is not None:
            ax.plot([effect], [y], "o", color=colour, ms=7)
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
            ax.plot([threshold, threshold], [y - 0.35, y + 0.35], color="k", ls="--", lw=1.0)
        what = f"{row.get('metric', '')} ({row.get('effect_kind', '')}, {outcome})"
        where = f"{row.get('data_source', '')}: {row.get('stratum', '')}"
        width = 48 if len(rows) <= 12 else 90
        labels.append(textwrap.fill(what, width) + "\n" + textwrap.fill(where, width))
    left, right = ax.get_xlim()
    for y, colour, low, high, effect in unbounded:
        anchor = next((v for v in (low, high, effect) if v is not None), None)
        if anchor is None:
            continue
        ax.plot(
            [low if low is not None else left, high if high is not None else right],
            [y, y],
            color=colour,
            lw=1.5,
            ls=":",
        )
    ax.set_xlim(left, right)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(list(reversed(labels)), fontsize=7)
    ax.set_ylim(-0.7, len(rows) - 0.3)
    ax.set_xlabel(
        "effect with its interval (dotted: unbounded on that side); dashed: the row's threshold"
    )
    ax.set_title(f"{prediction}: effect and interval per stratum and metric", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"verdict_{slug(prediction)}.png"
    fig.savefig(path, dpi=110 if len(rows) <= 12 else 90, pil_kwargs={"compress_level": 1})
    plt.close(fig)
    return path


def verdict_figures(evidence: pd.DataFrame, out: Path) -> list[Path]:
    """One forest plot per prediction present in ``evidence``."""
    if evidence.empty or "prediction" not in evidence.columns:
        return []
    paths = [verdict_figure(evidence, p, out) for p in evidence["prediction"].unique()]
    return [p for p in paths if p is not None]
