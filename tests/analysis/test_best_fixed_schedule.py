"""``a: best_fixed_schedule`` in a prediction (analysis/predictions.py, analysis/verdicts.py) on
synthetic runs: which arms are candidates, which one is picked, and the one-line errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import yaml

from analysis.predictions import PredictionError, load_predictions, validate
from analysis.verdicts import evaluate
from tests.analysis.synth import table_runset

BASE = {
    "claim": "AE beats the best fixed schedule",
    "sweep": "aebench -m task=t ae=off,on schedule=constant,cosine seed='range(8)'",
    "a": "best_fixed_schedule",
    "b": {"ae": True, "schedule": "constant"},
    "metric": "final",
    "direction": "better",
    "threshold": 0.0,
    "alpha": 0.05,
}


def pred(**changes: object):  # noqa: ANN201
    return validate({**BASE, **changes}, "test.yaml", "p")


def _runs(seed_rng: np.random.Generator, n: int = 8) -> list[dict]:
    """Vanilla arms over schedule x lr with known means (cosine at lr 0.1 is the best, 5.0),
    arms that must not be candidates though they score better (a self-tuning optimizer, a
    population arm, an AE arm), and b (AE, constant) at 4.0."""
    means = {
        ("constant", 0.01): 9.0,
        ("constant", 0.1): 6.0,
        ("cosine", 0.01): 8.0,
        ("cosine", 0.1): 5.0,
        ("lr_finder", 0.001): 5.5,
    }
    rows = []
    for s in range(n):
        noise = seed_rng.normal(0, 0.1)
        for (sched, lr), m in means.items():
            rows.append(
                {
                    "ae": False,
                    "swarm": "off",
                    "schedule": sched,
                    "lr": lr,
                    "seed": s,
                    "final": m + noise,
                    "arm": f"{sched}-{lr}",
                }
            )
        rows.append(
            {
                "ae": False,
                "swarm": "off",
                "optimizer": "prodigy",
                "self_tuning": True,
                "schedule": "constant",
                "lr": 1.0,
                "seed": s,
                "final": 1.0 + noise,
                "arm": "prodigy",
            }
        )
        rows.append(
            {
                "ae": False,
                "swarm": "pbt",
                "schedule": "constant",
                "lr": 0.1,
                "seed": s,
                "final": 2.0 + noise,
                "arm": "pbt",
            }
        )
        rows.append(
            {
                "ae": True,
                "swarm": "off",
                "schedule": "constant",
                "lr": 0.1,
                "seed": s,
                "final": 4.0 + noise + seed_rng.normal(0, 0.05),
                "arm": "ae",
            }
        )
    return rows


def test_the_shorthand_expands_to_vanilla_runs_and_implies_best() -> None:
    p = pred()
    assert p.a_named == "best_fixed_schedule" and p.select_a == "best"
    assert p.a == {"ae": (False,), "swarm": ("off",)}
    assert p.a_not == {"self_tuning": (True,)}  # by the trait the records carry, not by name
    assert pred(select_a="best").select_a == "best"  # saying it again is fine


def test_a_run_is_self_tuning_by_its_record_and_by_name_only_for_old_records() -> None:
    from analysis.runs import self_tuning

    assert self_tuning({"optimizer": "my_opt", "optimizer_traits": {"self_tuning": True}})
    assert not self_tuning({"optimizer": "prodigy", "optimizer_traits": {}})  # the record wins
    assert self_tuning({"optimizer": "prodigy"})  # written before optimizer_traits existed
    assert not self_tuning({"optimizer": "adamw"})


def test_a_self_tuning_optimizer_of_any_name_is_no_candidate() -> None:
    rng = np.random.default_rng(3)
    rows = _runs(rng)
    for r in rows:  # a plug-in the analysis has never heard of, better than every fixed arm
        if r.get("optimizer") == "prodigy":
            r["optimizer"], r["arm"] = "my_self_tuner", "my_self_tuner"
    _, evidence = evaluate([pred()], table_runset(rows), n_boot=200)
    assert "cosine-0.1" in evidence.iloc[0]["label_a"]


def test_the_best_vanilla_schedule_and_lr_is_picked_per_stratum() -> None:
    rng = np.random.default_rng(0)
    verdicts, evidence = evaluate([pred()], table_runset(_runs(rng)), n_boot=200)
    assert len(evidence) == 1
    ev = evidence.iloc[0]
    assert "best of 5 arms" in ev["label_a"] and "cosine-0.1" in ev["label_a"]
    assert ev["mean_a"] == pytest.approx(5.0, abs=0.2) and ev["mean_b"] == pytest.approx(
        4.0, abs=0.2
    )
    assert verdicts["verdict"].iloc[0] == "supported"


def test_a_stronger_fixed_schedule_refutes() -> None:
    rng = np.random.default_rng(1)
    rows = _runs(rng)
    for r in rows:  # AE now worse than the best fixed schedule (5.0)
        if r["arm"] == "ae":
            r["final"] += 2.0
    verdicts, _ = evaluate([pred()], table_runset(rows), n_boot=200)
    assert verdicts["verdict"].iloc[0] == "refuted"


def test_per_optimizer_strata_pick_a_winner_for_each() -> None:
    rng = np.random.default_rng(2)
    rows = []
    for opt, shift in (("adamw", 0.0), ("sgdm", 1.0)):
        for r in _runs(rng):
            if r.get("optimizer") == "prodigy":
                continue
            rows.append(
                {**r, "optimizer": opt, "final": r["final"] + shift, "arm": f"{opt}-{r['arm']}"}
            )
    _, evidence = evaluate(
        [pred(strata=["task", "optimizer", "scale"])], table_runset(rows), n_boot=200
    )
    assert sorted(evidence["stratum"]) == [
        "task=t optimizer=adamw scale=smoke",
        "task=t optimizer=sgdm scale=smoke",
    ]
    assert all("cosine-0.1" in label for label in evidence["label_a"])


@pytest.mark.parametrize(
    "changes,needle",
    [
        (
            {"strata": ["task", "schedule"]},
            "strata=['task', 'schedule']: a: best_fixed_schedule "
            "selects over schedule and optimizer.lr, so schedule cannot be one",
        ),
        ({"strata": ["task", "config.optimizer.lr"]}, "config.optimizer.lr cannot be one"),
        ({"strata": ["task", "config.schedule.warmup_frac"]}, "config.schedule.warmup_frac"),
        ({"pair_on": ["seed", "lr"]}, "pair_on="),
        ({"select_a": "all"}, "select_a='all': a: best_fixed_schedule implies best"),
        (
            {"a": "best_fixed_scheduel"},
            "a='best_fixed_scheduel': a filter mapping or one of best_fixed_schedule",
        ),
    ],
)
def test_bad_uses_fail_with_one_line(changes: dict, needle: str) -> None:
    with pytest.raises(PredictionError) as err:
        pred(**changes)
    assert needle in str(err.value) and "\n" not in str(err.value)
    assert str(err.value).startswith("test.yaml: ")


def test_a_prediction_file_can_name_it(tmp_path: Path) -> None:
    raw = {
        **BASE,
        "runs": {"drifts": True},
        "strata": ["task", "optimizer", "swarm", "scale"],
        "effect": "relative",
        "direction": "decrease",
        "metric": "recovery",
        "threshold": 0.5,
    }
    (tmp_path / "drift.yaml").write_text(yaml.safe_dump(raw))
    (p,) = load_predictions([tmp_path])
    assert p.name == "drift" and p.a_named == "best_fixed_schedule"


def test_runs_best_names_the_grid_winner_among_fully_completed_arms() -> None:
    """``python -m analysis.runs --best`` (analysis.runs.best_arms): the best mean final among
    arms whose every run completed; an arm with a diverged seed is no candidate."""
    import pandas as pd

    from analysis.runs import best_arms

    rows = []
    for sched, lr, finals, statuses in (
        ("constant", 0.1, [0.30, 0.32], ["completed"] * 2),
        ("cosine", 0.1, [0.20, 0.22], ["completed"] * 2),
        ("cosine", 1.0, [0.01, None], ["completed", "diverged"]),  # best seed, but diverged
        ("lr_finder", 0.001, [0.25, 0.27], ["completed"] * 2),
    ):
        for seed, (final, status) in enumerate(zip(finals, statuses, strict=True)):
            rows.append(
                {
                    "data_source": "synthetic",
                    "task": "t",
                    "scale": "cpu",
                    "optimizer": "adamw",
                    "ae": False,
                    "swarm": "off",
                    "schedule": sched,
                    "lr": lr,
                    "tuned_lr": 0.02 if sched == "lr_finder" else None,
                    "seed": seed,
                    "status": status,
                    "final": final,
                    "mode": "min",
                    "arm": f"{sched}-{lr}",
                }
            )
    best = best_arms(pd.DataFrame(rows))
    assert len(best) == 1
    win = best.iloc[0]
    assert (win["schedule"], win["lr"], win["candidates"]) == ("cosine", 0.1, 3)
    assert win["final_mean"] == pytest.approx(0.21) and win["runner_up"] == "lr_finder lr=0.001"
    maxed = pd.DataFrame(rows).assign(mode="max")
    assert best_arms(maxed).iloc[0]["schedule"] == "constant"
