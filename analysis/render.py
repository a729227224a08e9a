"""Plain renderers for tables: Markdown (report.md, the terminal) and LaTeX with booktabs.

Written by hand rather than with ``DataFrame.to_markdown`` (needs ``tabulate``) or
``Styler.to_latex`` (needs ``jinja2`` and is slow to import): a table here is a header and rows
of already formatted strings, and both formats are a few lines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

LATEX_SPECIALS = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def num(value: object, digits: int = 4) -> str:
    """A number with ``digits`` significant digits; ``-`` for missing, ``inf`` kept."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return str(value).lower()
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(x):
        return "-"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x == int(x) and abs(x) < 1e6:
        return str(int(x))
    return f"{x:.{digits}g}"


def interval(mean: object, low: object, high: object, digits: int = 4) -> str:
    """``mean [low, high]``, or the mean alone when the interval is missing."""
    m = num(mean, digits)
    lo, hi = num(low, digits), num(high, digits)
    return m if lo == "-" and hi == "-" else f"{m} [{lo}, {hi}]"


def pvalue(p: object) -> str:
    try:
        x = float(p)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "-"
    if math.isnan(x):
        return "-"
    return "<1e-4" if x < 1e-4 else f"{x:.3g}"


def markdown(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A GitHub-flavoured Markdown table (``|`` in cells escaped)."""

    def cells(items: Sequence[str]) -> str:
        text = (str(c).replace("|", "\\|").replace("\n", " ") for c in items)
        return "| " + " | ".join(text) + " |"

    lines = [cells(header), "|" + "|".join("---" for _ in header) + "|"]
    lines += [cells(r) for r in rows]
    return "\n".join(lines)


def latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(ch, ch) for ch in str(text))


def latex(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    caption: str,
    label: str,
    align: str | None = None,
) -> str:
    """A ``table`` float with a booktabs ``tabular`` (``\\toprule``, ``\\midrule``,
    ``\\bottomrule``); cells are escaped. ``align`` defaults to ``l`` then ``r`` columns."""
    spec = align or ("l" + "r" * (len(header) - 1))
    body = [" & ".join(latex_escape(c) for c in r) + r" \\" for r in rows]
    return "\n".join(
        [
            r"\begin{table}[htbp]",
            r"\centering",
            r"\small",
            rf"\begin{{tabular}}{{{spec}}}",
            r"\toprule",
            " & ".join(latex_escape(h) for h in header) + r" \\",
            r"\midrule",
            *body,
            r"\bottomrule",
            r"\end{tabular}",
            rf"\caption{{{latex_escape(caption)}}}",
            rf"\label{{{label}}}",
            r"\end{table}",
        ]
    )
