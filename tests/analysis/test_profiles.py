"""Performance profiles with stratified-bootstrap CIs (analysis/tables.py, issue 14 item 5)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis import tables


def runs_table(
    rng: np.random.Generator, n: int, speeds: dict[str, float], miss: dict
) -> pd.DataFrame:
    """``n`` runs per (problem, method); hitting time ~ speed x problem scale x noise, a miss
    (``ttt`` NaN: censored at the budget 1000) with probability ``miss[method]``."""
    rows = []
    for p, scale in (("p1", 100.0), ("p2", 200.0), ("p3", 300.0), ("p4", 150.0)):
        for method, speed in speeds.items():
            for s in range(n):
                t = min(999.0, speed * scale * float(np.exp(rng.normal(0, 0.3))))
                hit = rng.uniform() >= miss.get(method, 0.0)
                rows.append(
                    {
                        "data_source": "synthetic",
                        "task": p,
                        "problem": p,
                        "arm": f"{p}-{method}",
                        "method": method,
                        "label": method,
                        "seed": s,
                        "status": "completed",
                        "mode": "min",
                        "ttt": t if hit else np.nan,
                        "budget": 1000.0,
                        "steps": 1000.0,
                        "target_value": 0.1,
                    }
                )
    return pd.DataFrame(rows)


def profile(table: pd.DataFrame, **kw: object) -> pd.DataFrame:
    ttt = tables.time_to_target_table(table)
    return tables.profiles(ttt, table, n_boot=kw.pop("n_boot", 400), **kw)  # type: ignore[arg-type]


def test_bands_hold_the_point_estimate_and_stay_in_0_1() -> None:
    rng = np.random.default_rng(0)
    prof = profile(runs_table(rng, 6, {"fast": 1.0, "mid": 1.3, "slow": 2.5}, {"mid": 0.2}))
    assert {"rho_low", "rho_high"} <= set(prof.columns)
    assert (prof["rho_low"] <= prof["rho"] + 1e-12).all()
    assert (prof["rho"] <= prof["rho_high"] + 1e-12).all()
    assert prof["rho_low"].between(0, 1).all() and prof["rho_high"].between(0, 1).all()
    for _, m in prof.groupby("method"):  # non-decreasing in tau, like rho
        m = m.sort_values("tau")
        assert (np.diff(m["rho_low"].to_numpy(float)) >= -1e-12).all()


def test_a_clearly_fastest_arm_has_a_tight_band_and_a_noisy_one_a_wide_band() -> None:
    rng = np.random.default_rng(1)
    prof = profile(runs_table(rng, 10, {"fast": 0.5, "a": 1.0, "b": 1.05}, {}))
    at1 = prof[np.isclose(prof["tau"].astype(float), 1.0)].set_index("method")
    assert at1.loc["fast", "rho"] == 1 and at1.loc["fast", "rho_low"] == 1
    # a is about 2x slower than fast on every problem: certain within 4x, uncertain near 2x
    at4 = prof[np.isclose(prof["tau"].astype(float), 4.0)].set_index("method")
    assert at4.loc["a", "rho_low"] == 1 and at4.loc["a", "rho_high"] == 1
    near = prof[(prof["method"] == "a") & prof["tau"].astype(float).between(1.8, 2.2)]
    assert (near["rho_high"] - near["rho_low"]).max() >= 0.5


def test_an_arm_that_never_reaches_is_zero_with_a_zero_band_and_seeds_fix_the_bands() -> None:
    rng = np.random.default_rng(2)
    table = runs_table(rng, 5, {"fast": 1.0, "never": 1.0}, {"never": 1.0})
    prof = profile(table, seed=3)
    never = prof[prof["method"] == "never"]
    assert (never[["rho", "rho_low", "rho_high"]].to_numpy() == 0).all()
    again = profile(table, seed=3)
    pd.testing.assert_frame_equal(prof, again)


def test_without_the_runs_table_there_are_no_bands() -> None:
    rng = np.random.default_rng(4)
    table = runs_table(rng, 5, {"x": 1.0, "y": 1.2}, {})
    prof = tables.profiles(tables.time_to_target_table(table))
    assert "rho_low" not in prof.columns and len(prof)
