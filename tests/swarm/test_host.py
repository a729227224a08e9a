"""Population runs through the real runner: records, curves, weights never copied by AE-Swarm,
PBT's copies, a diverged trajectory, pairing and matched compute across the population arms."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import aebench.swarm.callback as host
from aebench.preflight import preflight
from aebench.seeding import tensor_hash
from aebench.validation import ConfigError, validate_config
from tests.helpers import compose_config, read_curves, run_in_process

#: 48 total trajectory-steps in 4 rounds of 12 over M=4 trajectories
SMALL = ["task=regression", "scale=smoke", "steps=48", "swarm.rounds=4", "trainer.threads=1"]


def phash(t: host.Trajectory) -> str:
    return tensor_hash(*t.model.parameters())


class Spy:
    """Watches every trajectory's parameters around every Lightning step.

    ``changes`` lists ``(step, index, why)`` for every parameter change that was *not* the
    trajectory's own optimizer step (a round's actions, or anything between steps); ``own``
    counts own steps and ``own_unchanged`` those that left the parameters as they were.
    """

    def __init__(self) -> None:
        self.last: dict[int, str] = {}
        self.changes: list[tuple[int, int, str]] = []
        self.own = 0
        self.own_unchanged = 0
        self.stepping: int | None = None
        self.copies_checked = 0
        self.cb: host.SwarmCallback | None = None
        #: (active trajectory, every trajectory's device) before each step
        self.placements: list[tuple[int, list[str]]] = []

    def check_all(self, cb: host.SwarmCallback, step: int, why: str) -> None:
        for t in cb.trajs:
            h = phash(t)
            if t.index in self.last and h != self.last[t.index]:
                self.changes.append((step, t.index, why))
            self.last[t.index] = h

    def before(self, cb: host.SwarmCallback, pl_module) -> None:  # noqa: ANN001
        self.cb = cb
        self.check_all(cb, -1, "between steps")
        self.stepping = pl_module.active
        self.placements.append((pl_module.active, [t.device for t in cb.trajs]))

    def own_step(self, cb: host.SwarmCallback) -> None:
        """Record the stepping trajectory's parameters after its own step (once per step)."""
        if self.stepping is None:
            return
        t = cb.trajs[self.stepping]
        h = phash(t)
        self.own += 1
        self.own_unchanged += int(h == self.last[t.index])
        self.last[t.index] = h
        self.stepping = None

    def round_end(self, cb: host.SwarmCallback, step: int) -> None:
        """After a round's actions: every change now is the rule's doing; check PBT's copies."""
        d = cb.decisions[-1]
        for dst, src in d.copies:
            a, b = cb.trajs[dst], cb.trajs[src]
            assert phash(a) == phash(b)
            sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
            for k in sb:
                for name, v in sb[k].items():
                    assert torch.equal(sa[k][name], v), name
            if a.control is not None:
                assert a.control.state_dict()["t"] == b.control.state_dict()["t"]
            self.copies_checked += 1
        self.check_all(cb, step, f"round {d.round} end")


@contextmanager
def spying(
    mutate: Callable[[list[host.Trajectory]], None] | None = None,
    configure: Callable[[host.SwarmCallback], None] | None = None,
) -> Iterator[Spy]:
    """Patch the host so that a :class:`Spy` sees every step (``mutate`` the population and
    ``configure`` the callback before training)."""
    spy = Spy()
    original_end = host.SwarmCallback.on_train_batch_end
    original_round = host.SwarmCallback._end_round
    original_build = host.build_population

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:  # noqa: ANN001
        spy.before(self, pl_module)

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:  # noqa: ANN001
        original_end(self, trainer, pl_module, outputs, batch, batch_idx)
        spy.own_step(self)

    def end_round(self, trainer, pl_module, step: int) -> None:  # noqa: ANN001
        spy.own_step(self)
        original_round(self, trainer, pl_module, step)
        spy.round_end(self, step)

    def build(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        module, cb = original_build(*args, **kwargs)
        if mutate is not None:
            mutate(module.population)
        if configure is not None:
            configure(cb)
        return module, cb

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(host.SwarmCallback, "on_train_batch_start", on_train_batch_start, raising=False)
        mp.setattr(host.SwarmCallback, "on_train_batch_end", on_train_batch_end)
        mp.setattr(host.SwarmCallback, "_end_round", end_round)
        mp.setattr(host, "build_population", build)
        yield spy


@pytest.fixture(scope="module")
def swarm_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Spy]:
    out = tmp_path_factory.mktemp("swarm_on")
    with spying() as spy:
        _, data = run_in_process([*SMALL, "swarm=on", "ae=on", "seed=1"], out, reraise=True)
    return data, out, spy


@pytest.fixture(scope="module")
def pbt_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict, Path, Spy]:
    out = tmp_path_factory.mktemp("pbt")
    with spying() as spy:
        _, data = run_in_process([*SMALL, "swarm=pbt", "ae=on", "seed=1"], out, reraise=True)
    return data, out, spy


def test_swarm_on_records_the_population(swarm_run: tuple[dict, Path, Spy]) -> None:
    data, out, _ = swarm_run
    assert data["status"] == "completed" and data["swarm"] == "on" and data["ae"] is True
    assert data["steps"] == data["budget"] == 48  # total trajectory-steps
    pop = data["population"]
    assert pop["rule"] == "AESwarmRule" and pop["size"] == 4 and pop["round_steps"] == [12] * 4
    assert [sum(b) for b in pop["budgets"]] == [12] * 4
    assert all(min(b) >= pop["b_min"] for b in pop["budgets"])
    per = pop["per_trajectory"]
    assert sum(t["steps"] for t in per) == 48
    finals = [t["final"] for t in per]
    assert data["metric"]["final"] == min(finals) == finals[pop["selected"]]
    assert pop["mean_final"] == pytest.approx(sum(finals) / 4)
    assert per[0]["priors"] == dict.fromkeys(per[0]["priors"], 1.0)  # the centre
    assert per[0]["init_hash"] == data["pairing"]["init_hash"]  # trajectory 0 = the single run
    assert len({t["init_hash"] for t in per}) == 4
    assert len({round(t["priors"]["alpha"], 12) for t in per}) == 4


def test_swarm_on_curves_carry_rounds_and_trajectories(swarm_run: tuple[dict, Path, Spy]) -> None:
    data, out, _ = swarm_run
    rows = read_curves(out / "curves.csv")
    cols = set(rows[0])
    for i in range(4):
        for name in ("score", "weight", "budget", "lr", "beta1", "train_loss", "val_mse"):
            assert f"{name}/traj{i}" in cols, f"{name}/traj{i}"
    ends = [r for r in rows if r["round"]]
    assert [int(float(r["round"])) for r in ends] == [1, 2, 3, 4]
    assert [int(r["step"]) for r in ends] == [12, 24, 36, 48]
    for r in ends:
        assert sum(float(r[f"weight/traj{i}"]) for i in range(4)) == pytest.approx(1.0)
    starts = [r for r in rows if r["budget/traj0"]]
    assert [int(r["step"]) for r in starts] == [0, 12, 24, 36]
    for r in starts:
        assert sum(int(float(r[f"budget/traj{i}"])) for i in range(4)) == 12
    vals = [float(r["val_mse"]) for r in rows if r["val_mse"]]
    assert vals[-1] == pytest.approx(data["metric"]["final"])


def test_swarm_on_never_copies_weights(swarm_run: tuple[dict, Path, Spy]) -> None:
    _, _, spy = swarm_run
    assert spy.own == 48 and spy.own_unchanged == 0  # every own step moved its parameters
    assert spy.changes == []  # and nothing else ever did: no copy, no dither (off)
    assert spy.cb is not None and spy.cb.copies == 0


def test_dither_changes_only_the_worst_trajectory(tmp_path: Path) -> None:
    with spying() as spy:
        run_in_process(
            [*SMALL, "swarm=on", "ae=on", "swarm.rule.dither=1e-3"], tmp_path, reraise=True
        )
    dithered = [d.dither for d in spy.cb.decisions if d.dither is not None]
    assert len(dithered) == 3  # every round but the last
    assert spy.changes == [(12 * (r + 1), i, f"round {r} end") for r, i in enumerate(dithered)]


def test_only_the_trajectory_being_trained_is_on_the_training_device(tmp_path: Path) -> None:
    """On a CPU-only machine the training device and the offload device are both the CPU; an
    offload device of ``cpu:0`` (the same memory, another name) makes the placement visible."""

    def offload_elsewhere(cb: host.SwarmCallback) -> None:
        cb.offload = torch.device("cpu", 0)

    with spying(configure=offload_elsewhere) as spy:
        run_in_process([*SMALL, "swarm=pbt", "ae=on"], tmp_path, reraise=True)
    assert len(spy.placements) == 48
    for active, devices in spy.placements:
        assert devices[active] == "cpu"
        assert [i for i, d in enumerate(devices) if d == "cpu"] == [active]
    assert [t.device for t in spy.cb.trajs] == ["cpu:0"] * 4  # all back after training


def test_pbt_copies_weights_and_state_from_the_top(pbt_run: tuple[dict, Path, Spy]) -> None:
    data, out, spy = pbt_run
    assert data["status"] == "completed" and data["steps"] == 48
    pop = data["population"]
    assert pop["rule"] == "PBTRule" and pop["copies"] == 3  # one per round but the last
    assert spy.copies_checked == 3
    copied = {(r, i) for r, d in enumerate(spy.cb.decisions) for i, _ in d.copies}
    assert {(int(step) // 12 - 1, i) for step, i, _ in spy.changes} == copied
    rows = read_curves(out / "curves.csv")
    assert sum(1 for r in rows for i in range(4) if r.get(f"donor/traj{i}")) == 3
    assert pop["budgets"] == [[3, 3, 3, 3]] * 4  # PBT reallocates no compute


@pytest.fixture(scope="module")
def four_arms(
    tmp_path_factory: pytest.TempPathFactory,
    swarm_run: tuple[dict, Path, Spy],
    pbt_run: tuple[dict, Path, Spy],
) -> dict[str, tuple[dict, Path, Spy]]:
    """The acceptance sweep in small: every population arm, one seed, in-process."""
    arms = {"on": swarm_run, "pbt": pbt_run}
    for arm in ("pbt_nocopy", "independent"):
        out = tmp_path_factory.mktemp(arm)
        with spying() as spy:
            _, data = run_in_process([*SMALL, f"swarm={arm}", "ae=on", "seed=1"], out, reraise=True)
        arms[arm] = (data, out, spy)
    return arms


def test_nocopy_and_independent_keep_weights_and_match_compute(
    four_arms: dict[str, tuple[dict, Path, Spy]],
) -> None:
    for arm in ("pbt_nocopy", "independent"):
        spy = four_arms[arm][2]
        assert spy.changes == [] and spy.cb.copies == 0, arm
    records = [data for data, _, _ in four_arms.values()]
    # the same budget, the same spent compute, the same population at the start
    assert {r["steps"] for r in records} == {r["budget"] for r in records} == {48}
    hashes = {tuple(t["init_hash"] for t in r["population"]["per_trajectory"]) for r in records}
    priors = {
        tuple(t["priors"]["alpha"] for t in r["population"]["per_trajectory"]) for r in records
    }
    assert len(hashes) == len(priors) == 1
    assert len({r["arm"] for r in records}) == 4


def test_the_analysis_compares_the_population_arms(
    four_arms: dict[str, tuple[dict, Path, Spy]],
) -> None:
    from analysis.arms import annotate
    from analysis.collect import load_runs
    from analysis.predictions import default_predictions_dir, load_predictions
    from analysis.verdicts import evaluate

    runset = load_runs([out for _, out, _ in four_arms.values()])
    annotate(runset)
    assert sorted(runset.table["swarm"]) == ["independent", "on", "pbt", "pbt_nocopy"]
    preds = [
        p for p in load_predictions([default_predictions_dir()]) if p.name.startswith("swarm_vs_")
    ]
    assert {p.name for p in preds} == {
        "swarm_vs_pbt",
        "swarm_vs_pbt_nocopy",
        "swarm_vs_independent",
    }
    verdicts, evidence = evaluate(preds, runset, n_boot=200)
    assert len(verdicts) == 3
    assert set(verdicts["stratum"].str.split().str[0]) == {"problem=regression"}
    # one seed: paired and compute-matched, but too few pairs for a verdict
    assert (verdicts["verdict"] == "inconclusive").all()
    assert verdicts["reason"].str.contains("too few").all()
    assert not verdicts["reason"].str.contains("compute not matched").any()
    assert set(evidence["metric"]) == {"time_to_target", "final", "divergence"}


def test_a_diverged_trajectory_gets_the_minimum_and_the_population_goes_on(
    tmp_path: Path,
) -> None:
    def poison(pop: list[host.Trajectory]) -> None:
        task, loss = pop[2].task, pop[2].task.loss
        calls = {"n": 0}

        def nan_after_two(model, batch):  # noqa: ANN001, ANN202
            calls["n"] += 1
            out = loss(model, batch)
            return out * float("nan") if calls["n"] > 2 else out

        task.loss = nan_after_two

    with spying(poison):
        _, data = run_in_process(
            [*SMALL, "swarm=on", "ae=on", "swarm.rule.beta=0.0"], tmp_path, reraise=True
        )
    pop = data["population"]
    per = pop["per_trajectory"]
    assert data["status"] == "completed"
    assert [t["status"] for t in per] == ["alive", "alive", "diverged", "alive"]
    assert per[2]["steps"] == 3 and per[2]["final"] is None
    # beta=0: equal weights for the living, exactly B_min for the diverged one, every round
    assert all(b[2] == pop["b_min"] for b in pop["budgets"][1:])
    assert [sum(b) for b in pop["budgets"]] == [12] * 4
    # its unspent slices are the only compute not spent; the others trained to the end
    assert data["steps"] == 48 - 3 * pop["b_min"] and data["budget"] == 48
    assert data["incidents"] == {"nonfinite": 1, "divergence": 1, "lr_cliffs": 0}
    assert math.isfinite(data["metric"]["final"]) and pop["selected"] != 2


def test_swarm_on_is_deterministic(swarm_run: tuple[dict, Path, Spy], tmp_path: Path) -> None:
    data, out, _ = swarm_run
    _, again = run_in_process([*SMALL, "swarm=on", "ae=on", "seed=1"], tmp_path, reraise=True)
    assert (tmp_path / "curves.csv").read_text() == (out / "curves.csv").read_text()
    assert again["population"]["budgets"] == data["population"]["budgets"]


def test_swarm_on_needs_ae_and_enough_steps_per_round() -> None:
    cfg, _ = compose_config(["swarm=on"])
    with pytest.raises(ConfigError, match="ae.enabled=false.*add ae=on"):
        validate_config(cfg)
    for argv, words in (
        (["swarm=on"], ["ae=on"]),
        (["-m", "swarm=on,pbt", "ae=off"], ["ae=on"]),
        (["swarm=pbt", "swarm.rounds=20"], ["swarm.rounds=20", "per round"]),
        (["swarm=on", "ae=on", "swarm.rule.kappa=2"], ["swarm.rule.kappa", "[0, 1]"]),
        (["swarm=pbt", "swarm.rule.quantile=0.8"], ["swarm.rule.quantile", "0.5"]),
    ):
        with pytest.raises(ConfigError) as info:
            preflight(argv)
        assert "\n" not in str(info.value)
        for w in words:
            assert w in str(info.value), (w, str(info.value))
    for arm in ("pbt", "pbt_nocopy", "independent"):  # the baselines run with ae=off too
        validate_config(compose_config([f"swarm={arm}"])[0])


@pytest.mark.parametrize(
    "extra",
    [
        ["swarm=on", "ae=on", "schedule=onecycle"],
        ["swarm=pbt", "ae=off", "optimizer=sgdm", "schedule=cosine"],
    ],
    ids=["aeswarm-onecycle", "pbt-vanilla-sgdm-cosine"],
)
def test_schedules_hold_their_last_value_beyond_a_trajectorys_share(
    extra: list[str], tmp_path: Path
) -> None:
    """A trajectory's schedule spans its equal share (12 steps here); one that AE-Swarm gives
    more holds the last scheduled value (OneCycleLR would raise, cosine would reach lr = 0)."""
    with spying() as spy:
        _, data = run_in_process([*SMALL, *extra], tmp_path, reraise=True)
    assert data["status"] == "completed" and data["steps"] == 48
    for t in spy.cb.trajs:
        assert t.schedule.last_epoch == min(t.steps, 12 - 1)
        assert all(g["lr"] > 0 for g in t.optimizer.param_groups)
    if "swarm=on" in extra:
        assert max(t.steps for t in spy.cb.trajs) > 12
