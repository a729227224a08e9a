"""``report.md`` and ``tables.tex`` from the results of one analysis.

The Markdown report has, in order: what was read (runs by status and data source, unreadable
files), the predictions (verdicts with the experiment that feeds each, then the evidence behind
them), the missing experiments (those feeding a prediction that found no runs, with the
command that runs them), the arms per data source and
task, the default comparisons, time-to-target, the aggregates across tasks, the figures, the
runs that did not complete and every problem line, and the definitions used. The first
sections up to the comparisons are also what the CLI prints.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.arms import RULESET_NOTE
from analysis.collect import RunSet
from analysis.outcomes import failed_runs
from analysis.render import interval, latex, markdown, num, pvalue

#: summary metrics shown in the arms tables, with their column titles
ARM_COLUMNS = {
    "final": "final",
    "auc": "AUC",
    "time_to_target": "time to target",
    "incidents": "incidents",
    "oscillation": "oscillation",
    "recovery": "recovery",
    "plateau_exit": "plateau exit",
    "gamma_logvar": "var log gamma",
}
#: at most this many lines of non-completed runs and problems in report.md (all are in runs.csv)
MAX_LISTED = 200


@dataclass
class Results:
    """Everything one ``aebench-analyze`` run computed (the CLI fills it)."""

    paths: list[str]
    runset: RunSet
    arms: pd.DataFrame
    summary: pd.DataFrame
    comparisons: pd.DataFrame
    ttt: pd.DataFrame
    profiles: pd.DataFrame
    iqm: pd.DataFrame
    verdicts: pd.DataFrame
    evidence: pd.DataFrame
    confidence: float = 0.95
    ci_method: str = "t"
    figures: list[str] = field(default_factory=list)
    unpartnered: list[str] = field(default_factory=list)


def _status_line(table: pd.DataFrame) -> str:
    counts = table["status"].value_counts()
    parts = [f"{counts.get(s, 0)} {s}" for s in ("completed", "diverged", "failed", "partial")]
    return f"{len(table)} runs: " + ", ".join(parts)


def header(res: Results) -> str:
    table = res.runset.table
    unreadable = [p for p in res.runset.problems if p.kind == "unreadable"]
    sources = table.loc[table["status"] != "partial", "data_source"].value_counts()
    commits = sorted(str(c)[:10] for c in table["commit"].dropna().unique())
    lines = ["# aebench-analyze report", ""]
    failed = failed_runs(table)
    if len(failed):
        lines += [
            f"**{len(failed)} FAILED runs (an exception: a bug, not a result) are EXCLUDED from "
            "every statistic below; fix and rerun them:**",
            "",
        ]
        for r in failed.head(20).itertuples():
            error = str(getattr(r, "error", "") or "").splitlines()[:1]
            lines.append(f"- `{getattr(r, 'path', '')}` {r.arm}: {' '.join(error)}")
        if len(failed) > 20:
            lines.append(f"- ... and {len(failed) - 20} more (runs.csv, status failed)")
        lines.append("")
    lines += [
        "Inputs: " + ", ".join(f"`{p}`" for p in res.paths),
        "",
        f"- {_status_line(table)}; {len(unreadable)} unreadable files (listed at the end).",
        "- Data sources: "
        + (", ".join(f"{ds} ({n} runs)" for ds, n in sources.items()) or "none")
        + ". Runs of different data sources are never pooled: every table is split by source.",
        f"- Suite commits in the records: {', '.join(commits) or 'unknown'}.",
        f"- Confidence intervals: {res.confidence:.0%} ({res.ci_method} for arm means of the "
        "finished runs); predictions and comparisons report the interval their one-sided "
        "signed-rank tests invert (exact level in ci_level). Outcome policy: diverged runs at "
        "the worst rank, failed runs excluded (docs/analysis.md).",
    ]
    return "\n".join(lines)


def predictions_section(res: Results) -> str:
    v, e = res.verdicts, res.evidence
    out = ["## Predictions", ""]
    if v.empty:
        return "\n".join(out + ["No predictions were given."])
    counts = v["verdict"].value_counts()
    out.append(
        f"{len(v['prediction'].unique())} predictions, {len(v)} verdicts: "
        + ", ".join(f"{counts.get(k, 0)} {k}" for k in ("supported", "refuted", "inconclusive"))
        + ". Holm adjustment over every prediction test in this report "
        f"({int(e['p_holm'].notna().sum()) if not e.empty else 0} tests with a p-value)."
    )
    out.append("")
    show_mult = _has_multipliers(v)
    rows = [
        [
            r.prediction,
            f"`{r.experiment}`" if r.experiment else "-",
            r.data_source or "-",
            r.stratum or "-",
            f"**{r.verdict}**",
            *([multipliers(r)] if show_mult else []),
            r.reason,
        ]
        for r in v.itertuples()
    ]
    head = ["prediction", "experiment", "data", "stratum", "verdict"]
    head += ["AE-10 guard, AE-6 budget (a / b)"] if show_mult else []
    out.append(markdown([*head, "reason"], rows))
    if show_mult:
        out += [
            "",
            "Guard and budget: each arm's mean over its runs of the AE-10 guard factor and the "
            "AE-6 budget multiplier (`extra.ae`). A knock-out whose arms differ in either by "
            "more than 2x (except the multiplier the knock-out removes) is marked **confounded "
            "through AE-6/AE-10**: its effect may run through the shared guard or budget rather "
            "than the law knocked out (docs/analysis.md, Knock-outs).",
        ]
    missing = v[v["data_source"] == ""]
    if not missing.empty:
        out += ["", "### Sweeps that would produce the missing runs", ""]
        for r in missing.itertuples():
            exp = f" (experiment `{r.experiment}`)" if r.experiment else ""
            out.append(f"- **{r.prediction}**{exp}: `{r.sweep}`")
    if not e.empty:
        out += ["", "### Evidence", ""]
        rows = []
        for r in e.itertuples():
            n = f"{r.n_a}/{r.n_b}" + (f" ({r.n_pairs} pairs)" if r.n_pairs else "")
            rows.append(
                [
                    r.prediction,
                    r.stratum,
                    r.role,
                    r.metric,
                    r.direction,
                    n,
                    _effect_cell(r),
                    num(r.threshold),
                    pvalue(r.p),
                    pvalue(r.p_holm),
                    r.outcome,
                ]
            )
        head = [
            "prediction",
            "stratum",
            "role",
            "metric",
            "direction",
            "n a/b",
            "effect [CI]",
            "threshold",
            "p",
            "p_holm",
            "outcome",
        ]
        out.append(markdown(head, rows))
        out += [
            "",
            "Effects are oriented so that positive is the predicted direction (for guards: "
            "positive is b worse than a). Arms: " + _arm_legend(e),
        ]
    return "\n".join(out)


def _effect_cell(r) -> str:  # noqa: ANN001
    """An evidence row's effect [CI]; an effect made infinite by diverged runs reads as the
    count of diverged pairs per arm (:func:`analysis.verdicts.effect_text`)."""
    from analysis.verdicts import effect_text

    diverged = getattr(r, "n_diverged_a", 0) or getattr(r, "n_diverged_b", 0)
    if diverged and pd.notna(r.effect) and not np.isfinite(float(r.effect)):
        return effect_text(r)
    return interval(r.effect, r.ci_low, r.ci_high)


def _has_multipliers(v: pd.DataFrame) -> bool:
    cols = ("guard_a", "guard_b", "budget_a", "budget_b")
    return all(c in v.columns for c in cols) and bool(v[list(cols)].notna().any().any())


def multipliers(r) -> str:  # noqa: ANN001
    """``guard a / b, budget a / b`` of one verdict row, with the confounding mark."""
    vals = [getattr(r, k, float("nan")) for k in ("guard_a", "guard_b", "budget_a", "budget_b")]
    if all(pd.isna(x) for x in vals):
        return "-"
    g_a, g_b, b_a, b_b = (num(x, 3) for x in vals)
    text = f"guard {g_a} / {g_b}, budget {b_a} / {b_b}"
    return text + (" **confounded through AE-6/AE-10**" if getattr(r, "confound", "") else "")


@dataclass
class MissingExperiment:
    """An experiment that feeds predictions none of whose strata had runs (``runs_missing``)."""

    name: str
    predictions: list[str]
    #: the scale to run it at and the evidence folder to run it into
    scale: str
    folder: str
    #: whether ``conf/experiment/<name>.yaml`` exists (if not, the predictions' sweeps do it)
    configured: bool

    @property
    def commands(self) -> list[str]:
        """The commands that produce its runs: ``aebench-evidence``, then ``aebench -m``."""
        return [
            f"aebench-evidence --experiments {self.name} --scale {self.scale} --out {self.folder}",
            f"aebench -m experiment={self.name} scale={self.scale}",
        ]


def _experiment_dir() -> Path:
    from analysis.predictions import default_predictions_dir

    return default_predictions_dir().parent / "experiment"


def _report_scale(res: Results, sweeps: list[str]) -> str:
    """The scale to run missing experiments at: the one scale of this report's runs, else the
    one the predictions' sweeps name, else ``cpu``."""
    scales = res.runset.usable()["scale"].dropna().unique()
    if len(scales) == 1:
        return str(scales[0])
    named = {m.group(1) for s in sweeps for m in [re.search(r"\bscale=(\w+)", s)] if m}
    return named.pop() if len(named) == 1 else "cpu"


def missing_experiments(res: Results) -> list[MissingExperiment]:
    """The experiments to run: those named by a verdict with ``runs_missing`` (sorted)."""
    v = res.verdicts
    if v.empty or "runs_missing" not in v.columns:
        return []
    lacking = v[v["runs_missing"].astype(bool) & (v["experiment"].astype(str) != "")]
    out = []
    folder = res.paths[0] if len(res.paths) == 1 else "<evidence folder>"
    for name, g in lacking.groupby("experiment", sort=True):
        out.append(
            MissingExperiment(
                name=str(name),
                predictions=sorted(set(g["prediction"])),
                scale=_report_scale(res, list(g["sweep"])),
                folder=folder,
                configured=(_experiment_dir() / f"{name}.yaml").is_file(),
            )
        )
    return out


def missing_experiments_section(res: Results) -> str:
    """``## Missing experiments``: what to run so that every prediction has runs."""
    out = ["## Missing experiments", ""]
    missing = missing_experiments(res)
    v = res.verdicts
    unnamed = (
        sorted(set(v.loc[v["runs_missing"].astype(bool) & (v["experiment"] == ""), "prediction"]))
        if not v.empty and "runs_missing" in v.columns
        else []
    )
    if not missing and not unnamed:
        return "\n".join(out + ["None: every prediction found runs of its arms."])
    if missing:
        out.append(
            f"{len(missing)} experiments feed predictions that found no runs of their arms here. "
            "Run them (`aebench-evidence` skips the jobs already done), then analyse again:"
        )
        out.append("")
        for m in missing:
            feeds = ", ".join(m.predictions)
            if m.configured:
                run = f"`{m.commands[0]}` (or `{m.commands[1]}`)"
            else:
                run = f"no `conf/experiment/{m.name}.yaml` yet: run the predictions' sweeps below"
            out.append(f"- `{m.name}` (feeds {feeds}): {run}")
        runnable = [m for m in missing if m.configured]
        if len(runnable) > 1:
            names = ",".join(m.name for m in runnable)
            out += [
                "",
                f"All at once: `aebench-evidence --experiments {names} --scale "
                f"{runnable[0].scale} --out {runnable[0].folder}`",
            ]
    if unnamed:
        out += [
            "",
            "Predictions without runs that name no experiment (run their sweeps below): "
            + ", ".join(unnamed)
            + ".",
        ]
    return "\n".join(out)


def _arm_legend(e: pd.DataFrame) -> str:
    pairs = e.drop_duplicates(["prediction", "stratum"])
    parts = [
        f"{r.prediction} [{r.stratum}]: a = {r.label_a or '-'}, b = {r.label_b or '-'}"
        for r in pairs.itertuples()
    ]
    return "; ".join(parts) + "."


def arm_tables(res: Results) -> list[tuple[str, str, list[str], list[list[str]]]]:
    """``(data source, task, header, rows)`` per task: each arm's main metrics."""
    out = []
    s, t = res.summary, res.ttt
    if s.empty:
        return out
    runs = res.runset.table
    counts = pd.crosstab(runs["arm"], runs["status"])  # runs per arm and status, once
    statuses = {arm: dict(zip(counts.columns, row, strict=True)) for arm, row in counts.iterrows()}
    targets = {
        (ds, task, arm): (reached, n, ert)
        for ds, task, arm, reached, n, ert in zip(
            t["data_source"], t["task"], t["arm"], t["reached"], t["runs"], t["ert"], strict=True
        )
    }
    for (ds, task), g in s.groupby(["data_source", "task"], sort=True):
        metrics = [m for m in ARM_COLUMNS if m in set(g["metric"])]
        head = ["arm", "runs", *[ARM_COLUMNS[m] for m in metrics], "reached", "ERT"]
        rows = []
        for arm, a in g.groupby("arm", sort=False):
            by = {
                m: (mean, low, high)
                for m, mean, low, high in zip(
                    a["metric"], a["mean"], a["ci_low"], a["ci_high"], strict=True
                )
            }
            status = statuses.get(arm, {})
            extra = [f"{status[k]} {k}" for k in ("diverged", "failed") if status.get(k, 0)]
            cells = [
                str(a["label"].iloc[0]),
                str(int(sum(status.values()))) + (f" ({', '.join(extra)})" if extra else ""),
            ]
            cells += [interval(*by[m]) if m in by else "-" for m in metrics]
            target = targets.get((ds, task, arm))
            if target is not None:
                cells += [f"{target[0]}/{target[1]}", num(target[2])]
            else:
                cells += ["-", "-"]
            rows.append(cells)
        out.append((ds, task, head, rows))
    return out


def _task_note(res: Results, ds: str, task: str) -> str:
    runs = res.runset.table
    g = runs[(runs["data_source"] == ds) & (runs["task"] == task)]
    metric = g["metric"].dropna().iloc[0] if g["metric"].notna().any() else "?"
    mode = g["mode"].dropna().iloc[0] if g["mode"].notna().any() else None
    target = g["target_value"].dropna().iloc[0] if g["target_value"].notna().any() else None
    better = {"min": "lower is better", "max": "higher is better"}.get(str(mode), "mode unknown")
    budget = g["budget"].dropna().unique()
    return (
        f"metric `{metric}` ({better}), target {num(target)}, budget "
        f"{', '.join(num(b) for b in sorted(budget)) or '-'} steps"
    )


def arms_section(res: Results) -> str:
    out = [
        "## Arms",
        "",
        f"Mean [{res.confidence:.0%} CI] over seeds. Time to target: restricted (a miss counts "
        "at the budget); reached: runs that hit the target; ERT: COCO's expected running time.",
    ]
    for ds, task, head, rows in arm_tables(res):
        out += ["", f"### {ds} / {task}: {_task_note(res, ds, task)}", "", markdown(head, rows)]
    return "\n".join(out)


def comparisons_section(res: Results) -> str:
    c = res.comparisons
    out = ["## Comparisons", ""]
    if c.empty:
        out.append(
            "No default comparisons: no AE arm with an `ae=off` partner, no knock-out "
            "with an `ablation=none` partner."
        )
    else:
        out.append(
            f"Every AE arm against its `ae=off` arm, every knock-out against `ablation=none`; "
            f"diff > 0 means b is better: the Hodges-Lehmann estimate of the paired differences, "
            "on the log ratio for loss-like metrics (`scale`), with the interval its signed-rank "
            "test inverts (at least 5 pairs); P(b better): the probability of improvement "
            "(a random run of b better than a random run of a, ties half) with rliable's "
            "stratified-bootstrap CI. Holm over all "
            f"{int(c['p'].notna().sum())} comparisons with a p-value in this report (an "
            "exploratory family, apart from the predictions)."
        )
        out.append("")
        rows = [
            [
                r.data_source,
                r.task,
                f"{r.metric} ({r.scale})" if getattr(r, "scale", "") else r.metric,
                r.label_a,
                r.label_b,
                str(r.n),
                interval(r.diff, r.ci_low, r.ci_high),
                interval(
                    getattr(r, "prob_improvement", None),
                    getattr(r, "prob_improvement_low", None),
                    getattr(r, "prob_improvement_high", None),
                    3,
                ),
                pvalue(r.p),
                pvalue(r.p_holm),
                r.note,
            ]
            for r in c.itertuples()
        ]
        head = ["data", "task", "metric", "a", "b", "n", "diff [CI]", "P(b better) [CI]"]
        head += ["p", "p_holm", "note"]
        out.append(markdown(head, rows))
    if res.unpartnered:
        out += ["", "Not compared (no partner arm): " + "; ".join(res.unpartnered) + "."]
    return "\n".join(out)


def across_section(res: Results) -> str:
    out = ["## Across tasks", ""]
    out.append(
        "IQM of normalised final scores (per problem: oriented so higher is better, log for a "
        "positive metric to minimise, min-max over the problem's runs, a run without a final "
        "value at 0) with rliable's stratified bootstrap CI; performance profiles (AlgoPerf) on "
        "ERT with r_max = 4: rho(tau) is the fraction of problems an arm solves within tau "
        f"times the fastest arm's ERT, with its {res.confidence:.0%} stratified-bootstrap CI "
        "(the runs of each problem and arm resampled on their own)."
    )
    for ds in sorted(set(res.iqm.get("data_source", pd.Series(dtype=str)))):
        q = res.iqm[res.iqm["data_source"] == ds]
        p = res.profiles[res.profiles["data_source"] == ds]
        rows = []
        for r in q.itertuples():
            cells = [r.method, str(r.problems), str(r.runs), interval(r.iqm, r.ci_low, r.ci_high)]
            for tau in (1.0, 2.0, 4.0):
                sel = p[(p["method"] == r.method) & ((p["tau"].astype(float) - tau).abs() < 1e-9)]
                if sel.empty:
                    cells.append("-")
                elif "rho_low" in sel.columns:
                    x = sel.iloc[0]
                    cells.append(interval(x["rho"], x["rho_low"], x["rho_high"], 3))
                else:
                    cells.append(num(sel["rho"].iloc[0], 3))
            rows.append(cells)
        head = ["method", "problems", "runs", "IQM [CI]", "rho(1)", "rho(2)", "rho(4)"]
        out += ["", f"### {ds}", "", markdown(head, rows)]
    return "\n".join(out)


def ttt_section(res: Results) -> str:
    t = res.ttt
    out = ["## Time to target", ""]
    if t.empty:
        return "\n".join(out + ["No runs."])
    out.append(
        "Censoring: a run that misses the target, diverges or fails has infinite time. "
        "ERT (COCO) = steps spent by all runs (misses at their budget) / runs that reached."
    )
    rows = [
        [
            r.data_source,
            r.task,
            str(r.label),
            num(r.target),
            f"{r.reached}/{r.runs}",
            num(r.fraction_reached, 3),
            num(r.ert),
            num(r.budget),
        ]
        for r in t.itertuples()
    ]
    head = ["data", "task", "arm", "target", "reached", "fraction", "ERT", "budget"]
    return "\n".join([*out, "", markdown(head, rows)])


def figures_section(res: Results) -> str:
    out = ["## Figures", ""]
    if not res.figures:
        return "\n".join(out + ["No figures (--no-figures, or nothing to plot)."])
    out += [f"- [{f}]({f})" for f in res.figures]
    return "\n".join(out)


def problems_section(res: Results) -> str:
    table = res.runset.table
    out = ["## Runs not completed, and problems", ""]
    bad = table[table["status"] != "completed"]
    if bad.empty and not res.runset.problems:
        return "\n".join(out + ["Every run completed; every file was readable."])
    for r in bad.head(MAX_LISTED).itertuples():
        why = f": {r.error}" if isinstance(r.error, str) and r.error else ""
        out.append(f"- {r.status}: `{r.path}`{why}")
    if len(bad) > MAX_LISTED:
        out.append(f"- ... and {len(bad) - MAX_LISTED} more (see runs.csv)")
    listed = [p for p in res.runset.problems if p.kind != "partial"]
    if listed:
        out += ["", "Files that could not be used:", ""]
        out += [f"- {p.line()}" for p in listed[:MAX_LISTED]]
        if len(listed) > MAX_LISTED:
            out.append(f"- ... and {len(listed) - MAX_LISTED} more")
    return "\n".join(out)


DEFINITIONS = """## Definitions

- **time to target**: first evaluated step with the metric at or beyond the task's target, for a
  completed run; a miss, a divergence or a failure is censored (infinite). Tables use the
  restricted time min(time, budget); ERT and fraction reached use the censored times.
- **oscillation**: RMS of the log training loss around its centred moving average (window ~10% of
  the logged rows).
- **recovery**: mean over drift switches of the steps until the smoothed training loss is back
  within 5% of its pre-switch level, censored at the next switch.
- **plateau exit**: the step the task reports its run left the plateau, restricted (a run that
  never left counts at its budget).
- **var log gamma**: variance of log of the effective step gamma logged by AE (vanilla runs do not
  log gamma).
- **outcome policy**: a diverged run is a failure of its arm (worst rank on value metrics, a
  miss through the budget on times, charged the steps it used in ERT); a failed run (an
  exception) is excluded and listed at the top (`docs/analysis.md`).
- **verdicts**: *supported* when the one-sided exact signed-rank sign-flip test of
  H0: effect <= threshold rejects at alpha after Holm over the predictions' tests; *refuted*
  when the mirror test (H0: effect >= threshold) does, on a non-degenerate interval, or a
  guard is shown violated; *inconclusive* otherwise (neither side shown, fewer than 5 pairs,
  ambiguous pairing, unmatched compute, all runs censored, or no runs). Relative effects are
  tested on the log ratio (geometric means).
- Full definitions: `analysis/metrics.py`, `analysis/verdicts.py`, `analysis/tables.py`."""


def markdown_report(res: Results) -> tuple[str, str]:
    """``(report.md, the part the CLI prints)``."""
    printed = [
        predictions_section(res),
        missing_experiments_section(res),
        arms_section(res),
        comparisons_section(res),
    ]
    rest = [ttt_section(res), across_section(res), figures_section(res), problems_section(res)]
    full = "\n\n".join([header(res), *printed, *rest, DEFINITIONS]) + "\n"
    return full, "\n\n".join(printed) + "\n"


def latex_tables(res: Results) -> str:
    """``tables.tex``: verdicts, arms per task, comparisons (booktabs; needs ``booktabs``)."""
    parts = [
        "% Tables of an aebench-analyze report. Needs \\usepackage{booktabs}.",
    ]
    v = res.verdicts
    if not v.empty:
        rows = [
            [r.prediction, r.data_source or "-", r.stratum or "-", r.verdict]
            for r in v.itertuples()
        ]
        parts.append(
            latex(
                ["prediction", "data", "stratum", "verdict"],
                rows,
                "Verdicts of the pre-registered predictions.",
                "tab:verdicts",
                "llll",
            )
        )
    e = res.evidence
    if not e.empty:
        rows = [
            [
                r.prediction,
                r.role,
                r.metric,
                f"{r.n_a}/{r.n_b}",
                _effect_cell(r),
                num(r.threshold),
                pvalue(r.p_holm),
                r.outcome,
            ]
            for r in e.itertuples()
        ]
        parts.append(
            latex(
                [
                    "prediction",
                    "role",
                    "metric",
                    "n a/b",
                    "effect [CI]",
                    "threshold",
                    "p (Holm)",
                    "outcome",
                ],
                rows,
                "Evidence per prediction test (effect oriented: positive = predicted).",
                "tab:evidence",
                "lllrrrrl",
            )
        )
    for i, (ds, task, head, rows) in enumerate(arm_tables(res)):
        parts.append(
            latex(
                head,
                rows,
                f"{ds} / {task}: {_task_note(res, ds, task)}. Mean "
                f"[{res.confidence:.0%} CI] over seeds. {RULESET_NOTE}",
                f"tab:arms{i}",
            )
        )
    c = res.comparisons
    if not c.empty:
        rows = [
            [
                r.task,
                r.metric,
                str(r.label_a),
                str(r.label_b),
                str(r.n),
                interval(r.diff, r.ci_low, r.ci_high),
                pvalue(r.p),
                pvalue(r.p_holm),
            ]
            for r in c.itertuples()
        ]
        parts.append(
            latex(
                ["task", "metric", "a", "b", "n", "diff [CI]", "p", "p (Holm)"],
                rows,
                f"Default comparisons (diff > 0: b better). {RULESET_NOTE}",
                "tab:comparisons",
                "llllrrrr",
            )
        )
    return "\n\n".join(parts) + "\n"
