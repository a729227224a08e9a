"""Print one prediction's verdicts from a written report, with their numbers and figures.

    python -m analysis.headline <report folder> --prediction noise_law

Reads ``predictions.csv`` and ``evidence.csv`` of an ``aebench-analyze`` output folder and prints,
per stratum: the verdict and its reason, each test row (metric, effect with the interval its
test inverts, p after Holm, pairs) and the path of the prediction's forest plot and of
``report.html``. ``make demo`` ends with it. Exit status 1 when the prediction has no verdict in
the folder (the line says which predictions it has).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import pandas as pd

from analysis.figures import slug


def _num(value: object) -> str:
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if math.isnan(x) else f"{x:.4g}"


def headline(report: Path, prediction: str) -> list[str]:
    """The lines to print for ``prediction`` in the report folder ``report``."""
    verdicts = pd.read_csv(report / "predictions.csv")
    rows = verdicts[verdicts["prediction"] == prediction]
    if rows.empty:
        have = ", ".join(sorted(verdicts["prediction"].unique())) or "none"
        raise LookupError(f"{report}: no verdict for prediction {prediction!r} (present: {have})")
    evidence_path = report / "evidence.csv"
    evidence = pd.read_csv(evidence_path) if evidence_path.is_file() else pd.DataFrame()
    lines = [f"Prediction {prediction}: {rows['claim'].iloc[0]}"]
    for _, v in rows.iterrows():
        lines.append(f"  [{v['verdict'].upper()}] {v['data_source']} {v['stratum']}")
        lines.append(f"      {v['reason']}")
        if evidence.empty:
            continue
        mine = evidence[
            (evidence["prediction"] == prediction)
            & (evidence["stratum"] == v["stratum"])
            & (evidence["data_source"] == v["data_source"])
        ]
        for _, e in mine.iterrows():
            lines.append(
                f"      {e.get('role', 'test')} {e['metric']}: {e.get('effect_kind', '')} "
                f"{_num(e.get('effect'))} [{_num(e.get('ci_low'))}, {_num(e.get('ci_high'))}] "
                f"threshold {_num(e.get('threshold'))}, p_holm {_num(e.get('p_holm'))}, "
                f"pairs {_num(e.get('n_pairs'))} -> {e.get('outcome', '')}"
            )
    figure = report / "figures" / f"verdict_{slug(prediction)}.png"
    if figure.is_file():
        lines.append(f"  figure: {figure}")
    page = report / "report.html"
    if page.is_file():
        lines.append(f"  report: {page}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m analysis.headline", description=__doc__)
    parser.add_argument("report", type=Path, help="an aebench-analyze output folder")
    parser.add_argument("--prediction", required=True, help="a prediction's name")
    args = parser.parse_args(argv)
    if not (args.report / "predictions.csv").is_file():
        print(
            f"headline: error: {args.report}: no predictions.csv (run aebench-analyze first)",
            file=sys.stderr,
        )
        return 1
    try:
        print("\n".join(headline(args.report, args.prediction)))
    except LookupError as err:
        print(f"headline: error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
