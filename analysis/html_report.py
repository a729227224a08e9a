"""``report.html``: the whole analysis on one self-contained page.

The page holds, in order: the run counts (failed runs, which are bugs, in a box at the top), the
verdicts (each linked to its evidence rows and its forest plot), what each prediction claims and
the command that feeds it, the evidence rows, the arms' summary, and every figure embedded as a
base64 PNG (no file beside the page is needed). Every table sorts by a click on a column title
(a few lines of inline JavaScript, no library). The page is rendered by Jinja2 from
``analysis/templates/report.html.j2`` with autoescaping on.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from analysis.figures import slug

TEMPLATE = "report.html.j2"
#: at most this many summary rows on the page (all are in summary.csv)
MAX_SUMMARY_ROWS = 2000
#: at most this many failed runs listed in the box at the top (all are in runs.csv)
MAX_FAILED_LISTED = 50


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if math.isnan(value):
            return ""
        return f"{value:.4g}"
    return str(value)


def _key(row: pd.Series) -> tuple[str, str, str]:
    return (
        str(row.get("prediction", "")),
        str(row.get("data_source", "")),
        str(row.get("stratum", "")),
    )


def _evidence_rows(evidence: pd.DataFrame) -> tuple[list[str], list[dict], dict]:
    columns = list(evidence.columns)
    rows, first_id = [], {}
    for i, (_, row) in enumerate(evidence.iterrows()):
        row_id = f"ev-{i}"
        first_id.setdefault(_key(row), row_id)
        rows.append({"id": row_id, "cells": [_cell(row[c]) for c in columns]})
    return columns, rows, first_id


def _figures(out: Path, names: Iterable[str]) -> tuple[list[dict], dict[str, str]]:
    figures, ids = [], {}
    for name in names:
        path = out / name
        if not path.is_file():
            continue
        fig_id = "fig-" + slug(Path(name).stem)
        data = base64.b64encode(path.read_bytes()).decode("ascii")
        figures.append({"id": fig_id, "name": name, "data": data})
        ids[Path(name).stem] = fig_id
    return figures, ids


def _failed_lines(table: pd.DataFrame) -> list[str]:
    if "status" not in table.columns:
        return []
    failed = table[table["status"] == "failed"]
    lines = []
    for _, row in failed.head(MAX_FAILED_LISTED).iterrows():
        where = row.get("path", row.get("arm", ""))
        error = row.get("error", "")
        lines.append(f"{where}: {error}" if isinstance(error, str) and error else str(where))
    if len(failed) > MAX_FAILED_LISTED:
        lines.append(f"... and {len(failed) - MAX_FAILED_LISTED} more (runs.csv lists all)")
    return lines


def render_html(res, out: Path) -> str:  # noqa: ANN001 (analysis.report.Results)
    """The page's HTML for the results ``res`` whose figures were written under ``out``."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    env = Environment(
        loader=PackageLoader("analysis", "templates"),
        autoescape=select_autoescape(["html", "j2"]),
    )
    table = res.runset.table
    counts = table["status"].value_counts() if "status" in table.columns else pd.Series()
    status_counts = [
        (s, int(counts.get(s, 0))) for s in ("completed", "diverged", "failed", "partial")
    ]
    columns, evidence_rows, first_evidence = _evidence_rows(res.evidence)
    figures, figure_ids = _figures(out, res.figures)
    verdicts = []
    for i, (_, v) in enumerate(res.verdicts.iterrows()):
        prediction = str(v.get("prediction", ""))
        verdicts.append(
            {
                "id": f"verdict-{i}",
                "prediction": prediction,
                "data_source": _cell(v.get("data_source")),
                "stratum": _cell(v.get("stratum")),
                "verdict": _cell(v.get("verdict")),
                "reason": _cell(v.get("reason")) + _multiplier_note(v),
                "experiment": _cell(v.get("experiment")),
                "evidence_id": first_evidence.get(_key(v)),
                "figure_id": figure_ids.get("verdict_" + slug(prediction)),
            }
        )
    tally = res.verdicts["verdict"].value_counts() if not res.verdicts.empty else pd.Series()
    verdict_counts = ", ".join(f"{int(n)} {k}" for k, n in tally.items()) or "no verdicts"
    claims = []
    if not res.verdicts.empty:
        first = res.verdicts.drop_duplicates("prediction")
        claims = [
            {
                "prediction": r["prediction"],
                "claim": _cell(r.get("claim")),
                "sweep": _cell(r.get("sweep")),
            }
            for _, r in first.iterrows()
        ]
    summary = res.summary.head(MAX_SUMMARY_ROWS)
    return env.get_template(TEMPLATE).render(
        title=", ".join(res.paths),
        inputs=res.paths,
        status_counts=status_counts,
        failed=_failed_lines(table),
        verdicts=verdicts,
        verdict_counts=verdict_counts,
        claims=claims,
        evidence_columns=columns,
        evidence=evidence_rows,
        summary_columns=list(summary.columns),
        summary=[[_cell(x) for x in row] for row in summary.itertuples(index=False)],
        figures=figures,
    )


def _multiplier_note(v: pd.Series) -> str:
    """`` (AE-10 guard a / b, AE-6 budget a / b)`` for a verdict whose arms carry them."""
    from analysis.report import multipliers

    text = multipliers(v)
    return "" if text == "-" else f" (AE-10/AE-6 multipliers a / b: {text.split(' **')[0]})"


def write_html(res, out: Path) -> Path:  # noqa: ANN001
    """Write ``out/report.html``; returns its path."""
    path = out / "report.html"
    path.write_text(render_html(res, out), encoding="utf-8")
    return path
