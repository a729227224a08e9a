"""Every option of every group composes; bad input fails before training with one line."""

from __future__ import annotations

import pytest

from aebench.paths import config_dir
from aebench.preflight import preflight
from aebench.runner import build_task, step_budget
from aebench.validation import ConfigError, validate_config
from tests.helpers import compose_config

GROUPS = [
    "task",
    "optimizer",
    "schedule",
    "scale",
    "logger",
    "ae",
    "ablation",
    "swarm",
    "experiment",
]


def options(group: str) -> list[str]:
    return sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))


def test_every_group_has_options() -> None:
    for group in GROUPS:
        assert options(group), f"conf/{group}/ has no option"


#: options that need another choice to be valid (one-line errors without it: tested there)
COMPANIONS = {"swarm=on": ["ae=on"]}


@pytest.mark.parametrize(
    "override", [f"{g}={o}" for g in GROUPS for o in options(g)], ids=lambda s: s
)
def test_option_composes_and_validates(override: str) -> None:
    cfg, choices = compose_config([override, *COMPANIONS.get(override, [])])
    group, option = override.split("=")
    assert choices[group] == option
    validate_config(cfg)
    assert step_budget(cfg) >= 1
    if group == "task":
        assert cfg.task.name == option


@pytest.mark.parametrize("task", options("task"))
@pytest.mark.parametrize("optimizer", options("optimizer"))
def test_every_optimizer_lr_resolves_on_every_task(task: str, optimizer: str) -> None:
    cfg, _ = compose_config([f"task={task}", f"optimizer={optimizer}"])
    if cfg.optimizer.lr is None:  # an ES on a task without ES settings: one-line error instead
        assert optimizer in ("openai_es", "eggroll")
        with pytest.raises(ConfigError, match="optimizer.lr=null"):
            validate_config(cfg)
        return
    assert cfg.optimizer.lr > 0


@pytest.mark.parametrize("task", options("task"))
def test_task_declares_its_metric(task: str) -> None:
    cfg, _ = compose_config([f"task={task}"])
    t = build_task(cfg)
    assert t.metric_mode in ("min", "max")
    assert t.data_source in ("synthetic", "real")
    assert isinstance(t.metric_name, str) and t.metric_name


@pytest.mark.parametrize(
    ("argv", "must_name"),
    [
        (["task=nope"], ["task=nope", "regression", "rosenbrock"]),
        (["optimizer.lrr=1"], ["optimizer.lrr", "lr"]),
        (["optimizer.lr=abc"], ["optimizer.lr", "abc"]),
        (["seed=-1"], ["seed", "-1", "non-negative"]),
        (["optimizer=sgd", "optimizer.momentum=1.5"], ["optimizer.momentum", "1.5", "[0, 1)"]),
        (["-m", "task=regression,rosenbrock", "task.dim=3"], ["task.dim", "dim"]),
        (["-m", "seed=0,-2"], ["seed", "-2"]),
        (["task=regression,rosenbrock"], ["-m"]),
        (["scale=smoke", "steps=0"], ["steps", "0"]),
    ],
)
def test_preflight_rejects_with_one_line(argv: list[str], must_name: list[str]) -> None:
    with pytest.raises(ConfigError) as info:
        preflight(argv)
    message = str(info.value)
    assert "\n" not in message
    for word in must_name:
        assert word in message, f"{word!r} missing from {message!r}"


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["-m", "task=regression,rosenbrock", "optimizer=sgdm,adamw", "seed=range(3)"],
        ["-m", "experiment=demo"],
        ["-m", "task=glob(*)"],
        ["task=rosenbrock", "task.dim=10", "optimizer.lr=1e-3", "hydra.run.dir=/tmp/x"],
        ["--cfg", "job"],
    ],
)
def test_preflight_accepts_valid_command_lines(argv: list[str]) -> None:
    preflight(argv)


def test_preflight_does_not_import_torch() -> None:
    """Bad input must fail within a second: the preflight path stays free of torch/lightning."""
    import subprocess
    import sys

    code = (
        "import sys; from aebench.preflight import preflight; preflight(['seed=1']); "
        "print(sorted(m for m in ('torch', 'lightning') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
