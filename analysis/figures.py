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

import math
import re
from pathlib import Path

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


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", str(text)).strip("-") or "x"


def band(steps: list[np.ndarray], values: list[np.ndarray], log: bool = False) -> pd.DataFrame:
    """Mean and 95% t-interval at each step over runs (``log``: of log10 values, returned
    exponentiated: a geometric mean and its band). Columns: step, n, mean, low, high."""
    if not steps:
        return pd.DataFrame(columns=["step", "n", "mean", "low", "high"])
    s = np.concatenate(steps).astype(float)
    v = np.concatenate(values).astype(float)
    ok = np.isfinite(v) & np.isfinite(s)
    if log:
        ok &= v > 0
    s, v = s[ok], v[ok]
    if log:
        v = np.log10(v)
    if s.size == 0:
        return pd.DataFrame(columns=["step", "n", "mean", "low", "high"])
    uniq, inv = np.unique(s, return_inverse=True)
    n = np.bincount(inv).astype(float)
    total = np.bincount(inv, weights=v)
    mean = total / n
    sq = np.bincount(inv, weights=(v - mean[inv]) ** 2)
    with np.errstate(invalid="ignore", divide="ignore"):
        sd = np.sqrt(sq / (n - 1))
        half = np.where(n >= 2, stats.t.ppf(0.975, np.maximum(n - 1, 1)) * sd / np.sqrt(n), np.nan)
    low, high = mean - half, mean + half
    if log:
        mean, low, high = 10**mean, 10**low, 10**high
    return pd.DataFrame({"step": uniq, "n": n, "mean": mean, "low": low, "high": high})


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


def _plot_band(ax, frame: pd.DataFrame, color, label: str) -> None:  # noqa: ANN001
    if frame.empty:
        return
    ax.plot(frame["step"], frame["mean"], color=color, lw=1.4, label=label)
    polys = _band_polygons(
        frame["step"].to_numpy(float), frame["low"].to_numpy(float), frame["high"].to_numpy(float)
    )
    if polys:  # one collection per band: cheaper to build and draw than fill_between
        from matplotlib.collections import PolyCollection

        ax.add_collection(PolyCollection(polys, facecolors=color, alpha=0.2, linewidths=0))


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
            all_v, all_l = [], []
            for i, arm in enumerate(chunk):
                ts = traces[arm]
                n_div = int((g.loc[g["arm"] == arm, "status"] != "completed").sum())
                label = f"{labels[arm]} (n={len(ts)}" + (
                    f", {n_div} not completed)" if n_div else ")"
                )
                val = band([t.val[0] for t in ts], [t.val[1] for t in ts])
                _plot_band(ax_v, val, colors(i), label)
                all_v.append(val["mean"].to_numpy(float))
                cols = [c for c in (_grid_column(t, "train_loss") for t in ts) if c is not None]
                loss = band([c[0] for c in cols], [c[1] for c in cols])
                _plot_band(ax_l, loss, colors(i), label)
                all_l.append(loss["mean"].to_numpy(float))
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
            plt.close(fig)
            files.append(out / name)
    return files


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
                for i, arm in enumerate(chunk):
                    if arm in per_arm:
                        frame = band(*per_arm[arm], log=log)
                        _plot_band(ax, frame, colors(i), str(labels[arm]))
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
            plt.close(fig)
            files.append(out / f"{name}.png")
    return files


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
            if int(top.sum()) >= 3 and s.loc[top, "_x"].nunique() > 1:
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
        fig.tight_layout()
        path = out / f"coupling_{slug(ds)}.png"
        fig.savefig(path, **SAVE)
        plt.close(fig)
        files.append(path)
    return files


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
        fig.tight_layout()
        path = out / f"profile_{slug(ds)}.png"
        fig.savefig(path, **SAVE)
        plt.close(fig)
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
