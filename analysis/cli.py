"""``aebench-analyze PATH [PATH ...] --out DIR``: statistics tables and verdicts from run records.

Reads every ``result.json`` (and its ``curves.csv``) under the paths, evaluates the
pre-registered predictions of ``conf/predictions/`` and writes into ``--out``:

- ``runs.csv``: one row per run (partial runs too) with the per-run metrics;
- ``summary.csv``: per data source, task, arm and metric: n, mean, CI, median, IQM;
- ``comparisons.csv``: AE vs ``ae=off`` and knock-out vs ``ablation=none``, Holm-adjusted;
- ``time_to_target.csv``, ``profiles.csv``, ``iqm.csv``: censored time-to-target, performance
  profiles and IQM across tasks;
- ``predictions.csv`` (one row per verdict) and ``evidence.csv`` (one row per test and guard);
- ``report.md``, ``tables.tex`` (booktabs) and ``figures/*.png``.

It prints the report's tables (predictions, arms, comparisons) unless ``--quiet``. Exit
status: 0 done, 1 no readable run record, 2 bad arguments or a bad prediction file (one line).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="aebench-analyze",
        description="Statistics tables, verdicts and figures from aebench run records.",
    )
    parser.add_argument("paths", nargs="+", help="sweep folders, run folders or result.json files")
    parser.add_argument("--out", required=True, help="folder for the report (created)")
    parser.add_argument(
        "--predictions",
        nargs="*",
        default=None,
        help="prediction YAML files or folders (default: conf/predictions); none: skip them",
    )
    parser.add_argument(
        "--ci",
        choices=("t", "percentile", "bca"),
        default="t",
        help="CI of arm means: Student t (default) or bootstrap percentile/BCa",
    )
    parser.add_argument("--confidence", type=float, default=0.95, help="of arm-mean CIs")
    parser.add_argument("--n-boot", type=int, default=2000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of every bootstrap")
    parser.add_argument("--no-figures", action="store_true", help="skip the PNG figures")
    parser.add_argument("--quiet", action="store_true", help="print nothing but errors")
    args = parser.parse_args(argv)
    if not 0 < args.confidence < 1:
        parser.error(f"--confidence={args.confidence}: a number in (0, 1)")
    if args.n_boot < 100:
        parser.error(f"--n-boot={args.n_boot}: at least 100")
    return args


def analyse(args: argparse.Namespace, predictions: list, runset) -> object:  # noqa: ANN001
    """Every table from the runs read; returns :class:`analysis.report.Results`."""
    from analysis import tables
    from analysis.arms import annotate, partners
    from analysis.report import Results
    from analysis.verdicts import evaluate

    arms = annotate(runset)
    pairs = partners(arms)
    table = runset.table
    summary = tables.summary_table(table, args.ci, args.confidence, args.n_boot, args.seed)
    comparisons = tables.comparisons_table(table, pairs, args.confidence)
    ttt = tables.time_to_target_table(table)
    profiles = tables.profiles(
        ttt, table, n_boot=args.n_boot, confidence=args.confidence, seed=args.seed
    )
    iqm = tables.iqm_table(table, args.n_boot, args.confidence, args.seed)
    verdicts, evidence = evaluate(predictions, runset, args.n_boot, args.seed)
    compared = set(pairs["arm_b"]) | set(pairs["arm_a"])
    unpartnered = [
        f"{r.task}: {r.label}" for r in arms.itertuples() if r.ae is True and r.arm not in compared
    ]
    return Results(
        paths=[str(p) for p in args.paths],
        runset=runset,
        arms=arms,
        summary=summary,
        comparisons=comparisons,
        ttt=ttt,
        profiles=profiles,
        iqm=iqm,
        verdicts=verdicts,
        evidence=evidence,
        confidence=args.confidence,
        ci_method=args.ci,
        unpartnered=unpartnered,
    )


def write_outputs(res, out: Path, figures: bool) -> str:  # noqa: ANN001
    """Write every output file into ``out``; returns the text to print."""
    from analysis.figures import draw_all
    from analysis.html_report import write_html
    from analysis.report import latex_tables, markdown_report
    from analysis.runs import RECORD_COLUMNS
    from analysis.verdict_figure import verdict_figures

    out.mkdir(parents=True, exist_ok=True)
    table = res.runset.table
    first = [c for c in RECORD_COLUMNS if c not in ("arm", "path")]
    rest = [c for c in table.columns if c not in first and c not in ("ctx_off", "ctx_laws")]
    table[first + rest].to_csv(out / "runs.csv", index=False)
    res.summary.to_csv(out / "summary.csv", index=False)
    res.comparisons.to_csv(out / "comparisons.csv", index=False)
    res.ttt.to_csv(out / "time_to_target.csv", index=False)
    res.profiles.to_csv(out / "profiles.csv", index=False)
    res.iqm.to_csv(out / "iqm.csv", index=False)
    res.verdicts.to_csv(out / "predictions.csv", index=False)
    res.evidence.to_csv(out / "evidence.csv", index=False)
    if figures:
        usable = res.runset.usable()
        paths = draw_all(res.runset, usable, res.profiles, out / "figures")
        paths += verdict_figures(res.evidence, out / "figures")
        res.figures = [str(p.relative_to(out)) for p in paths]
    full, printed = markdown_report(res)
    (out / "report.md").write_text(full)
    (out / "tables.tex").write_text(latex_tables(res))
    write_html(res, out)
    return printed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    t0 = time.perf_counter()
    from analysis.predictions import PredictionError, default_predictions_dir, load_predictions

    sources = [default_predictions_dir()] if args.predictions is None else args.predictions
    try:
        predictions = load_predictions(sources)
    except PredictionError as err:
        print(f"aebench-analyze: error: {err}", file=sys.stderr)
        return 2
    for p in args.paths:
        if not Path(p).exists():
            print(f"aebench-analyze: error: {p}: no such run or sweep folder", file=sys.stderr)
            return 2
    from analysis.collect import load_runs

    runset = load_runs(args.paths)
    if runset.usable().empty:
        print(
            "aebench-analyze: no readable run record under " + ", ".join(args.paths),
            file=sys.stderr,
        )
        for problem in runset.problems:
            print(problem.line(), file=sys.stderr)
        return 1
    res = analyse(args, predictions, runset)
    out = Path(args.out)
    printed = write_outputs(res, out, figures=not args.no_figures)
    if not args.quiet:
        print(printed)
        problems = res.runset.problems
        if problems:
            print(f"{len(problems)} problem lines (unreadable or partial runs): see report.md")
        print(
            f"aebench-analyze: {len(res.runset.table)} runs analysed in "
            f"{time.perf_counter() - t0:.1f} s; report: {out / 'report.md'}, "
            f"{out / 'report.html'}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
