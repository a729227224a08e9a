"""Check a command line before Hydra launches anything.

Hydra would catch most mistakes itself, but late (a bad value in a sweep fails at that job) and
in several lines. The preflight composes the config for the first value of every sweep and then
for each other value in turn, validates ranges (``aebench.validation``), and turns the first
problem into one line that names the key, the value and what is allowed. It imports no torch,
so it answers in about a second.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import BooleanNode, DictConfig, FloatNode, IntegerNode, OmegaConf

from aebench.paths import config_dir
from aebench.schema import register_configs
from aebench.validation import ConfigError, validate_config

#: where plug-ins outside the package add config groups and options (docs/howto_add_task.md)
SP = "hydra.searchpath"
#: keys hidden from "allowed keys" lists: instantiate plumbing, not settings
_PLUMBING = ("_target_", "_partial_", "_convert_", "_recursive_")


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _override_string(o: Override, value: str | None = None) -> str:
    return o.input_line if value is None else f"{o.get_key_element()}={value}"


def _explain(err: BaseException, combo: list[str], loader_compose) -> str:  # noqa: ANN001
    """One line for a composition error of ``combo``."""
    text = str(err)
    cause = err.__cause__ or err.__context__
    bad = re.search(r"Could not override '([^']+)'", text)
    if bad and ("not in" in text or "not in" in str(cause)):
        key = bad.group(1)
        given = next((c for c in combo if c.split("=", 1)[0].lstrip("+~") == key), key)
        parent_key, _, leaf = key.rpartition(".")
        rest = [c for c in combo if c != given]
        try:
            parent = OmegaConf.select(loader_compose(rest), parent_key) if parent_key else None
        except Exception:  # noqa: BLE001 - only for the hint
            parent = None
        if isinstance(parent, DictConfig):
            keys = [k for k in parent if k not in _PLUMBING]
            return f"{given}: no key '{leaf}' in {parent_key}; allowed keys: {', '.join(keys)}"
        return f"{given}: no such key"
    merging = re.search(r"Error merging override (\S+)", text)
    if merging and cause is not None:
        typed = re.search(r"could not be converted to (Integer|Float|Boolean)", str(cause))
        if typed:
            kind = {"Integer": IntegerNode, "Float": FloatNode, "Boolean": BooleanNode}
            return f"{merging.group(1)}: must be {_ALLOWED[kind[typed.group(1)]]}"
        return f"{merging.group(1)}: {_first_line(cause)}"
    line = _first_line(err)
    if cause is not None and _first_line(cause) not in line:
        line += f" ({_first_line(cause)})"
    return line


def preflight(argv: Sequence[str]) -> None:
    """Raise :class:`ConfigError` with one line if ``argv`` cannot run; return if it can."""
    args, _ = get_args_parser().parse_known_args(list(argv))
    if (
        args.help
        or args.hydra_help
        or args.info
        or args.shell_completion
        or args.config_path
        or args.config_dir
        or args.config_name
    ):
        return  # Hydra's own modes and custom config trees: leave them to Hydra
    register_configs()
    GlobalHydra.instance().clear()
    with initialize_config_dir(str(config_dir()), version_base="1.3"):
        loader = GlobalHydra.instance().config_loader()
        try:
            parsed = OverridesParser.create(config_loader=loader).parse_overrides(args.overrides)
        except Exception as err:  # noqa: BLE001 - hydra's parse errors have no common base
            raise ConfigError(f"cannot parse the overrides: {_first_line(err)}") from None
        hydra_overrides = {o.key_or_group: o for o in parsed if o.is_hydra_override()}
        parsed = [o for o in parsed if not o.is_hydra_override()]
        groups = set(loader.list_groups(""))

        values: list[list[str] | None] = []
        for o in parsed:
            if not o.is_sweep_override():
                values.append(None)
                continue
            if not args.multirun:
                raise ConfigError(f"{o.input_line}: a sweep needs -m (multirun)")
            values.append(None if o.is_interval_sweep() else list(o.sweep_string_iterator()))
            if values[-1] == []:
                raise ConfigError(f"{o.input_line}: the sweep has no values")

        # plug-in config folders (hydra.searchpath=[file://...]) add options Hydra finds at
        # composition: the options check below knows only the package's, so it leaves them
        searchpath = [o.input_line for o in hydra_overrides.values() if o.key_or_group == SP]
        for o, vals in zip(parsed, values, strict=True):
            key = o.key_or_group
            if key not in groups or o.is_delete() or searchpath:
                continue
            options = loader.get_group_options(key)
            for v in vals if vals is not None else [str(o.value())]:
                if v not in options and v != "null":
                    raise ConfigError(
                        f"{key}={v}: no such option in group '{key}'; choose from: "
                        + ", ".join(options)
                    )

        def first(o: Override, vals: list[str] | None) -> str:
            return _override_string(o, vals[0] if vals else None)

        base = searchpath + [first(o, v) for o, v in zip(parsed, values, strict=True)]
        combos = [base]
        for i, vals in enumerate(values):
            for v in (vals or [])[1:]:
                combo = list(base)
                combo[len(searchpath) + i] = _override_string(parsed[i], v)
                combos.append(combo)

        def compose_combo(combo: list[str]) -> DictConfig:
            return compose(config_name="config", overrides=combo, return_hydra_config=True)

        for n, combo in enumerate(combos):
            try:
                cfg = compose_combo(combo)
            except Exception as err:  # noqa: BLE001 - translate any composition error
                raise ConfigError(_explain(err, combo, compose_combo)) from None
            try:
                check_override_types(parsed, cfg)
                validate_config(cfg)
                if n == 0:
                    check_output_dir(cfg, bool(args.multirun), hydra_overrides)
                check_wandb(cfg)
            except ConfigError:
                raise
            except Exception as err:  # noqa: BLE001 - e.g. an interpolation that fails
                raise ConfigError(_first_line(err)) from None


#: what a typed key allows, for the one-line message
_ALLOWED = {
    BooleanNode: "a boolean (true or false)",
    IntegerNode: "an integer",
    FloatNode: "a number",
}


def _fits(node_type: type, value: object) -> bool:
    if node_type is BooleanNode:
        return isinstance(value, bool)
    if node_type is IntegerNode:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def check_override_types(parsed: Sequence[Override], cfg: DictConfig) -> None:
    """Booleans, integers and floats typed strictly on the command line.

    OmegaConf converts leniently (``gauge=2`` becomes ``true``, ``seed=2.0`` becomes ``2``), so
    the check reads the override's own value as Hydra parsed it (``2`` is an int, ``true`` a
    bool, ``1e-3`` a float, ``abc`` a string) against the type of the key it sets.
    """
    for o in parsed:
        if o.is_delete() or o.key_or_group.startswith("hydra."):
            continue
        node = _node(cfg, o.key_or_group)
        kind = type(node)
        if kind not in _ALLOWED:
            continue
        values = list(o.sweep_iterator()) if o.is_discrete_sweep() else [o.value()]
        for value in values:
            if value is None and node._is_optional():
                continue
            if not _fits(kind, value):
                shown = "null" if value is None else value
                raise ConfigError(
                    f"{o.key_or_group}={shown}: must be {_ALLOWED[kind]}"
                    + (" or null" if node._is_optional() else "")
                )


def _node(cfg: DictConfig, key: str) -> object:
    """The OmegaConf node at a dotted ``key`` (None where there is none)."""
    node: object = cfg
    for part in key.split("."):
        if not isinstance(node, DictConfig) or part not in node:
            return None
        node = node._get_node(part)
    return node


def check_output_dir(cfg: DictConfig, multirun: bool, given: dict[str, Override]) -> None:
    """The run (or sweep) folder can be created and written, before anything starts."""
    key = "hydra.sweep.dir" if multirun else "hydra.run.dir"
    if key in given:  # the command line's value; its interpolations resolve at run time
        where = Path(str(given[key].value()).split("${", 1)[0] or ".")
    else:
        try:
            where = Path(str(OmegaConf.select(cfg, key)))
        except Exception:  # noqa: BLE001 - a runtime-only interpolation: Hydra will say
            return
    problem = unwritable(where)
    if problem:
        raise ConfigError(f"{key}={where}: {problem}; give {key}=<a folder you can write>")


def unwritable(path: Path) -> str | None:
    """Why ``path`` cannot be created or written as a folder, or None if it can."""
    path = path if path.is_absolute() else Path.cwd() / path
    probe = path
    while not probe.exists():
        if probe.is_symlink() or probe.parent == probe:
            return "cannot be created"
        probe = probe.parent
    if not probe.is_dir():
        return f"cannot be created ({probe} is not a folder)"
    import tempfile

    try:  # the only sure test (permissions, read-only mounts, /proc): make a folder, remove it
        os.rmdir(tempfile.mkdtemp(prefix=".aebench-probe-", dir=probe))
    except OSError as err:
        return f"cannot be {'written' if probe == path else 'created'} ({probe}: {err.strerror})"
    return None


def check_wandb(cfg: DictConfig) -> None:
    """Online W&B needs credentials: refuse before the job rather than fail inside it."""
    logger = cfg.get("logger")
    if logger is None or logger.get("kind") != "wandb" or logger.get("offline", True):
        return
    if os.environ.get("WANDB_MODE", "").lower() in ("offline", "disabled", "dryrun"):
        return
    if os.environ.get("WANDB_API_KEY") or _netrc_has_wandb():
        return
    raise ConfigError(
        "logger.offline=false: no W&B credentials (no WANDB_API_KEY, no api.wandb.ai entry in "
        "~/.netrc); run `wandb login` first, or keep logger.offline=true"
    )


def _netrc_has_wandb() -> bool:
    import netrc

    host = os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai").split("//")[-1].rstrip("/")
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False
