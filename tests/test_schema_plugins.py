"""Plug-ins describe themselves (issue 16, item 1): their traits and their config schema are read
from their own source (aebench.schema.plugin_info, constructor_schema), without importing them,
and the core's checks act on those declarations rather than on names it keeps."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Optional

import pytest
from omegaconf import MISSING, OmegaConf, open_dict

from aebench.schema import TaskConfig, constructor_schema, plugin_info, traits_of
from aebench.validation import ConfigError, is_es_optimizer, validate_config
from tests.helpers import ROOT, compose_config

#: a plug-in package whose modules fail if imported: only a reader of the source can see them
TOY = {
    "toy_plugins/__init__.py": 'raise RuntimeError("imported")\nfrom .opt import Tuned\n',
    "toy_plugins/base.py": textwrap.dedent(
        """
        raise RuntimeError("imported")
        from typing import ClassVar

        class SelfTuning:
            self_tuning: ClassVar[bool] = True
        """
    ),
    "toy_plugins/opt.py": textwrap.dedent(
        """
        raise RuntimeError("imported")
        from toy_plugins.base import SelfTuning

        ALLOWED = ("a", "b")

        class Tuned(SelfTuning):
            own_lr = True
            choices = {"mode": ALLOWED}
            not_a_trait = 3

        class Evolution:
            def ask(self): ...
            def tell(self, fitness): ...

        def flat(optimizer, total_steps): ...
        flat.constant_lr = True
        """
    ),
    "toy_plugins/optim.py": textwrap.dedent(
        """
        raise RuntimeError("imported")
        from torch.optim import Optimizer

        class Base(Optimizer):
            def __init__(self, params, lr: float, steps: int = 3, mode: str = "a",
                         width: int | None = None, unused: float = 1.0, seed: int = 0) -> None:
                ...

        class Child(Base):  # no constructor of its own: Base's is read
            pass
        """
    ),
    "toy_plugins/task.py": textwrap.dedent(
        """
        raise RuntimeError("imported")
        from collections.abc import Sequence
        from dataclasses import dataclass, field
        from typing import Any

        from aebench.task import Task

        SIZES = (8, 8)

        @dataclass
        class Phase:
            scale: float = 1.0
            length: float | None = None

        @dataclass
        class Drift:
            every: int = 4
            phases: list[Phase] = field(default_factory=list)

        class Toy(Task):
            def __init__(self, seed: int, batch_size: int = 4, loss_scale: float = 1.0,
                         dim: int = 3, sizes: Sequence[int] = SIZES, noise: float | None = None,
                         mode: str = "a", data: dict[str, Any] | None = None,
                         drift: Drift | None = None, flag: bool = False, free=None) -> None:
                ...
        """
    ),
}


@pytest.fixture
def toy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, text in TOY.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def test_traits_are_read_from_the_source_with_inheritance_and_re_exports(toy: Path) -> None:
    tuned = plugin_info("toy_plugins.Tuned")  # re-exported by the package's __init__
    assert tuned is not None
    assert tuned.traits == {"self_tuning": True, "own_lr": True, "choices": {"mode": ("a", "b")}}
    evolution = plugin_info("toy_plugins.opt.Evolution")
    assert evolution is not None and evolution.es and evolution.traits == {}
    assert traits_of("toy_plugins.opt.flat") == {"constant_lr": True}
    assert plugin_info("toy_plugins.opt.Missing") is None
    assert plugin_info("no_such_package.Thing") is None
    assert "toy_plugins" not in sys.modules  # nothing was imported


def test_the_package_plugins_declare_their_traits() -> None:
    assert traits_of("baselines.hypergradient.SGDHD") == {"self_tuning": True, "own_lr": True}
    assert traits_of("baselines.lr_free.schedulefree_adamw") == {
        "self_tuning": True,
        "own_lr": True,
    }
    assert traits_of("baselines.schedules.constant") == {"constant_lr": True}
    assert traits_of("baselines.schedules.cosine") == {}
    finder = plugin_info("baselines.lr_finder.LRFinderSchedule")
    assert finder is not None and "range_test" in finder.methods
    assert finder.traits["choices"] == {"suggestion": ("min_div10", "steepest"),
                                        "then": ("constant", "cosine")}  # fmt: skip
    for es in ("baselines.es.OpenAIES", "baselines.es.EGGROLL", "baselines.es.CMAES"):
        assert plugin_info(es).es, es
    assert not plugin_info("torch.optim.AdamW").es
    assert traits_of("torch.optim.AdamW") == {}
    assert traits_of("prodigyopt.Prodigy") == {"self_tuning": True}  # its option's # @traits
    assert traits_of("baselines.es.CMAES") == {"self_tuning": True, "own_lr": True}
    rule = plugin_info("aebench.swarm.scheduler.AESwarmRule")
    assert rule is not None and rule.traits["needs_ae"] is True


def test_reading_the_traits_imports_no_torch() -> None:
    code = (
        "import sys\n"
        "from aebench.schema import plugin_info, traits_of\n"
        "assert plugin_info('baselines.es.OpenAIES').es\n"
        "assert traits_of('baselines.hypergradient.AdamHD')['self_tuning']\n"
        "assert traits_of('torch.optim.SGD') == {}\n"
        "from aebench.paths import config_dir\n"
        "from aebench.schema import derived_option_schemas\n"
        "assert derived_option_schemas(config_dir(), 'optimizer')['sgd']\n"
        "assert derived_option_schemas(config_dir(), 'schedule')['lr_finder']\n"
        "assert 'torch' not in sys.modules and 'baselines' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_a_task_schema_is_its_constructor(toy: Path) -> None:
    schema = constructor_schema("toy_plugins.task.Toy", TaskConfig, ("seed",), "toy_task")
    assert schema is not None and issubclass(schema, TaskConfig)
    own = {f.name: f for f in dataclasses.fields(schema)}
    base = {f.name for f in dataclasses.fields(TaskConfig)}
    assert set(own) - base == {"dim", "sizes", "noise", "mode", "data", "drift", "flag", "free"}
    assert own["dim"].type is int and own["dim"].default == 3
    assert own["sizes"].type == list[int] and own["sizes"].default_factory() == [8, 8]
    assert own["noise"].type == Optional[float] and own["noise"].default is None  # noqa: UP045
    assert own["mode"].type is str and own["flag"].type is bool
    assert own["data"].type is Any and own["free"].type is Any
    node = OmegaConf.structured(schema)
    assert OmegaConf.is_missing(node, "name")  # harness keys stay the harness's
    assert node.drift is None
    node = OmegaConf.merge(node, {"drift": {"every": 2, "phases": [{"scale": 3}]}})  # as a YAML
    drift = OmegaConf.to_container(node.drift)
    assert drift == {"every": 2, "phases": [{"scale": 3.0, "length": None}]}
    with pytest.raises(Exception, match="dim"):
        node.dim = "abc"  # typed by the annotation


def test_every_task_option_has_its_constructor_as_schema() -> None:
    from aebench.paths import config_dir
    from aebench.schema import derived_task_schemas

    schemas = derived_task_schemas(config_dir())
    assert {"regression", "rosenbrock", "cartpole_drift", "gated_depth"} <= set(schemas)
    fields = {f.name: f for f in dataclasses.fields(schemas["regression"])}
    assert fields["hidden"].type == list[int] and fields["noise"].type is float
    drift = {f.name: f for f in dataclasses.fields(schemas["cartpole_drift"])}["drift"]
    assert dataclasses.is_dataclass(drift.type.__args__[0])  # Optional[RewardDrift]
    assert MISSING not in (fields["in_dim"].default, fields["n_train"].default)


def test_nested_task_keys_and_scale_presets_are_typed_from_the_task() -> None:
    """wikitext's ``data`` and ``markov`` are its own dataclasses (defaults the YAML does not
    give included); its ``scales`` presets are typed like the task keys that read them."""
    from aebench.paths import config_dir
    from aebench.schema import derived_task_schemas

    schemas = derived_task_schemas(config_dir())
    node = OmegaConf.structured(schemas["wikitext"])
    assert OmegaConf.is_missing(node, "data")  # the YAML gives it; null is refused
    node = OmegaConf.merge(node, {"data": {"source": "synthetic"}, "markov": {"order": 1}})
    assert node.markov.order == 1 and node.markov.symbols == 32
    assert node.data.val_every == 10 and list(node.data.files) == []  # not in the YAML
    assert node.data.name == "Salesforce/wikitext"
    for key, bad in (("val_every", "abc"), ("online", "maybe")):
        with pytest.raises(Exception, match=key):
            node.data[key] = bad
    with pytest.raises(Exception, match="order"):
        node.markov.order = 1.5
    with pytest.raises(Exception, match="d_model"):
        node.scales.smoke.d_model = "abc"  # typed as task.d_model, which reads it
    node.scales.cpu.n_train_tokens = None  # optional, as task.n_train_tokens
    with pytest.raises(Exception, match="n_test"):
        OmegaConf.structured(schemas["fmnist"]).scales.cpu.n_test = 1.5


def test_the_record_carries_the_traits_its_optimizer_declares(toy: Path) -> None:
    from aebench.record import optimizer_traits

    def traits(target: str) -> dict:
        return optimizer_traits({"optimizer": {"_target_": target, "lr": 0.1}})

    assert traits("baselines.hypergradient.SGDHD")["self_tuning"] is True  # on the class
    assert traits("prodigyopt.Prodigy")["self_tuning"] is True  # its option's # @traits
    assert traits("toy_plugins.Tuned") == {  # a plug-in the core does not know
        "self_tuning": True, "own_lr": True, "choices": {"mode": ("a", "b")}
    }  # fmt: skip
    assert traits("torch.optim.AdamW") == {} and optimizer_traits({"seed": 0}) == {}


def _with_optimizer(target: str, *overrides: str) -> Any:
    cfg, _ = compose_config(["optimizer=sgd", *overrides])
    with open_dict(cfg):
        cfg.optimizer._target_ = target
    return cfg


def test_a_declared_trait_is_enforced_for_an_optimizer_the_core_does_not_know(toy: Path) -> None:
    with pytest.raises(ConfigError, match="ae=on with optimizer=Tuned: it sets its own step"):
        validate_config(_with_optimizer("toy_plugins.Tuned", "ae=on"))
    with pytest.raises(ConfigError, match="schedule=cosine with optimizer=Tuned: it keeps its"):
        validate_config(_with_optimizer("toy_plugins.Tuned", "schedule=cosine"))
    validate_config(_with_optimizer("toy_plugins.Tuned"))  # schedule=constant: fine
    cfg = _with_optimizer("toy_plugins.opt.Evolution")
    assert is_es_optimizer(cfg.optimizer)
    with pytest.raises(ConfigError, match="swarm with optimizer._target_=toy_plugins.opt.Evol"):
        validate_config(_with_optimizer("toy_plugins.opt.Evolution", "swarm=pbt"))


def test_the_checks_name_no_plugin() -> None:
    """validation, preflight, runner and the swarm check hold no optimizer, schedule, task or
    rule name: every option of conf/ and every plug-in module path is absent from their code."""
    import io
    import tokenize

    groups = ("task", "optimizer", "schedule")
    names = {p.stem for g in groups for p in (ROOT / "conf" / g).glob("*.yaml")}
    names -= {"step"}  # a schedule option, and the word every training loop uses
    for rel in ("aebench/validation.py", "aebench/preflight.py", "aebench/runner.py",
                "aebench/swarm/config.py"):  # fmt: skip
        source = (ROOT / rel).read_text()
        code = [
            t.string.strip("\"'")
            for t in tokenize.generate_tokens(io.StringIO(source).readline)
            if t.type == tokenize.STRING and not t.string.startswith(('"""', "'''"))
        ]
        named = [s for s in code if s in names or s.startswith(("baselines.", "tasks."))]
        if rel == "aebench/swarm/config.py":  # the rule schemas' targets (still its schemas)
            named = [s for s in named if not s.startswith("baselines.pbt.")]
        if rel == "aebench/runner.py":  # the record's range-test fields (docs/records.md), a
            named = [s for s in named if s != "lr_finder"]  # seed stream: not a plug-in's name
        assert not named, (rel, named)


TOY_OPTION = """\
# a toy optimizer option
# @traits {self_tuning: true}
defaults:
  - /schema/optimizer/toy_opt@_here_

_target_: toy_plugins.optim.Child
_partial_: true
lr: ${task.lr.openai_es}     # typed by task.lr.openai_es: float or null
steps: 5
mode: b
width: null
gain: null                   # type: float | None; not a parameter: typed here
search_space:
  optimizer.lr: {low: 1.0e-3, high: 1.0, log: true}
"""


def test_an_option_schema_is_its_keys_typed_by_the_constructor(toy: Path) -> None:
    from aebench.schema import _option_traits, derived_option_schemas

    conf = toy / "conf"
    (conf / "optimizer").mkdir(parents=True)
    (conf / "optimizer" / "toy_opt.yaml").write_text(TOY_OPTION)
    (conf / "optimizer" / "no_schema.yaml").write_text("_target_: toy_plugins.optim.Child\n")
    schemas = derived_option_schemas(conf, "optimizer")
    assert set(schemas) == {"toy_opt"}  # an option that names no schema of its own has none
    fields = {f.name: f for f in dataclasses.fields(schemas["toy_opt"])}
    # the YAML's keys, in its order; the constructor's others (unused, seed) stay out
    assert list(fields) == ["_target_", "_partial_", "lr", "steps", "mode", "width", "gain",
                            "search_space"]  # fmt: skip
    assert fields["lr"].type == Optional[float]  # noqa: UP045 - the interpolated key's type
    assert fields["steps"].type is int  # the inherited constructor's annotation
    assert fields["mode"].type is str
    assert fields["width"].type == Optional[int]  # noqa: UP045
    assert fields["gain"].type == Optional[float]  # noqa: UP045 - its # type: comment
    assert fields["search_space"].type == dict[str, Any]
    assert fields["_target_"].default == "toy_plugins.optim.Child"
    node = OmegaConf.structured(schemas["toy_opt"])
    with pytest.raises(Exception, match="steps"):
        node.steps = "abc"
    with pytest.raises(Exception, match="gain"):
        node.gain = "abc"
    assert _option_traits(conf) == {"toy_plugins.optim.Child": {"self_tuning": True}}
    assert "toy_plugins" not in sys.modules


def test_the_optimizer_and_schedule_options_have_derived_schemas() -> None:
    """Every option names its own schema; a torch optimizer's has only the option's keys
    (maximize, foreach, fused... never enter the record); types as the old hand-written ones."""
    from aebench.paths import config_dir
    from aebench.schema import derived_option_schemas

    for group in ("optimizer", "schedule"):
        schemas = derived_option_schemas(config_dir(), group)
        assert set(schemas) == {p.stem for p in (ROOT / "conf" / group).glob("*.yaml")}, group
    opt = {k: {f.name: f.type for f in dataclasses.fields(v)}
           for k, v in derived_option_schemas(config_dir(), "optimizer").items()}  # fmt: skip
    assert set(opt["adamw"]) == {"_target_", "_partial_", "lr", "betas", "eps", "weight_decay",
                                 "amsgrad", "search_space"}  # fmt: skip
    assert not {"maximize", "foreach", "fused", "differentiable"} & set().union(*opt.values())
    assert opt["sgd"]["lr"] is float and opt["sgd"]["nesterov"] is bool
    assert opt["openai_es"]["lr"] == Optional[float]  # noqa: UP045 - task.lr.openai_es
    assert opt["eggroll"]["rank"] is int and opt["cma_es"]["population"] == Optional[int]  # noqa: UP045
    assert opt["prodigy"]["beta3"] == Optional[float]  # noqa: UP045
    assert opt["schedulefree_adamw"]["budget"] == Optional[int]  # noqa: UP045
    assert opt["adafactor"]["eps"] == list[Any]
    sched = {f.name: f.type for f in dataclasses.fields(
        derived_option_schemas(config_dir(), "schedule")["step"])}  # fmt: skip
    assert sched["milestones"] == list[float] and sched["gamma"] is float


def test_a_derived_schema_reaches_a_fresh_process_whole(tmp_path: Path) -> None:
    """The joblib launcher's workers receive Hydra's ConfigStore pickled: a derived schema must
    arrive as an importable class with its nested defaults (cartpole_drift's ``drift``), not as a
    copy whose ``dataclasses.MISSING`` is a foreign object (which failed ``--jobs 2``)."""
    import pickle

    from hydra.core.config_store import ConfigStore

    from aebench.schema import register_configs

    register_configs()
    node = ConfigStore.instance().repo["schema"]["task"]["cartpole_drift.yaml"].node
    path = tmp_path / "schema.pkl"
    path.write_bytes(pickle.dumps(node))
    code = (
        "import pickle, sys; from omegaconf import OmegaConf; "
        "node = pickle.load(open(sys.argv[1], 'rb')); kind = node._metadata.object_type; "
        "OmegaConf.structured(kind); print(kind.__qualname__)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "_derived_cartpole_drift_task"
