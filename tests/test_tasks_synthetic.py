"""The resonance, plateau and reward-drift tasks: quadratic_delay, plateau, cartpole_drift.

End to end at scale=smoke with AE off and on, plus direct checks of what each task claims: the
stale-gradient semantics, the flat start, the drift switches and the unscaled returns.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from aebench.preflight import preflight
from aebench.task import ConfigError
from tasks.cartpole_drift import CartPoleDriftTask, discounted_returns
from tasks.plateau import PlateauTask
from tasks.quadratic_delay import QuadraticDelayTask
from tests.helpers import read_curves, run_in_process

TASKS = ("quadratic_delay", "plateau", "cartpole_drift")
#: curve columns each task adds through train_log
TASK_COLUMNS = {
    "quadratic_delay": {"subopt", "stiff", "overshoot", "rate", "grad_cos"},
    "plateau": {"plateau_level", "saturation"},
    "cartpole_drift": {
        "drift_phase",
        "return_unscaled",
        "return_seen",
        "reward_scale",
        "reward_shift",
        "episodes",
        "shortfall",
        "critic_loss",
        "surrogate",
    },
}


def floats(rows: list[dict[str, str]], column: str) -> list[float]:
    return [float(r[column]) for r in rows if r.get(column, "") != ""]


# ------------------------------------------------------------------ end to end
@pytest.mark.parametrize("ae", ["off", "on"])
@pytest.mark.parametrize("task", TASKS)
def test_task_runs_at_smoke_scale(task: str, ae: str, tmp_path: Path) -> None:
    _, rec = run_in_process([f"task={task}", f"ae={ae}", "trainer.threads=1"], tmp_path)
    assert rec["status"] == "completed", rec["error"]
    assert rec["steps"] == rec["budget"] > 0
    assert rec["ae"] is (ae == "on")
    assert math.isfinite(rec["metric"]["final"])
    rows = read_curves(tmp_path / "curves.csv")
    assert TASK_COLUMNS[task] <= set(rows[0])
    assert floats(rows, "train_loss"), "no training loss logged"
    if ae == "on":
        assert floats(rows, "rho"), "AE's curves carry rho"


def test_cartpole_curves_show_drift_switches_and_unscaled_returns(tmp_path: Path) -> None:
    _, rec = run_in_process(["task=cartpole_drift", "trainer.threads=1"], tmp_path)
    cfg = rec["config"]["task"]
    per_step = cfg["batch_size"]
    every = cfg["drift"]["every_episodes"]["smoke"]
    phases = cfg["drift"]["phases"]
    rows = [r for r in read_curves(tmp_path / "curves.csv") if r["train_loss"] != ""]
    steps = [int(r["step"]) for r in rows]
    phase = [int(float(r["drift_phase"])) for r in rows]
    assert phase == [(s - 1) * per_step // every for s in steps]
    assert len(set(phase)) >= 3, "smoke scale must show at least two switches"
    for r, k in zip(rows, phase, strict=True):
        c, b = float(r["reward_scale"]), float(r["reward_shift"])
        assert (c, b) == (phases[k % len(phases)]["scale"], phases[k % len(phases)]["shift"])
        unscaled = float(r["return_unscaled"])
        # CartPole pays +1 per step: the unscaled return is the length, in [1, 500]
        assert 1 <= unscaled <= 500
        assert float(r["return_seen"]) == pytest.approx((c + b) * unscaled, rel=1e-5)
    assert float(rows[-1]["episodes"]) == steps[-1] * per_step


def test_every_task_sweeps_through_the_preflight() -> None:
    preflight(["-m", f"task={','.join(TASKS)}", "ae=off,on", "scale=smoke"])
    preflight(["-m", f"task={','.join(TASKS)}", "scale=cpu,paper"])


@pytest.mark.parametrize(
    ("argv", "key"),
    [
        (["task=quadratic_delay", "task.dely=2"], "dely"),
        (["task=plateau", "task.init_offset=abc"], "task.init_offset"),
        (["task=cartpole_drift", "task.drift.every=3"], "every"),
    ],
)
def test_task_typos_fail_in_the_preflight(argv: list[str], key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        preflight(argv)


# ------------------------------------------------------------------ quadratic_delay
def run_sgd(task: QuadraticDelayTask, lr: float, steps: int) -> tuple[list, list, list]:
    """Train with plain SGD through the task; return the iterates, applied grads and losses."""
    model = task.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    batches = task.train_batches()
    xs, grads, losses = [model.x.detach().clone()], [], []
    for _ in range(steps):
        opt.zero_grad()
        loss = task.loss(model, next(batches))
        loss.backward()
        grads.append(model.x.grad.clone())
        losses.append(loss.item())
        opt.step()
        xs.append(model.x.detach().clone())
    return xs, grads, losses


def test_quadratic_bowl_has_the_stated_condition_and_start() -> None:
    task = QuadraticDelayTask(seed=0, dim=20, condition=100.0, start_distance=2.0)
    eig = torch.linalg.eigvalsh(task.hessian.double())
    assert eig.max().item() == pytest.approx(1.0, rel=1e-4)
    assert (eig.max() / eig.min()).item() == pytest.approx(100.0, rel=1e-3)
    assert task.f(task.x_star).item() == 0.0
    # f(x_0) is that of an even spread of length start_distance, the same for every seed ...
    other = QuadraticDelayTask(seed=5, dim=20, condition=100.0, start_distance=2.0)
    assert task.f0 == pytest.approx(other.f0, rel=1e-5)
    assert task.f0 == pytest.approx(0.5 * 4.0 * eig.mean().item(), rel=1e-4)
    assert not torch.equal(task.x_star, other.x_star)
    # ... the stiffest mode starts at the same amplitude relative to the rest ...
    assert abs(task.c0) > 0.1 * (task.start - task.x_star).norm().item()
    # ... but the spread over the modes differs, so seeds are real repeats even for plain GD
    run_sgd(task, lr=0.5, steps=100)
    run_sgd(other, lr=0.5, steps=100)
    assert task.train_log()["subopt"] != pytest.approx(other.train_log()["subopt"], rel=1e-3)


def test_quadratic_delay_zero_is_plain_gradient_descent() -> None:
    task = QuadraticDelayTask(seed=1, dim=10, condition=50.0, delay=0)
    xs, grads, losses = run_sgd(task, lr=0.5, steps=30)
    x = task.start.clone()
    for t in range(30):
        g = task.hessian @ (x - task.x_star)
        assert torch.allclose(grads[t], g, atol=1e-6)
        assert losses[t] == pytest.approx(task.f(x).item(), rel=1e-5)
        x = x - 0.5 * g
        assert torch.allclose(xs[t + 1], x, atol=1e-5)


@pytest.mark.parametrize("k", [1, 3])
def test_quadratic_delay_applies_the_gradient_of_k_steps_back(k: int) -> None:
    task = QuadraticDelayTask(seed=2, dim=10, condition=50.0, delay=k)
    xs, grads, losses = run_sgd(task, lr=0.3, steps=25)
    for t in range(25):
        stale = xs[max(t - k, 0)]
        assert torch.allclose(grads[t], task.grad(stale), atol=1e-6)
        assert losses[t] == pytest.approx(task.f(stale).item(), rel=1e-5)
    # not the gradient at the live point once the queue is full (the delay is real)
    assert not torch.allclose(grads[10], task.grad(xs[10]), atol=1e-3)


def test_quadratic_delay_noise_is_added_at_the_stale_point() -> None:
    task = QuadraticDelayTask(seed=3, dim=5, delay=2, grad_noise=0.5)
    model = task.build_model()
    batches = task.train_batches()
    noise = next(batches)
    model.zero_grad()
    task.loss(model, noise).backward()
    assert torch.allclose(model.x.grad, task.grad(task.start) + noise, atol=1e-6)
    assert noise.std().item() > 0.1


def test_quadratic_delay_makes_the_stiff_mode_overshoot() -> None:
    # delay 4 at lr 0.3: below the delayed stability limit 2 sin(pi / 18) ~ 0.35 but far past
    # the critically damped step, so the stiff mode rings; no delay at a small lr: no overshoot
    ringing = QuadraticDelayTask(seed=0, dim=10, condition=100.0, delay=4)
    run_sgd(ringing, lr=0.3, steps=200)
    calm = QuadraticDelayTask(seed=0, dim=10, condition=100.0, delay=0)
    run_sgd(calm, lr=0.1, steps=200)
    assert ringing.train_log()["overshoot"] > 0.3
    assert calm.train_log()["overshoot"] == 0.0
    assert calm.train_log()["rate"] > 0
    assert calm.train_log()["grad_cos"] > 0.9  # consecutive plain-GD gradients align
    # past the delayed stability limit the oscillation runs away
    runaway = QuadraticDelayTask(seed=0, dim=10, condition=100.0, delay=4)
    run_sgd(runaway, lr=0.5, steps=200)
    log = runaway.train_log()
    assert log["overshoot"] > 10 and log["rate"] < 0


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"dim": 1}, "task.dim"), ({"condition": 0.5}, "task.condition"), ({"delay": -1}, "delay")],
)
def test_quadratic_delay_rejects_bad_values(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        QuadraticDelayTask(seed=0, **kwargs)


# ------------------------------------------------------------------ plateau
def grad_norm(task: PlateauTask, model: torch.nn.Module) -> float:
    model.zero_grad()
    task.loss(model, (task.x_train, task.y_train)).backward()
    return torch.cat([p.grad.flatten() for p in model.parameters()]).norm().item()


def test_plateau_is_flat_at_init() -> None:
    torch.manual_seed(0)
    flat = PlateauTask(seed=0)
    model = flat.build_model()
    torch.manual_seed(0)
    steep = PlateauTask(seed=0, init_offset=0.0)
    steep_model = steep.build_model()
    assert grad_norm(flat, model) < 1e-3 * grad_norm(steep, steep_model)
    # the loss sits at about E[y^2] (the model predicts ~0) and plain SGD barely moves it
    assert flat.plateau_level == pytest.approx((flat.y_train**2).mean().item(), rel=1e-3)
    before = flat.evaluate(model)
    opt = torch.optim.SGD(model.parameters(), lr=1.0)
    batches = flat.train_batches()
    for _ in range(50):
        opt.zero_grad()
        flat.loss(model, next(batches)).backward()
        opt.step()
    assert abs(flat.evaluate(model) - before) < 0.01 * before
    assert flat.exit_step is None and math.isnan(flat.train_log()["plateau_exit_step"])
    assert flat.train_log()["saturation"] < 1e-3


def test_plateau_exit_is_logged_at_the_first_step_below_the_fraction() -> None:
    torch.manual_seed(0)
    task = PlateauTask(seed=1, init_offset=4.0)
    model = task.build_model()
    opt = torch.optim.SGD(model.parameters(), lr=10.0)
    batches = task.train_batches()
    losses = []
    for _ in range(400):
        opt.zero_grad()
        loss = task.loss(model, next(batches))
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert task.exit_step is not None, "SGD at lr 10 leaves a plateau of depth 4"
    threshold = task.exit_fraction * task.plateau_level
    # losses[t] is the loss of the weights after t updates: the exit is the first such t
    assert losses[task.exit_step] <= threshold
    assert all(v > threshold for v in losses[: task.exit_step])
    assert task.train_log()["plateau_exit_step"] == task.exit_step
    assert task.evaluate(model) < 0.2 * task.plateau_level


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [({"exit_fraction": 1.0}, "task.exit_fraction"), ({"hidden": 0}, "task.hidden")],
)
def test_plateau_rejects_bad_values(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        PlateauTask(seed=0, **kwargs)


# ------------------------------------------------------------------ cartpole_drift
DRIFT = {
    "every_episodes": {"smoke": 8, "cpu": 16, "paper": 32},
    "phases": [{"scale": 1.0, "shift": 0.0}, {"scale": 10.0, "shift": 0.0}],
}


def test_discounted_returns() -> None:
    g = discounted_returns(torch.tensor([1.0, 2.0, 3.0]), gamma=0.5)
    assert g.tolist() == pytest.approx([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3.0])


def test_cartpole_drift_phase_follows_episodes() -> None:
    task = CartPoleDriftTask(seed=0, batch_size=4, run_scale="cpu", drift=DRIFT)
    # 16 episodes per phase, 4 per step: steps 1-4 are phase 0, 5-8 phase 1, ...
    assert [task.drift_phase(s) for s in range(10)] == [0, 0, 0, 0, 0, 1, 1, 1, 1, 2]
    assert task.reward_transform(16) == (10.0, 0.0)
    assert task.reward_transform(32) == (1.0, 0.0)  # the phases cycle
    assert CartPoleDriftTask(seed=0, batch_size=4, drift=None).drift_phase(100) is None


def test_cartpole_reward_and_logs_follow_the_active_phase() -> None:
    task = CartPoleDriftTask(seed=0, batch_size=4, run_scale="smoke", drift=DRIFT)
    torch.manual_seed(0)
    model = task.build_model()
    batches = task.train_batches()
    seen = []
    for _ in range(4):  # 2 steps in phase 0, 2 in phase 1 (8 episodes per phase)
        loss = task.loss(model, next(batches))
        assert torch.isfinite(loss)
        log = task.train_log()
        assert task.reward() == log["return_seen"]
        assert log["return_seen"] == pytest.approx(log["reward_scale"] * log["return_unscaled"])
        seen.append(log["reward_scale"])
    assert seen == [1.0, 1.0, 10.0, 10.0]


def test_cartpole_evaluation_is_deterministic_given_the_seed() -> None:
    task = CartPoleDriftTask(seed=0, batch_size=4, eval_episodes=3)
    torch.manual_seed(0)
    model = task.build_model()
    first = task.evaluate(model)
    assert task.evaluate(model) == first
    assert 1 <= first <= 500
    sampled = CartPoleDriftTask(seed=0, batch_size=4, eval_episodes=3, eval_policy="sample")
    assert sampled.evaluate(model) == sampled.evaluate(model)
    assert not torch.equal(task.eval_seeds, CartPoleDriftTask(seed=1, batch_size=4).eval_seeds)


def test_cartpole_training_seeds_derive_from_the_run_seed() -> None:
    a = next(CartPoleDriftTask(seed=3, batch_size=4).train_batches())
    b = next(CartPoleDriftTask(seed=3, batch_size=4).train_batches())
    c = next(CartPoleDriftTask(seed=4, batch_size=4).train_batches())
    assert torch.equal(a, b) and not torch.equal(a, c)


def _grads(task: CartPoleDriftTask, model: torch.nn.Module, steps: int) -> list:
    batches = task.train_batches()
    out = []
    for _ in range(steps):
        model.zero_grad()
        loss = task.loss(model, next(batches))
        loss.backward()
        out.append(
            (float(loss.detach()), [p.grad.clone() for p in model.parameters()], task.train_log())
        )
    return out


def test_cartpole_ae_loss_has_a_fixed_sign_and_the_objective_gradient() -> None:
    """The loss value AE reads is the return's shortfall (or the critic's loss); its gradient is
    the REINFORCE objective's, the same as with the surrogate as value."""
    runs = {}
    for ae_loss in ("surrogate", "shortfall", "critic"):
        task = CartPoleDriftTask(seed=0, batch_size=4, run_scale="smoke", drift=DRIFT,
                                 ae_loss=ae_loss)  # fmt: skip
        torch.manual_seed(0)
        runs[ae_loss] = _grads(task, task.build_model(), 4)
    for k in range(4):
        value, grads, log = runs["shortfall"][k]
        # float32: the value is the reading up to the rounding of objective - objective
        assert value == pytest.approx(1 - log["return_unscaled"] / 500, rel=1e-5)
        assert 0 <= value < 1
        critic = runs["critic"][k][0]
        assert critic == pytest.approx(log["critic_loss"], rel=1e-5, abs=1e-6) and critic > 0
        assert runs["surrogate"][k][0] == pytest.approx(log["surrogate"], rel=1e-5)
        for name in ("surrogate", "critic"):
            for a, b in zip(grads, runs[name][k][1], strict=True):
                assert torch.allclose(a, b, atol=1e-6)


def test_cartpole_oracle_divides_the_gradient_by_the_phase_gain() -> None:
    runs = []
    for oracle in (False, True):
        task = CartPoleDriftTask(seed=0, batch_size=4, run_scale="smoke", drift=DRIFT,
                                 oracle=oracle)  # fmt: skip
        torch.manual_seed(0)
        runs.append(_grads(task, task.build_model(), 3))  # steps 1-2 phase 0, step 3 phase 1 (x10)
    for k, gain in ((0, 1.0), (2, 10.0)):
        # the logged value is not divided
        assert runs[1][k][0] == pytest.approx(runs[0][k][0], rel=1e-5)
        for a, b in zip(runs[0][k][1], runs[1][k][1], strict=True):
            assert torch.allclose(a / gain, b, atol=1e-6)


def test_cartpole_a_diverged_policy_gives_a_non_finite_loss_not_a_crash() -> None:
    task = CartPoleDriftTask(seed=0, batch_size=4, run_scale="smoke", drift=DRIFT)
    model = task.build_model()
    with torch.no_grad():
        model.actor[0].weight.fill_(float("nan"))
    assert not torch.isfinite(task.loss(model, next(task.train_batches())))


def test_cartpole_dynamics_drift_changes_the_physics_and_the_evaluation() -> None:
    drift = {"every_episodes": {"smoke": 8, "cpu": 16, "paper": 32},
             "phases": [{}, {"length": 2.0, "force_mag": 3.0}]}  # fmt: skip
    task = CartPoleDriftTask(seed=0, batch_size=8, run_scale="smoke", drift=drift)
    torch.manual_seed(0)
    model = task.build_model()
    assert task.drift_phase(1) == 0 and task.drift_phase(2) == 1
    before = task.evaluate(model)
    batches = task.train_batches()
    task.loss(model, next(batches))
    log = task.train_log()
    assert (log["pole_length"], log["force_mag"], log["gravity"]) == (0.5, 10.0, 9.8)
    assert log["reward_scale"] == 1.0
    assert task.evaluate(model) == before  # still phase 0's physics
    task.loss(model, next(batches))
    log = task.train_log()
    assert (log["pole_length"], log["force_mag"]) == (2.0, 3.0)
    env = task.envs[0].unwrapped
    assert env.length == 2.0 and env.polemass_length == pytest.approx(env.masspole * 2.0)
    task.evaluate(model)
    assert env.length == 2.0  # the evaluation runs in the active phase's physics
    # one phase (here the reversed push from the start: a stationary control) has no switches
    control = CartPoleDriftTask(seed=0, batch_size=8, run_scale="smoke",
                                drift={**drift, "phases": [{"force_mag": -10.0}]})  # fmt: skip
    assert control.drift_phase(100) is None and control.physics_of(0)["force_mag"] == -10.0
    with pytest.raises(ConfigError, match="need a CartPole environment"):
        CartPoleDriftTask(seed=0, batch_size=8, env_id="Acrobot-v1", drift=drift)


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"ae_loss": "return"}, "task.ae_loss=return"),
        ({"drift": {**DRIFT, "phases": [{"length": -1.0}]}}, r"phases\[0\].length=-1.0"),
        ({"drift": {**DRIFT, "every_episodes": {"cpu": 10}}}, "every_episodes.cpu=10"),
        ({"drift": {**DRIFT, "phases": [{"scale": 0.0}]}}, r"phases\[0\]"),
        ({"drift": {**DRIFT, "phases": []}}, "phases"),
        ({"drift": {**DRIFT, "every_episodes": {"smoke": 8}}}, "every_episodes.cpu: missing"),
        ({"vf_coef": -1.0}, "task.vf_coef=-1.0"),
        ({"eval_policy": "best"}, "task.eval_policy=best"),
        ({"run_scale": "huge"}, "task.run_scale=huge"),
        ({"env_id": "NoSuchEnv-v0"}, "task.env_id=NoSuchEnv-v0"),
        ({"env_id": "Pendulum-v1"}, "discrete"),
    ],
)
def test_cartpole_rejects_bad_values(kwargs: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key):
        CartPoleDriftTask(seed=0, batch_size=4, **kwargs)


def test_e06_runs_sgd_family_arms_on_drifts_that_rescale_and_that_move_the_optimum() -> None:
    """The issue's e06 findings, locked: AdamW (where the gauge idles) is gone, the curves have
    a row per step for the recovery metric, and the phases both rescale and reverse the push."""
    import yaml

    root = Path(__file__).resolve().parents[1]
    exp = yaml.safe_load((root / "conf/experiment/e06_cartpole_reward_drift.yaml").read_text())
    assert set(exp["hydra"]["sweeper"]["params"]["optimizer"].split(",")) == {"sgd", "sgdm"}
    assert exp["scale"]["log_every"] == 1
    task = yaml.safe_load((root / "conf/task/cartpole_drift.yaml").read_text())
    assert task["ae_loss"] == "shortfall"
    phases = task["drift"]["phases"]
    assert any(p.get("force_mag", 10.0) < 0 for p in phases)  # the optimum moves
    assert {p["scale"] for p in phases} >= {10.0, 0.1}  # the gradient rescales
    assert task["drift"]["every_episodes"]["cpu"] // task["batch_size"] == 50  # first switch: 51
