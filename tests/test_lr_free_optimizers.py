"""optimizer=schedulefree_adamw, prodigy, sgd_hd, adam_hd: construction from the configs, the
train/eval protocol of schedule-free, the ``lr_eff`` column, and what they refuse to compose
with (one line, before anything runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from aebench.module import set_optimizer_mode
from aebench.preflight import preflight
from aebench.recorder import effective_lr
from aebench.schema import optimizer_factory
from aebench.validation import ConfigError
from tests.helpers import compose_config, read_curves, run_in_process

NEW = ("schedulefree_adamw", "prodigy", "sgd_hd", "adam_hd")


def _build(name: str, task: str = "regression") -> torch.optim.Optimizer:
    cfg, _ = compose_config([f"task={task}", f"optimizer={name}"])
    return optimizer_factory(cfg.optimizer)([torch.nn.Parameter(torch.ones(3))])


def _step(opt: torch.optim.Optimizer, n: int = 3) -> None:
    (p,) = opt.param_groups[0]["params"]
    for _ in range(n):
        set_optimizer_mode(opt, "train")
        opt.zero_grad()
        (p * p).sum().backward()
        opt.step()


def test_lr_keys_resolve_to_the_documented_starts() -> None:
    cfg, _ = compose_config(["task=rosenbrock"])
    lr = cfg.task.lr
    assert lr.schedulefree_adamw == lr.adamw and lr.prodigy == 1.0
    assert lr.sgd_hd == lr.sgd and lr.adam_hd == lr.adam


def test_schedulefree_warmup_is_a_fraction_of_the_run_budget() -> None:
    cfg, _ = compose_config(["optimizer=schedulefree_adamw", "scale=cpu", "steps=1000"])
    opt = optimizer_factory(cfg.optimizer)([torch.nn.Parameter(torch.ones(1))])
    assert opt.param_groups[0]["warmup_steps"] == 50
    cfg, _ = compose_config(["optimizer=schedulefree_adamw", "scale=cpu", "task=regression"])
    opt = optimizer_factory(cfg.optimizer)([torch.nn.Parameter(torch.ones(1))])
    assert opt.param_groups[0]["warmup_steps"] == round(0.05 * cfg.task.budget.cpu)


def test_effective_lr_per_optimizer() -> None:
    """lr_eff: schedule-free's scheduled_lr, Prodigy's d * lr, the hypergradient alpha; none
    for the fixed-lr optimizers."""
    from prodigyopt import Prodigy

    from baselines.hypergradient import SGDHD, AdamHD
    from baselines.lr_free import schedulefree_adamw

    def param() -> list[torch.nn.Parameter]:
        return [torch.nn.Parameter(torch.ones(3))]

    sf = schedulefree_adamw(param(), lr=1e-2, budget=40)
    _step(sf, 1)
    g = sf.param_groups[0]
    assert effective_lr(g) == g["scheduled_lr"] == g["lr"] / g["warmup_steps"]
    pr = Prodigy(param(), lr=1.0)
    assert effective_lr(pr.param_groups[0]) == pytest.approx(1e-6)  # d0 * lr before a step
    _step(pr)
    g = pr.param_groups[0]
    assert effective_lr(g) == g["d"] * g["lr"] and g["d"] > 1e-6
    for hd in (SGDHD(param(), lr=0.1), AdamHD(param(), lr=0.1, hypergrad_lr=1e-3)):
        _step(hd)
        assert effective_lr(hd.param_groups[0]) == hd.param_groups[0]["hd_lr"]
        assert hd.param_groups[0]["hd_lr"] != hd.param_groups[0]["lr"]
    fixed = (
        torch.optim.SGD(param(), lr=0.1, momentum=0.9),
        torch.optim.AdamW(param()),
        torch.optim.Adafactor(param()),
    )
    for opt in fixed:
        _step(opt)
        assert effective_lr(opt.param_groups[0]) is None


def test_set_optimizer_mode_toggles_schedulefree_and_leaves_others_alone() -> None:
    sf = _build("schedulefree_adamw")
    (p,) = sf.param_groups[0]["params"]
    _step(sf, 5)
    y = p.detach().clone()
    set_optimizer_mode(sf, "eval")
    assert not sf.param_groups[0]["train_mode"] and not torch.equal(p, y)  # now at x
    set_optimizer_mode(sf, "train")
    assert sf.param_groups[0]["train_mode"] and torch.allclose(p, y)
    sgd = torch.optim.SGD([torch.nn.Parameter(torch.ones(1))], lr=0.1)
    set_optimizer_mode(sgd, "eval")  # no such modes: nothing happens, nothing raises


def test_schedulefree_steps_in_train_mode_and_is_evaluated_in_eval_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Through a whole run: every optimizer step and every training forward pass happen in
    train mode (at y), every evaluation in eval mode (at x), and the run ends in eval mode."""
    from schedulefree import AdamWScheduleFree

    from tasks.regression import RegressionTask

    events: list[tuple[str, bool]] = []
    live: list[AdamWScheduleFree] = []
    init, step = AdamWScheduleFree.__init__, AdamWScheduleFree.step

    def spy_init(self, *a, **k) -> None:  # noqa: ANN001, ANN002, ANN003
        init(self, *a, **k)
        live.append(self)

    def spy_step(self, *a, **k):  # noqa: ANN001, ANN002, ANN003, ANN202
        events.append(("step", self.param_groups[0]["train_mode"]))
        return step(self, *a, **k)

    evaluate, loss = RegressionTask.evaluate, RegressionTask.loss

    def spy_evaluate(self, model):  # noqa: ANN001, ANN202
        events.append(("evaluate", live[0].param_groups[0]["train_mode"]))
        return evaluate(self, model)

    def spy_loss(self, model, batch):  # noqa: ANN001, ANN202
        events.append(("loss", live[0].param_groups[0]["train_mode"]))
        return loss(self, model, batch)

    monkeypatch.setattr(AdamWScheduleFree, "__init__", spy_init)
    monkeypatch.setattr(AdamWScheduleFree, "step", spy_step)
    monkeypatch.setattr(RegressionTask, "evaluate", spy_evaluate)
    monkeypatch.setattr(RegressionTask, "loss", spy_loss)
    rec, _ = run_in_process(
        [
            "optimizer=schedulefree_adamw",
            "scale=smoke",
            "trainer.threads=1",
            "steps=12",
            "scale.evals=4",
        ],
        tmp_path,
    )
    assert rec.status == "completed"
    kinds = {k for k, _ in events}
    assert kinds == {"step", "evaluate", "loss"}
    assert all(mode for k, mode in events if k in ("step", "loss"))
    assert not any(mode for k, mode in events if k == "evaluate")
    assert sum(k == "step" for k, _ in events) == 12
    assert not live[0].param_groups[0]["train_mode"]  # left at x after training


@pytest.mark.parametrize("name", NEW)
def test_ae_on_is_refused_before_anything_runs(name: str) -> None:
    with pytest.raises(ConfigError, match=f"ae=on with optimizer={name}:") as err:
        preflight([f"optimizer={name}", "ae=on"])
    assert "\n" not in str(err.value) and "adamw" in str(err.value)


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["optimizer=sgd_hd", "schedule=cosine"], "schedule=cosine with optimizer=sgd_hd"),
        (["optimizer=schedulefree_adamw", "schedule=onecycle"], "use schedule=constant"),
        (["optimizer=prodigy", "swarm=pbt"], "optimizer=prodigy"),
        (["optimizer=adam_hd", "optimizer.hypergrad_lr=-1"], "optimizer.hypergrad_lr=-1"),
    ],
)
def test_bad_compositions_fail_with_one_line(argv: list[str], needle: str) -> None:
    with pytest.raises(ConfigError, match=needle) as err:
        preflight(argv)
    assert "\n" not in str(err.value)


def test_prodigy_composes_with_a_schedule() -> None:
    preflight(["optimizer=prodigy", "schedule=cosine"])  # no error


@pytest.mark.slow
@pytest.mark.parametrize("name", NEW)
def test_smoke_run_completes_and_logs_lr_eff(name: str, tmp_path: Path) -> None:
    rec, on_disk = run_in_process(
        [f"optimizer={name}", "scale=smoke", "trainer.threads=1"], tmp_path
    )
    assert rec.status == "completed" and on_disk["optimizer"] == name
    rows = read_curves(tmp_path / "curves.csv")
    lr_eff = [float(r["lr_eff"]) for r in rows if r.get("lr_eff")]
    assert len(lr_eff) == len(rows) and len(set(lr_eff)) > 1  # it moved
    assert all(float(r["lr"]) == float(rows[0]["lr"]) for r in rows)  # lr: the constant start
