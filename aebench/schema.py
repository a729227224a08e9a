"""Structured-config schemas, registered in Hydra's ConfigStore.

Every YAML option extends one of these dataclasses (``defaults: [/schema/<group>/<kind>@_here_]``),
so a typo'd key or a value of the wrong type fails at composition, before any training, with a
message naming the key. Range checks that a type cannot express live in ``aebench.validation``.
The schemas sit in the ``schema/`` group, out of the user's groups, so ``task='glob(*)'`` sweeps
only real options. Task, optimizer and schedule schemas are derived from the plug-ins' own
constructors and options, read from source (docs/design.md, "Plug-ins describe themselves").
"""

from __future__ import annotations

import ast
import contextlib
import copy
import dataclasses
import functools
import importlib.util
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING

from aebench.ae.config import AEConfig
from aebench.swarm.config import SWARM_SCHEMAS


# ---------------------------------------------------------------- task
@dataclass
class BudgetConfig:
    """Default step budget of a task at each scale (``steps=`` overrides it)."""

    smoke: int = MISSING
    cpu: int = MISSING
    paper: int = MISSING


@dataclass
class SuggestedLRConfig:
    """The task's tuned base learning rate per optimizer family; ``optimizer.lr`` defaults to it.

    Each task says in its YAML how these were chosen (a small LR sweep of the *vanilla*
    optimizer, never of AE), so baselines start well tuned.
    """

    sgd: float = MISSING
    sgdm: float = MISSING
    adam: float = MISSING
    adamw: float = MISSING
    adafactor: float = MISSING
    #: the LR-free and self-tuning optimizers (baselines/lr_free.py, baselines/hypergradient.py)
    #: default to a documented start, not a tuned value: schedule-free AdamW from the task's
    #: AdamW lr (the schedule-free authors find its best lr at 1-10x AdamW's: a tune_lr grid
    #: upward from here is the way to tune it); Prodigy's lr is a multiplier of its estimated
    #: step, 1.0 by its authors' convention; SGD-HD and Adam-HD start alpha_0 from the tuned
    #: SGD and Adam lr (the same start as the fixed-lr baseline they are compared with)
    schedulefree_adamw: float = "${.adamw}"  # type: ignore[assignment]
    prodigy: float = 1.0
    sgd_hd: float = "${.sgd}"  # type: ignore[assignment]
    adam_hd: float = "${.adam}"  # type: ignore[assignment]
    #: Evolution Strategies (baselines/es/): alpha of OpenAI-ES and of EGGROLL, and ``es_sigma``,
    #: the perturbation std both start from (absolute, parameter units; not an lr, but tuned in
    #: the same grid). null where ES is not set up for the task: an ES run then fails its
    #: preflight with one line unless ``optimizer.lr`` / ``optimizer.sigma`` are given
    openai_es: float | None = None
    eggroll: float | None = None
    es_sigma: float | None = None


@dataclass
class TaskConfig:
    _target_: str = MISSING
    name: str = MISSING
    batch_size: int = MISSING
    loss_scale: float = 1.0
    #: time-to-target threshold on the task's evaluation metric
    target: float = MISSING
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    lr: SuggestedLRConfig = field(default_factory=SuggestedLRConfig)


# ---------------------------------------------------------------- optimizer, schedule
# No schema here: each option's is derived from its YAML and its ``_target_``'s constructor
# (derived_option_schemas, below; docs/design.md).
def optimizer_factory(node: Any) -> Any:
    """The optimizer factory (``instantiate`` of ``_partial_`` config ``node``) without its
    ``search_space``: a tuning declaration read by :mod:`aebench.tuning`, not an argument."""
    from hydra.utils import instantiate
    from omegaconf import DictConfig, OmegaConf

    kwargs = OmegaConf.to_container(node, resolve=True) if isinstance(node, DictConfig) else node
    kwargs = {k: v for k, v in dict(kwargs).items() if k != "search_space"}
    return instantiate(kwargs, _convert_="all")


# ---------------------------------------------------------------- scale, logger
# (the ae schema: aebench.ae.config; the swarm schemas: aebench.swarm.config)
@dataclass
class ScaleConfig:
    #: smoke | cpu | paper: picks ``task.budget.<name>``
    name: str = MISSING
    #: evaluations of the metric over the budget (plus one at step 0)
    evals: int = MISSING
    #: a curves.csv row every this many steps
    log_every: int = MISSING
    #: progress lines on the console over the budget
    progress_lines: int = 10


@dataclass
class CSVLoggerConfig:
    """curves.csv and result.json only (they are always written)."""

    kind: str = "csv"


@dataclass
class WandbLoggerConfig:
    """Also stream the curves to Weights & Biases (offline unless ``offline=false``)."""

    kind: str = "wandb"
    project: str = "aebench"
    entity: str | None = None
    offline: bool = True
    tags: list[str] = field(default_factory=list)


# ---------------------------------------------------------------- top level
@dataclass
class TrainerConfig:
    #: cpu | gpu | auto (Lightning accelerator)
    accelerator: str = "cpu"
    #: torch.use_deterministic_algorithms; same config + seed => identical curves on CPU
    deterministic: bool = True
    #: torch intra-op threads; null leaves torch's default
    threads: int | None = None


@dataclass
class DivergenceConfig:
    """When a run stops itself as ``diverged`` (see ``aebench.recorder``)."""

    #: the training loss is non-finite, or |loss| > factor * max(|first loss|, floor)
    factor: float = 1e4
    floor: float = 1e-6


@dataclass
class Config:
    task: Any = MISSING
    optimizer: Any = MISSING
    schedule: Any = MISSING
    scale: ScaleConfig = MISSING
    logger: Any = MISSING
    ae: AEConfig = MISSING
    #: ``SwarmConfig`` (``off``) or a population subclass of it (aebench.swarm.config)
    swarm: Any = MISSING
    #: the tuning ruleset (conf/ruleset: self_tuning or external; aebench/tuning.py)
    ruleset: Any = None
    #: the run seed; every random stream derives from it (aebench.seeding)
    seed: int = 0
    #: step budget; null takes ``task.budget.<scale.name>``
    steps: int | None = None
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    divergence: DivergenceConfig = field(default_factory=DivergenceConfig)
    #: skip the job when its arm and seed already have a completed or diverged record in its
    #: folder or under the sweep folder (aebench/resume.py); not part of the arm
    resume: bool = False


# ---------------------------------------------------------------- what a plug-in says of itself
#: the traits a plug-in may declare, as class attributes (``self_tuning: ClassVar[bool] = True``)
#: or, for a factory function, as attributes set right after it (``constant.constant_lr =
#: True``); the core reads them with :func:`plugin_info` and names no plug-in (docs/design.md)
TRAITS: dict[str, str] = {
    "self_tuning": "optimizer: sets its own step size; AE has no binding for it, population "
    "arms would perturb an lr it overrides and a range test cannot tune it",
    "own_lr": "optimizer: keeps its own lr; it takes only a schedule with constant_lr",
    "constant_lr": "schedule: leaves the lr at its configured value",
    "choices": "any plug-in: {key: allowed values} for its string keys, checked in the preflight",
    "needs_ae": "population rule: runs the AE controller on every trajectory (ae=on only)",
}
#: methods that declare an interface: ``ask`` and ``tell``, an Evolution Strategy (one step is
#: one generation, aebench/es_module.py); ``range_test``, a schedule that first runs an LR range
#: test (aebench/runner.py)
INTERFACES = ("ask", "tell", "range_test")


#: base classes that declare no trait (not read: torch's Optimizer alone is 1000 lines)
_ROOTS = frozenset(
    {"object", "abc.ABC", "torch.optim.Optimizer", "torch.optim.optimizer.Optimizer"}
)


@dataclass(frozen=True)
class PluginInfo:
    """What a ``_target_`` declares about itself: its traits and the interface methods it has."""

    target: str
    traits: dict[str, Any]
    methods: frozenset[str]

    @property
    def es(self) -> bool:
        return {"ask", "tell"} <= self.methods


def plugin_info(target: str) -> PluginInfo | None:
    """The traits and interface methods of the class or function ``target`` (a ``_target_``),
    with those of its base classes; None if no source defines it.

    Read from the plug-in's source with :mod:`ast`, not by importing it: plug-ins import torch,
    and the preflight must not (docs/design.md, Cost). Only literal values count (a name bound
    to a literal at module level too); a trait computed at import time is not seen.
    """
    return _info(str(target), 0)


@functools.cache
def _info(target: str, depth: int) -> PluginInfo | None:
    module, _, name = target.rpartition(".")
    found = _lookup(module, name, 0) if module else None
    if found is None or depth > 8:
        return None
    node, where, tree = found
    traits: dict[str, Any] = {}
    methods: set[str] = set()
    if isinstance(node, ast.ClassDef):
        for base in node.bases:
            dotted = _dotted(base)
            resolved = _resolve_name(where, tree, dotted) if dotted else None
            inherited = _info(resolved, depth + 1) if resolved and resolved not in _ROOTS else None
            if inherited is not None:
                traits.update(inherited.traits)
                methods |= inherited.methods
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef) and stmt.name in INTERFACES:
                methods.add(stmt.name)
            for key, value in _assignments(stmt):
                if key in TRAITS:
                    _set_literal(traits, key, value, tree)
    else:  # a factory function: ``<name>.<trait> = <literal>`` at module level
        for stmt in tree.body:
            if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1:
                t = stmt.targets[0]
                if isinstance(t, ast.Attribute) and _dotted(t.value) == name and t.attr in TRAITS:
                    _set_literal(traits, t.attr, stmt.value, tree)
    return PluginInfo(target, traits, frozenset(methods))


def _assignments(stmt: ast.stmt) -> list[tuple[str, ast.expr]]:
    if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value:
        return [(stmt.target.id, stmt.value)]
    if isinstance(stmt, ast.Assign):
        return [(t.id, stmt.value) for t in stmt.targets if isinstance(t, ast.Name)]
    return []


def _set_literal(traits: dict[str, Any], key: str, value: ast.expr, tree: ast.Module) -> None:
    with contextlib.suppress(ValueError):  # not a literal: not a declaration the preflight reads
        traits[key] = _literal(value, tree)


def _literal(node: ast.expr, tree: ast.Module) -> Any:
    """``ast.literal_eval`` that also follows a name bound to a literal at module level."""
    if isinstance(node, ast.Name):
        for stmt in tree.body:
            for key, value in _assignments(stmt):
                if key == node.id:
                    return _literal(value, tree)
        raise ValueError(node.id)
    if isinstance(node, ast.Tuple | ast.List):
        items = [_literal(e, tree) for e in node.elts]
        return items if isinstance(node, ast.List) else tuple(items)
    if isinstance(node, ast.Dict) and all(k is not None for k in node.keys):
        keys = [_literal(k, tree) for k in node.keys if k is not None]
        return dict(zip(keys, (_literal(v, tree) for v in node.values), strict=True))
    return ast.literal_eval(node)


def _dotted(node: ast.expr) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = _dotted(node.value)
        return f"{inner}.{node.attr}" if inner else None
    return None


def _resolve_name(module: str, tree: ast.Module, dotted: str) -> str | None:
    """The absolute dotted name of ``dotted`` as written in ``module`` (``Base``, ``core.Base``,
    ``torch.optim.Optimizer``)."""
    head, _, rest = dotted.partition(".")
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef | ast.FunctionDef) and stmt.name == head and not rest:
            return f"{module}.{head}"
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if (alias.asname or alias.name) == head:
                    base = _absolute(module, stmt)
                    return ".".join(filter(None, [base, alias.name, rest]))
        if isinstance(stmt, ast.Import):
            for alias in stmt.names:
                if (alias.asname or alias.name.split(".")[0]) == head:
                    return ".".join(filter(None, [alias.name if alias.asname else head, rest]))
    return None


def _absolute(module: str, stmt: ast.ImportFrom) -> str:
    if not stmt.level:
        return stmt.module or ""
    package = module if _is_package(module) else module.rpartition(".")[0]
    parts = package.split(".")
    parts = parts[: len(parts) - stmt.level + 1]
    return ".".join([*parts, stmt.module] if stmt.module else parts)


def _is_package(module: str) -> bool:
    path = _source(module)
    return path is not None and path.name == "__init__.py"


def _lookup(module: str, name: str, depth: int) -> tuple[ast.stmt, str, ast.Module] | None:
    """``(definition, module it is in, that module's tree)`` of ``module.name``, following
    ``from x import name`` re-exports (a package's ``__init__``)."""
    tree = _tree(module)
    if tree is None or depth > 8:
        return None
    for stmt in tree.body:
        if isinstance(stmt, ast.ClassDef | ast.FunctionDef) and stmt.name == name:
            return stmt, module, tree
    for stmt in tree.body:
        if isinstance(stmt, ast.ImportFrom):
            for alias in stmt.names:
                if (alias.asname or alias.name) == name:
                    return _lookup(_absolute(module, stmt), alias.name, depth + 1)
    return None


@functools.cache
def _tree(module: str) -> ast.Module | None:
    path = _source(module)
    if path is None:
        return None
    try:
        return ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return None


@functools.cache
def _source(module: str) -> Path | None:
    """The source file of ``module``, found without importing it or its packages (finding a
    submodule with :func:`importlib.util.find_spec` would run the parents' ``__init__``)."""
    top, *rest = module.split(".")
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return None
    if spec is None:
        return None
    if not rest:
        origin = spec.origin or ""
        return Path(origin) if origin.endswith(".py") else None
    for location in spec.submodule_search_locations or []:
        path = Path(location, *rest)
        for candidate in (path.with_suffix(".py"), path / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


# ---------------------------------------------------------------- schemas derived from plug-ins
#: task keys that belong to the harness (TaskConfig), not to the constructor; ``scales`` holds
#: per-scale presets that a task's YAML interpolates its keys from
_TASK_HARNESS = ("name", "budget", "lr", "target", "scales")
_SCALARS: dict[str, type] = {"int": int, "float": float, "bool": bool, "str": str}


def _annotation_type(node: ast.expr | None, where: tuple[str, ast.Module] | None = None) -> Any:
    """The OmegaConf-typable type of an annotation, read from its source: ``int``/``float``/
    ``bool``/``str``, a ``@dataclass`` of the plug-in (a nested schema, itself read from source),
    a sequence of one of those (a list), ``X | None`` (optional); anything else is ``Any``
    (untyped, so any value the YAML gives composes)."""
    if node is None:
        return Any
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr):
        parts = [node.left, node.right]
        if any(_is_none(p) for p in parts):
            inner = _annotation_type(next(p for p in parts if not _is_none(p)), where)
            return Any if inner is Any else Optional[inner]  # noqa: UP045 - OmegaConf reads it
        return Any
    if isinstance(node, ast.Subscript):
        outer = (_dotted(node.value) or "").rpartition(".")[2]
        if outer == "Optional":
            inner = _annotation_type(node.slice, where)
            return Any if inner is Any else Optional[inner]  # noqa: UP045 - OmegaConf reads it
        if outer in ("Sequence", "list", "List", "tuple", "Tuple"):
            items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
            items = [i for i in items if not (isinstance(i, ast.Constant) and i.value is ...)]
            kinds = {_annotation_type(i, where) for i in items}
            if len(kinds) == 1 and (kind := kinds.pop()) is not Any:
                return list[kind]
        return Any
    dotted = _dotted(node) or ""
    if dotted in _SCALARS:
        return _SCALARS[dotted]
    if where is not None and dotted:
        target = _resolve_name(where[0], where[1], dotted)
        nested = _source_dataclass(target) if target else None
        if nested is not None:
            return nested
    return Any


#: every dataclass this module derives, by the name it is importable as (``aebench.schema.<name>``)
_DERIVED: dict[str, type] = {}
_DERIVED_PREFIX = "_derived_"


def _dataclass(name: str, fields: list[Any], bases: tuple[type, ...] = (), key: str = "") -> type:
    """``dataclasses.make_dataclass``, importable as ``aebench.schema._derived_<key or name>``.

    So that it pickles by reference: the joblib launcher's worker processes receive Hydra's
    ConfigStore pickled, and a dataclass pickled by value loses the identity of
    ``dataclasses.MISSING`` (every ``default_factory`` and required field then reads as a default
    that is a foreign object: cartpole_drift's nested ``drift`` failed to compose under
    ``--jobs 2``). The worker finds the class through this module's ``__getattr__``, which derives
    the schemas again from the config tree."""
    cls = dataclasses.make_dataclass(name, fields, bases=bases)
    qualname = _DERIVED_PREFIX + re.sub(r"\W", "_", key or name)
    cls.__module__, cls.__qualname__ = __name__, qualname
    _DERIVED[qualname] = cls
    return cls


def __getattr__(name: str) -> Any:
    """A derived schema by its importable name (:func:`_dataclass`), derived on first use in a
    process that has not derived them (a launcher's worker unpickling the ConfigStore)."""
    if name.startswith(_DERIVED_PREFIX) and name not in _DERIVED:
        derived_schemas()
    if name in _DERIVED:
        return _DERIVED[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


@functools.cache
def _source_dataclass(target: str) -> type | None:
    """The ``@dataclass`` ``target`` of a plug-in rebuilt from its source (fields, annotations,
    literal defaults, ``field(default_factory=...)``), or None if it is not one."""
    module, _, name = target.rpartition(".")
    found = _lookup(module, name, 0) if module else None
    if found is None or not isinstance(found[0], ast.ClassDef):
        return None
    node, where, tree = found
    if not any((_dotted(d.func if isinstance(d, ast.Call) else d) or "").endswith("dataclass")
               for d in node.decorator_list):  # fmt: skip
        return None
    bases = []
    for base in node.bases:
        resolved = _resolve_name(where, tree, _dotted(base) or "")
        nested = _source_dataclass(resolved) if resolved else None
        if nested is not None:
            bases.append(nested)
    fields: list[tuple[str, Any, Any]] = []
    for stmt in node.body:
        if not (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name)):
            continue
        if "ClassVar" in ast.unparse(stmt.annotation):
            continue
        kind = _annotation_type(stmt.annotation, (where, tree))
        spec = (
            field(default=MISSING) if stmt.value is None else _field_spec(stmt.value, where, tree)
        )
        fields.append((stmt.target.id, kind, spec))
    return _dataclass(name, fields, tuple(bases), key=target)


def _field_spec(value: ast.expr, module: str, tree: ast.Module) -> Any:
    """A dataclass field for a default written in a plug-in's source."""
    if isinstance(value, ast.Call) and (_dotted(value.func) or "").endswith("field"):
        for kw in value.keywords:
            if kw.arg == "default":
                return _field_spec(kw.value, module, tree)
            if kw.arg == "default_factory":
                factory = kw.value
                if isinstance(factory, ast.Lambda):
                    return _field_spec(factory.body, module, tree)
                name = _dotted(factory) or ""
                if name in ("list", "dict"):
                    return field(default_factory=list if name == "list" else dict)
                nested = _source_dataclass(_resolve_name(module, tree, name) or "")
                if nested is not None:
                    return field(default_factory=nested)
        return field(default=MISSING)
    return _default(value, tree)


def _is_none(node: ast.expr) -> bool:
    return isinstance(node, ast.Constant) and node.value is None


def _default(node: ast.expr, tree: ast.Module) -> Any:
    """A constructor default as a dataclass field default (sequences as lists); MISSING where it
    is not a literal (the YAML must then give the value)."""
    try:
        value = _literal(node, tree)
    except ValueError:
        return field(default=MISSING)
    if isinstance(value, tuple):
        value = list(value)
    if isinstance(value, list | dict):
        return field(default_factory=lambda v=value: copy.deepcopy(v))
    return field(default=value)


def constructor_schema(
    target: str, base: type, skip: tuple[str, ...], name: str, extra: tuple[str, ...] = ()
) -> type | None:
    """A dataclass extending ``base``, one field per parameter of ``target``'s constructor (but
    ``self``, ``*args``, ``**kwargs``, those in ``skip`` and those ``base`` has), typed by its
    annotation and defaulting to its default, plus untyped ``extra`` fields; read from the
    source (:func:`plugin_info`), so no plug-in is imported. None if ``target`` has no source."""
    module, _, cls = target.rpartition(".")
    found = _lookup(module, cls, 0) if module else None
    if found is None:
        return None
    node, where, tree = found
    init = node
    if isinstance(node, ast.ClassDef):
        init = next(
            (s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"),
            None,
        )
        if init is None:
            return None
    args = init.args
    positional = [*args.posonlyargs, *args.args]
    if isinstance(node, ast.ClassDef):
        positional = positional[1:]  # self
    defaults = [None] * (len(positional) - len(args.defaults)) + list(args.defaults)
    params = list(zip(positional, defaults, strict=True))
    params += list(zip(args.kwonlyargs, args.kw_defaults, strict=True))
    have = {f.name for f in dataclasses.fields(base)}
    fields: list[tuple[str, Any, Any]] = []
    for arg, default in params:
        if arg.arg in skip or arg.arg in have:
            continue
        spec = field(default=MISSING) if default is None else _default(default, tree)
        kind = _annotation_type(arg.annotation, (where, tree))
        fields.append((arg.arg, kind, spec))
    fields += [(key, Any, field(default=None)) for key in extra if key not in have]
    return _dataclass(name, fields, (base,))


def derived_task_schemas(conf: Path) -> dict[str, type]:
    """``schema/task/<kind>`` for every task option of the config tree that names one: derived
    from the constructor of its ``_target_`` (:func:`constructor_schema`) over
    :class:`TaskConfig`. The kind is read from the option named like it (``regression.yaml``)."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    schemas: dict[str, type] = {}
    for path in sorted((conf / "task").glob("*.yaml")):
        try:
            option = yaml.load(path.read_text(), Loader=loader) or {}
        except (OSError, yaml.YAMLError):
            continue
        if not isinstance(option, dict) or "_target_" not in option:
            continue
        names = [str(d) for d in option.get("defaults") or [] if isinstance(d, str)]
        if f"/schema/task/{path.stem}@_here_" not in names:
            continue
        extra = tuple(k for k in _TASK_HARNESS if k in option)
        name = f"{path.stem}_task"
        schema = constructor_schema(str(option["_target_"]), TaskConfig, ("seed",), name, extra)
        if schema is None:
            continue
        scales = _scales_schema(option, schema, path.stem)
        if scales is not None:  # typed in place of the untyped harness field
            scales_field = ("scales", scales, field(default_factory=scales))
            schema = _dataclass(name, [scales_field], (schema,), key=f"{name}_with_scales")
        schemas[path.stem] = schema
    return schemas


#: a task key that takes its value from the run's scale preset, ``scales.<scale>.<key>``
_PER_SCALE = re.compile(r"^\$\{task\.scales\.\$\{scale\.name\}\.([A-Za-z_]\w*)\}$")


def _scales_schema(option: dict[str, Any], schema: type, kind: str) -> type | None:
    """The shape of a task option's ``scales`` (a preset of keys per scale): the scales and keys
    its YAML gives, each key typed like the task key that reads it (``d_model:
    ${task.scales.${scale.name}.d_model}`` types ``scales.<scale>.d_model`` as ``d_model``;
    optional where a preset gives null, Any where no key reads it). None where the option has no
    presets or they differ in their keys (left untyped: a typed preset would gain the keys)."""
    presets = option.get("scales")
    if not (isinstance(presets, dict) and presets):
        return None
    keys = [list(p) if isinstance(p, dict) else None for p in presets.values()]
    if any(k is None or set(k) != set(keys[0]) for k in keys):
        return None
    readers: dict[str, Any] = {}

    def read(node: dict[str, Any], node_kind: Any) -> None:
        hints = typing.get_type_hints(node_kind) if dataclasses.is_dataclass(node_kind) else {}
        for key, value in node.items():
            if isinstance(value, dict):
                inner = [a for a in typing.get_args(hints.get(key)) if a is not type(None)]
                read(value, inner[0] if len(inner) == 1 else hints.get(key, Any))
            elif isinstance(value, str) and (found := _PER_SCALE.match(value)):
                readers[found.group(1)] = hints.get(key, Any)

    read({k: v for k, v in option.items() if k != "scales"}, schema)
    fields: list[tuple[str, Any, Any]] = []
    for key in keys[0] or []:
        key_kind = readers.get(key, Any)
        nulls = any(p[key] is None for p in presets.values())
        if nulls and key_kind is not Any and not _is_optional(key_kind):
            key_kind = Optional[key_kind]  # noqa: UP045 - OmegaConf reads it
        fields.append((key, key_kind, field(default=MISSING)))
    preset = _dataclass(f"{kind}_scale", fields)
    return _dataclass(
        f"{kind}_scales", [(name, preset, field(default_factory=preset)) for name in presets]
    )


# ---- optimizer and schedule options: the option's keys, typed by the constructor
#: the groups whose options' schemas are derived by :func:`derived_option_schemas`
OPTION_GROUPS = ("optimizer", "schedule")
#: packages whose sources are never read: torch is no plug-in, its files are large, and its
#: optimizers annotate ``lr`` as ``float | Tensor`` (nothing to type a config key with)
_UNREAD = frozenset({"torch"})
#: ``key: value  # type: <annotation>``: an option's explicit type for a key (``float | None``)
_TYPE_COMMENT = re.compile(r"^([A-Za-z_]\w*)\s*:[^#]*#\s*type:\s*([^;#]+)")
#: ``# @traits {key: value}`` in an option's leading comments: the traits of a third-party
#: ``_target_``, which cannot declare them itself (read by :func:`traits_of`)
_TRAITS_COMMENT = re.compile(r"^#\s*@traits\s+(.+)$")
#: a plain interpolation ``${a.b.c}`` of another key, typed by that key's schema
_INTERPOLATION = re.compile(r"^\$\{([A-Za-z_][\w.]*)\}$")


def _parameters(target: str, depth: int = 0) -> dict[str, tuple[Any, Any]] | None:
    """``{name: (annotation node, (module, tree))}`` of the constructor of ``target`` read from
    its source (a class's ``__init__``, inherited if it has none; a factory function's
    signature); None where there is no source to read (or it is torch's)."""
    module, _, name = target.rpartition(".")
    if not module or module.split(".")[0] in _UNREAD or depth > 8:
        return None
    found = _lookup(module, name, 0)
    if found is None:
        return None
    node, where, tree = found
    init: ast.stmt | None = node
    if isinstance(node, ast.ClassDef):
        init = next(
            (s for s in node.body if isinstance(s, ast.FunctionDef) and s.name == "__init__"),
            None,
        )
        if init is None:
            for base in node.bases:
                resolved = _resolve_name(where, tree, _dotted(base) or "")
                if resolved and resolved not in _ROOTS:
                    inherited = _parameters(resolved, depth + 1)
                    if inherited is not None:
                        return inherited
            return None
    if not isinstance(init, ast.FunctionDef):
        return None
    args = [*init.args.posonlyargs, *init.args.args, *init.args.kwonlyargs]
    if isinstance(node, ast.ClassDef):
        args = args[1:]  # self
    return {a.arg: (a.annotation, (where, tree)) for a in args}


def _is_optional(kind: Any) -> bool:
    return type(None) in typing.get_args(kind)


def _interpolated_type(value: str) -> Any:
    """The type of the key a plain interpolation ``${a.b}`` reads, from the schemas of the
    config (``task.*``: :class:`TaskConfig`); None where it cannot be told (a nested
    interpolation, a relative one, a key no schema types)."""
    match = _INTERPOLATION.match(value)
    if match is None:
        return None
    kind: Any = Config
    for part in match.group(1).split("."):
        args = [a for a in typing.get_args(kind) if a is not type(None)]
        if _is_optional(kind) and len(args) == 1:
            kind = args[0]
        if not dataclasses.is_dataclass(kind):
            return None
        hints = {"task": TaskConfig} if kind is Config else {}
        kind = hints.get(part) or typing.get_type_hints(kind).get(part)
        if kind is None or kind is Any:
            return None
    args = [a for a in typing.get_args(kind) if a is not type(None)]
    return Optional[args[0]] if _is_optional(kind) and len(args) == 1 else kind  # noqa: UP045


def _value_type(value: Any) -> Any:
    """The type of a literal YAML value: a scalar's, a list of one scalar type's (ints among
    floats count as floats), a mapping's (``dict[str, Any]``); Any for null."""
    if isinstance(value, bool | int | float | str):
        return type(value)
    if isinstance(value, list):
        kinds = {_value_type(v) for v in value}
        if kinds == {int, float}:
            kinds = {float}
        if len(kinds) == 1 and (kind := kinds.pop()) in (bool, int, float, str):
            return list[kind]
        return list[Any]
    if isinstance(value, dict):
        return dict[str, Any]
    return Any


def _key_type(key: str, value: Any, explicit: str | None, params: dict | None) -> Any:
    """The type of an option's ``key`` (given ``value`` in its YAML): its explicit ``# type:``
    annotation, else the type of the key an interpolation reads, else the annotation of the
    constructor parameter of that name, else the YAML value's own; Optional if the YAML's
    value is null."""
    kind: Any = None
    if explicit is not None:
        try:
            kind = _annotation_type(ast.parse(explicit.strip(), mode="eval").body)
        except SyntaxError:
            raise ValueError(f"{key}: '# type: {explicit.strip()}' is no annotation") from None
    if kind is None and isinstance(value, str) and "${" in value:
        kind = _interpolated_type(value) or None
    if kind is None and params is not None and key in params:
        annotation, where = params[key]
        kind = _annotation_type(annotation, where)
        kind = None if kind is Any else kind
    if kind is None:
        kind = Any if isinstance(value, str) and "${" in value else _value_type(value)
    if value is None and kind is not Any and not _is_optional(kind):
        kind = Optional[kind]  # noqa: UP045 - OmegaConf reads it
    return kind


def _option_comments(text: str) -> tuple[dict[str, str], dict[str, Any]]:
    """An option's ``# type:`` annotations per top-level key and its ``# @traits``."""
    import yaml

    types: dict[str, str] = {}
    traits: dict[str, Any] = {}
    leading = True
    for line in text.splitlines():
        if leading and line.startswith("#"):
            found = _TRAITS_COMMENT.match(line)
            if found is not None:
                declared = yaml.safe_load(found.group(1))
                traits.update(declared if isinstance(declared, dict) else {})
            continue
        leading = leading and not line.strip()
        if (found := _TYPE_COMMENT.match(line)) is not None:
            types[found.group(1)] = found.group(2)
    return types, traits


@functools.cache
def _options(conf: Path, group: str) -> tuple[tuple[str, dict[str, Any], str], ...]:
    """``(kind, YAML keys and values, YAML text)`` of every option of ``group`` in the config
    tree ``conf`` that names its own schema (``/schema/<group>/<kind>@_here_``) and gives its
    ``_target_``."""
    from omegaconf import OmegaConf

    found = []
    for path in sorted((conf / group).glob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
            option = OmegaConf.to_container(OmegaConf.create(text), resolve=False)
        except Exception:  # noqa: BLE001 - a broken option is Hydra's to report, by name
            continue
        if not isinstance(option, dict) or "_target_" not in option:
            continue
        names = [str(d) for d in option.pop("defaults", None) or [] if isinstance(d, str)]
        if f"/schema/{group}/{path.stem}@_here_" in names:
            found.append((path.stem, option, text))
    return tuple(found)


@functools.cache
def derived_option_schemas(conf: Path, group: str) -> dict[str, type]:
    """``schema/<group>/<kind>`` for every optimizer or schedule option of the config tree:
    exactly the keys its YAML gives (they are what the run records: a constructor's other
    parameters, torch's ``maximize`` or ``foreach``, stay at their defaults and out of the
    record), each typed by :func:`_key_type` (the constructor read from source, no plug-in
    imported); values are the YAML's, so the fields have no default but ``_target_``."""
    schemas: dict[str, type] = {}
    for kind, option, text in _options(conf, group):
        explicit, _ = _option_comments(text)
        params = _parameters(str(option["_target_"]))
        fields: list[tuple[str, Any, Any]] = []
        for key, value in option.items():
            spec = field(default=value) if key == "_target_" else field(default=MISSING)
            fields.append((key, _key_type(key, value, explicit.get(key), params), spec))
        schemas[kind] = _dataclass(f"{kind}_{group}", fields)
    return schemas


@functools.cache
def _option_traits(conf: Path) -> dict[str, dict[str, Any]]:
    """``{_target_: traits}`` declared by ``# @traits`` in the options of the config tree."""
    declared: dict[str, dict[str, Any]] = {}
    for group in OPTION_GROUPS:
        for _, option, text in _options(conf, group):
            traits = _option_comments(text)[1]
            if traits:
                declared.setdefault(str(option["_target_"]), {}).update(traits)
    return declared


#: the schemas written here; those of tasks (derived_task_schemas), optimizers and schedules
#: (derived_option_schemas) are derived from the plug-ins
SCHEMAS: dict[str, dict[str, type]] = {
    "logger": {"csv": CSVLoggerConfig, "wandb": WandbLoggerConfig},
    "swarm": SWARM_SCHEMAS,
}


def register_configs() -> None:
    """Store the top-level schema as ``base_config`` and each group schema under ``schema/``.

    ``scale`` and ``ae`` are typed directly in :class:`Config`, so their YAML options need no
    schema line of their own; ``swarm`` options differ in shape (a single trajectory or a
    population rule) and extend ``schema/swarm/<kind>`` like tasks do.
    """
    cs = ConfigStore.instance()
    cs.store(name="base_config", node=Config)
    for group, kinds in SCHEMAS.items():
        for kind, node in kinds.items():
            cs.store(group=f"schema/{group}", name=kind, node=node)
    for group, kinds in derived_schemas().items():
        for kind, node in kinds.items():
            cs.store(group=f"schema/{group}", name=kind, node=node)


def derived_schemas() -> dict[str, dict[str, type]]:
    """``{group: {kind: schema}}`` of the package's config tree derived from the plug-ins: the
    tasks' (:func:`derived_task_schemas`), the optimizers' and schedules'
    (:func:`derived_option_schemas`)."""
    from aebench.paths import config_dir

    derived = {"task": derived_task_schemas(config_dir())}
    for group in OPTION_GROUPS:
        derived[group] = derived_option_schemas(config_dir(), group)
    return derived


def traits_of(target: object) -> dict[str, Any]:
    """The traits of the plug-in ``target`` (a ``_target_``): those its class or function
    declares (:func:`plugin_info`) over those an option declares for it (``# @traits`` in its
    YAML, for a third-party class, which cannot declare its own) or its group schema does."""
    from aebench.paths import config_dir

    info = plugin_info(str(target))
    traits: dict[str, Any] = {}
    for kinds in SCHEMAS.values():
        for node in kinds.values():
            if getattr(node, "_target_", None) == str(target):
                traits.update(getattr(node, "traits", {}))
    traits.update(_option_traits(config_dir()).get(str(target), {}))
    return {**traits, **(info.traits if info is not None else {})}


def option_name(cfg: Any, group: str) -> str:
    """The option of ``group`` that ``cfg`` was composed from, for messages: Hydra's choice when
    known, else the schema kind whose ``_target_`` it has, else its ``_target_``'s last part."""
    from omegaconf import OmegaConf

    choice = OmegaConf.select(cfg, f"hydra.runtime.choices.{group}", default=None)
    if choice is None:
        from hydra.core.hydra_config import HydraConfig

        if HydraConfig.initialized():
            choice = HydraConfig.get().runtime.choices.get(group)
    if choice is not None:
        return str(choice)
    target = str(OmegaConf.select(cfg, f"{group}._target_", default="") or "")
    from aebench.paths import config_dir

    kinds = dict(SCHEMAS.get(group, {}))
    if group in OPTION_GROUPS:
        kinds.update(derived_option_schemas(config_dir(), group))
    for kind, node in kinds.items():
        if getattr(node, "_target_", None) == target:
            return kind
    return target.rsplit(".", 1)[-1]
