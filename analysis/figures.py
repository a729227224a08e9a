"""The report's figures (PNG, matplotlib's Agg backend, imported only when figures are drawn).

- ``curves_<source>_<task>[_pN].png``: learning curves per arm: the evaluation metric (left)
  and the training loss (right), mean over seeds with a 95% Student-t band at each logged step
  (only steps with >= 2 runs get a band; a diverged run leaves the mean where it stopped, and
  the legend counts the runs).
- ``coefficients_<source>_<task>[_pN].png``: coefficient trajectories per arm (lr, momentum or
  beta1, beta2, eps, sigma, gamma; ``1 - beta`` for the betas), geometric mean over seeds with
  a 95% band on the log scale.
- ``coupling_<source>.png``: the coupling-curve scatter: one point per AE run, trajectory-mean
  log lr against log 1/(1-beta1) (or momentum), per task and optimizer, the best quarter by the
  final metric outlined, with their Spearman correlation.
- ``profile_<source>.png``: performance profiles (AlgoPerf, ERT, r_max = 4), each with its
  stratified-bootstrap band (:func:`analysis.tables.profiles`).

At most :data:`ARMS_PER_PAGE` arms share a figure; more arms continue on further pages.
"""

from __future__ import annotations

import functools
import gc
import math
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
from scipy import stats

from analysis.collect import RunSet
from analysis.metrics import BETA_LIKE, Traces

#: one figure per task holds up to 20 arms (tab20's colours); was 10, which doubled the figures
#: of a 20-arm sweep: figure drawing was half of a 10,000-run analysis (issue 14, item 8)
ARMS_PER_PAGE = 20
#: PNG options: zlib level 1 encodes several times faster than the default 6 for files about
#: 20% larger (figures are line art)
SAVE = {"dpi": 100, "pil_kwargs": {"compress_level": 1}}
COEF_PANELS = ("lr", "momentum", "beta1", "beta2", "eps", "sigma", "gamma")


def _plt():  # noqa: ANN202
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def drawing(draw):  # noqa: ANN001, ANN201
    """Decorator of a function that draws figures: Python's cyclic garbage collector stays off
    while it runs, and :func:`close` collects the young garbage (the figure closed before, once its
    variables let go of it) whenever a figure is closed.
    A figure allocates tens of thousands of short-lived objects in reference cycles (artists,
    transforms, callbacks) that the collector would otherwise traverse again and again while
    the figure is built: about a tenth of the figures' CPU time on a 10,000-run report."""

    @functools.wraps(draw)
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        enabled = gc.isenabled()
        gc.disable()
        try:
            return draw(*args, **kwargs)
        finally:
            if enabled:
                gc.enable()

    return wrapper


def close(fig) -> None:  # noqa: ANN001
    """Close ``fig`` and free what it allocated (the young generation; see :func:`drawing`)."""
    _plt().close(fig)
    gc.collect(1)


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


class Band(NamedTuple):
    """Per logged step: the step, the number of runs, their mean and its 95% t-interval."""

    step: np.ndarray
    n: np.ndarray
    mean: np.ndarray
    low: np.ndarray
    high: np.ndarray


def band(steps: list[np.ndarray], values: list[np.ndarray], log: bool = False) -> Band:
    """Mean and 95% t-interval at each step over runs (``log``: of log10 values, returned
    exponentiated: a geometric mean and its band)."""
    empty = np.empty(0)
    if not steps:
        return Band(empty, empty, empty, empty, empty)
    s = np.concatenate(steps).astype(float)
    v = np.concatenate(values).astype(float)
    ok = np.isfinite(v) & np.isfinite(s)
    if log:
        ok &= v > 0
    s, v = s[ok], v[ok]
    if log:
        v = np.log10(v)
    if s.size == 0:
        return Band(empty, empty, empty, empty, empty)
    uniq, inv = np.unique(s, return_inverse=True)
    n = np.bincount(inv).astype(float)
    total = np.bincount(inv, weights=v)
    mean = total / n
    sq = np.bincount(inv, weights=(v - mean[inv]) ** 2)
    # the t quantile once per distinct run count (most steps share one): scipy's per-call
    # overhead, not the arithmetic, was the cost
    dfs, at = np.unique(np.maximum(n - 1, 1), return_inverse=True)
    quantile = stats.t.ppf(0.975, dfs)[at]
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(sq / (n - 1))
        half = np.where(n >= 2, quantile * sd / np.sqrt(n), np.nan)
    low, high = mean - half, mean + half
    if log:
        mean, low, high = 10**mean, 10**low, 10**high
    return Band(uniq, n, mean, low, high)


def _margins(fig, left: float, right: float, bottom: float, top: float, **space: float) -> None:  # noqa: ANN001
    """Fixed figure margins in inches (``space``: ``wspace``/``hspace`` as fractions of a
    panel), instead of ``tight_layout``: its layout passes (one of them an extra draw at save)
    cost as much as drawing the figure."""
    width, height = fig.get_size_inches()
    fig.subplots_adjust(
        left=left / width,
        right=1 - right / width,
        bottom=bottom / height,
        top=1 - top / height,
        **space,
    )


def _pages(arms: list[str]) -> list[list[str]]:
    return [arms[i : i + ARMS_PER_PAGE] for i in range(0, len(arms), ARMS_PER_PAGE)] or [[]]


def _positive_wide(values: np.ndarray) -> bool:
    v = values[np.isfinite(values)]
    return v.size > 0 and (v > 0).all() and v.max() / v.min() > 10


def _grid_column(trace: Traces, name: str) -> tuple[np.ndarray, np.ndarray] | None:
    if name not in trace.columns:
        return None
    j = trace.columns.index(name)
    return trace.grid[:, 0], trace.grid[:, j]


def _draw_bands(ax, items: list[tuple[Band, object, str]]) -> None:  # noqa: ANN001
    """Each arm's mean as a line (its legend entry) and its band, for ``(band, colour,
    label)`` items: the bands of every arm go into one polygon collection, in arm order (one
    artist per panel instead of one per arm: adding and drawing a collection was most of a
    panel's cost; the pixels are the same, as bands are drawn below the lines either way)."""
    from matplotlib.collections import PolyCollection
    from matplotlib.lines import Line2D

    polys, faces = [], []
    for b, color, label in items:
        if b.step.size == 0:
            continue
        ax.add_line(Line2D(b.step, b.mean, color=color, lw=1.4, label=label))
        for poly in _band_polygons(b.step, b.low, b.high):
            polys.append(poly)
            faces.append(color)
    if polys:
        ax.add_collection(PolyCollection(polys, facecolors=faces, alpha=0.2, linewidths=0))
    ax.autoscale_view()


def _band_polygons(x: np.ndarray, low: np.ndarray, high: np.ndarray) -> list[np.ndarray]:
    """The band between ``low`` and ``high`` as one polygon per run of consecutive steps where
    both are finite (a step with fewer than two runs has no band: a gap, as fill_between
    leaves)."""
    ok = np.isfinite(x) & np.isfinite(low) & np.isfinite(high)
    out = []
    edges = np.flatnonzero(np.diff(np.concatenate([[0], ok.astype(int), [0]])))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        if stop - start < 2:
            continue
        xs = x[start:stop]
        out.append(
            np.column_stack(
                [
                    np.concatenate([xs, xs[::-1]]),
                    np.concatenate([low[start:stop], high[start:stop][::-1]]),
                ]
            )
        )
    return out


def _arm_runs(runs: pd.DataFrame, runset: RunSet) -> dict[str, list[Traces]]:
    out: dict[str, list[Traces]] = {}
    for arm, rid in zip(runs["arm"], runs["run"], strict=True):
        trace = runset.traces.get(int(rid))
        if trace is not None:
            out.setdefault(arm, []).append(trace)
    return out


@drawing
def learning_curves(runset: RunSet, runs: pd.DataFrame, out: Path) -> list[Path]:
    """``curves_*`` figures for the runs of one data source (one figure per task and page)."""
    plt = _plt()
    files = []
    for (ds, task), g in runs.groupby(["data_source", "task"], sort=True):
        traces = _arm_runs(g, runset)
        labels = g.drop_duplicates("arm").set_index("arm")["label"]
        metric = g["metric"].dropna().iloc[0] if g["metric"].notna().any() else "metric"
        arms = [a for a in labels.index if a in traces]
        for page, chunk in enumerate(_pages(arms), start=1):
            if not chunk:
                continue
            fig, (ax_v, ax_l) = plt.subplots(1, 2, figsize=(12, 4.6))
            colors = plt.get_cmap("tab10" if len(chunk) <= 10 else "tab20")
            vals, losses = [], []
            for i, arm in enumerate(chunk):
                ts = traces[arm]
                n_div = int((g.loc[g["arm"] == arm, "status"] != "completed").sum())
                label = f"{labels[arm]} (n={len(ts)}" + (
                    f", {n_div} not completed)" if n_div else ")"
                )
                val = band([t.val[0] for t in ts], [t.val[1] for t in ts])
                vals.append((val, colors(i), label))
                cols = [c for c in (_grid_column(t, "train_loss") for t in ts) if c is not None]
                loss = band([c[0] for c in cols], [c[1] for c in cols])
                losses.append((loss, colors(i), label))
            _draw_bands(ax_v, vals)
            _draw_bands(ax_l, losses)
            all_v = [b.mean for b, _, _ in vals]
            all_l = [b.mean for b, _, _ in losses]
            for ax, vals, name in ((ax_v, all_v, f"val {metric}"), (ax_l, all_l, "train loss")):
                if vals and _positive_wide(np.concatenate(vals)):
                    ax.set_yscale("log")
                ax.set_xlabel("step")
                ax.set_ylabel(name)
                ax.grid(alpha=0.3)
            ax_v.legend(fontsize=7, loc="best")
            suffix = f" (page {page})" if len(arms) > ARMS_PER_PAGE else ""
            fig.suptitle(f"{task} [{ds}]: learning curves, mean and 95% CI over seeds{suffix}")
            fig.subplots_adjust(left=0.07, right=0.98, bottom=0.12, top=0.88, wspace=0.22)
            name = f"curves_{slug(ds)}_{slug(task)}" + (f"_p{page}" if page > 1 else "") + ".png"
            fig.savefig(out / name, **SAVE)
            close(fig)
            files.append(out / name)
    return files


@drawing
def coefficient_trajectories(runset: RunSet, runs: pd.DataFrame, out: Path) -> list[Path]:
    """``coefficients_*`` figures (one per task and page)."""
    plt = _plt()
    files = []
    for (ds, task), g in runs.groupby(["data_source", "task"], sort=True):
        traces = _arm_runs(g, runset)
        labels = g.drop_duplicates("arm").set_index("arm")["label"]
        arms = [a for a in labels.index if a in traces]
        present = [
            c for c in COEF_PANELS if any(c in t.columns for ts in traces.values() for t in ts)
        ]
        if not present:
            continue
        for page, chunk in enumerate(_pages(arms), start=1):
            if not chunk:
                continue
            cols = min(3, len(present))
            rows = math.ceil(len(present) / cols)
            fig, axes = plt.subplots(rows, cols, figsize=(4.4 * cols, 3.2 * rows), squeeze=False)
            colors = plt.get_cmap("tab10" if len(chunk) <= 10 else "tab20")
            for k, name in enumerate(present):
                ax = axes[k // cols][k % cols]
                beta = name in BETA_LIKE
                per_arm = {}
                for arm in chunk:
                    series = [c for c in (_grid_column(t, name) for t in traces[arm]) if c]
                    if series:
                        per_arm[arm] = (
                            [c[0] for c in series],
                            [1.0 - c[1] if beta else c[1] for c in series],
                        )
                values = [v for _, vs in per_arm.values() for v in vs]
                finite = np.concatenate(values) if values else np.empty(0)
                finite = finite[np.isfinite(finite)]
                log = finite.size > 0 and bool((finite > 0).all())  # sigma = 0: a linear axis
                _draw_bands(
                    ax,
                    [
                        (band(*per_arm[arm], log=log), colors(i), str(labels[arm]))
                        for i, arm in enumerate(chunk)
                        if arm in per_arm
                    ],
                )
                if log and _positive_wide(finite):
                    ax.set_yscale("log")  # else linear: a log axis inside one decade is unreadable
                ax.set_title(f"1 - {name}" if beta else name, fontsize=10)
                ax.set_xlabel("step")
                ax.grid(alpha=0.3)
            for k in range(len(present), rows * cols):
                axes[k // cols][k % cols].axis("off")
            handles, names = axes[0][0].get_legend_handles_labels()
            fig.legend(handles, names, fontsize=7, loc="lower center", ncol=min(4, len(names)))
            suffix = f" (page {page})" if len(arms) > ARMS_PER_PAGE else ""
            fig.suptitle(
                f"{task} [{ds}]: coefficient trajectories, geometric mean and 95% CI{suffix}"
            )
            legend_rows = math.ceil(len(names) / 4)
            fig.subplots_adjust(
                left=0.08,
                right=0.98,
                top=1 - 0.5 / (3.2 * rows),
                bottom=(0.45 + 0.15 * legend_rows) / (3.2 * rows),
                hspace=0.45,
                wspace=0.3,
            )
            name = f"coefficients_{slug(ds)}_{slug(task)}" + (f"_p{page}" if page > 1 else "")
            fig.savefig(out / f"{name}.png", **SAVE)
            close(fig)
            files.append(out / f"{name}.png")
    return files


@drawing
def coupling_scatter(runs: pd.DataFrame, out: Path, top_fraction: float = 0.25) -> list[Path]:
    """``coupling_<source>.png``: AE runs (ablation none) with an lr and a beta axis."""
    plt = _plt()
    files = []
    ae = runs[(runs["ae"].map(lambda v: v is True)) & (runs["ablation"] == "none")]
    if "lr:logmean" not in ae.columns:
        return files
    y = pd.Series(np.nan, index=ae.index)
    for col in ("beta1:horizon", "momentum:horizon"):
        if col in ae.columns:
            y = y.fillna(pd.to_numeric(ae[col], errors="coerce"))
    ae = ae.assign(_x=pd.to_numeric(ae["lr:logmean"], errors="coerce"), _y=y)
    ae = ae[ae["_x"].notna() & ae["_y"].notna()]
    for ds, g in ae.groupby("data_source", sort=True):
        groups = list(g.groupby(["task", "optimizer"], sort=True))
        cols = min(3, len(groups))
        rows = math.ceil(len(groups) / cols)
        fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.8 * rows), squeeze=False)
        for k, ((task, opt), s) in enumerate(groups):
            ax = axes[k // cols][k % cols]
            final = pd.to_numeric(s["final"], errors="coerce")
            mode = s["mode"].dropna().iloc[0] if s["mode"].notna().any() else "min"
            score = -final if mode == "min" else final
            n_top = max(1, math.ceil(top_fraction * int(score.notna().sum())))
            top = score.rank(ascending=False, method="first") <= n_top
            sc = ax.scatter(s["_x"], s["_y"], c=score, cmap="viridis", s=22, alpha=0.85)
            ax.scatter(
                s.loc[top, "_x"],
                s.loc[top, "_y"],
                facecolors="none",
                edgecolors="red",
                s=60,
                lw=1.2,
                label=f"best {top_fraction:.0%}",
            )
            title = f"{task} / {opt}"
            # plain SGD has no momentum: y is constant and r undefined (the verdict says so)
            if int(top.sum()) >= 3 and min(s.loc[top, ["_x", "_y"]].nunique()) > 1:
                r = stats.spearmanr(s.loc[top, "_x"], s.loc[top, "_y"]).statistic
                title += f": Spearman r (best) = {r:.2f}"
            ax.set_title(title, fontsize=9)
            ax.ticklabel_format(useOffset=False)
            ax.locator_params(nbins=4)
            ax.set_xlabel("mean log lr over training")
            ax.set_ylabel("mean log 1/(1-beta1 or momentum)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7, loc="best")
            cb = fig.colorbar(sc, ax=ax)
            cb.set_label("-final" if mode == "min" else "final", fontsize=8)
        for k in range(len(groups), rows * cols):
            axes[k // cols][k % cols].axis("off")
        fig.suptitle(f"Coupling curve [{ds}]: one point per AE run (colour: final score)")
        _margins(fig, left=0.8, right=0.95, bottom=0.6, top=0.8, wspace=0.46, hspace=0.32)
        path = out / f"coupling_{slug(ds)}.png"
        fig.savefig(path, **SAVE)
        close(fig)
        files.append(path)
    return files


@drawing
def profile_plots(profiles: pd.DataFrame, out: Path) -> list[Path]:
    """``profile_<source>.png``: rho(tau) per method, a step function of tau in [1, 4]."""
    plt = _plt()
    files = []
    for ds, g in profiles.groupby("data_source", sort=True):
        fig, ax = plt.subplots(figsize=(7.5, 4.6))
        methods = g["method"].nunique()
        colors = plt.get_cmap("tab10" if methods <= 10 else "tab20")
        for i, (method, m) in enumerate(g.groupby("method", sort=True)):
            m = m.sort_values("tau")
            tau = m["tau"].to_numpy(float)
            ax.step(
                tau, m["rho"].to_numpy(float), where="post", color=colors(i % 20), label=str(method)
            )
            if "rho_low" in m.columns and m["rho_low"].notna().any():
                ax.fill_between(
                    tau,
                    m["rho_low"].to_numpy(float),
                    m["rho_high"].to_numpy(float),
                    step="post",
                    color=colors(i % 20),
                    alpha=0.15,
                    lw=0,
                )
        if float(g["rho"].max()) == 0:
            ax.text(
                0.5,
                0.5,
                "no arm reached its target on any problem",
                ha="center",
                transform=ax.transAxes,
                fontsize=11,
                color="gray",
            )
        ax.set_ylim(-0.02, 1.02)
        ax.set_xlabel("tau (ERT ratio to the fastest arm on the problem)")
        ax.set_ylabel("fraction of problems")
        ax.set_title(f"Performance profiles [{ds}] (AlgoPerf, r_max = 4; bands: bootstrap CI)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc="lower right")
        _margins(fig, left=0.7, right=0.15, bottom=0.55, top=0.35)
        path = out / f"profile_{slug(ds)}.png"
        fig.savefig(path, **SAVE)
        close(fig)
        files.append(path)
    return files


def draw_all(runset: RunSet, runs: pd.DataFrame, profiles: pd.DataFrame, out: Path) -> list[Path]:
    """Every figure into ``out`` (created); the paths written."""
    out.mkdir(parents=True, exist_ok=True)
    files = learning_curves(runset, runs, out)
    files += coefficient_trajectories(runset, runs, out)
    files += coupling_scatter(runs, out)
    files += profile_plots(profiles, out)
    return files
