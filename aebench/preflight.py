"""Check a command line before Hydra launches anything.

Hydra would catch most mistakes itself, but late (a bad value in a sweep fails at that job) and
in several lines. The preflight composes the config for the first value of every sweep and then
for each other value in turn, validates ranges (``aebench.validation``), and turns the first
problem into one line that names the key, the value and what is allowed. It imports no torch,
so it answers in about a second.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hydra import compose, initialize_config_dir
from hydra._internal.utils import get_args_parser
from hydra.core.global_hydra import GlobalHydra
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from omegaconf import DictConfig, OmegaConf

from aebench.paths import config_dir
from aebench.schema import register_configs
from aebench.validation import ConfigError, validate_config

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

        for o, vals in zip(parsed, values, strict=True):
            key = o.key_or_group
            if key not in groups or o.is_delete():
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

        base = [first(o, v) for o, v in zip(parsed, values, strict=True)]
        combos = [base]
        for i, vals in enumerate(values):
            for v in (vals or [])[1:]:
                combo = list(base)
                combo[i] = _override_string(parsed[i], v)
                combos.append(combo)

        def compose_combo(combo: list[str]) -> DictConfig:
            return compose(config_name="config", overrides=combo)

        for combo in combos:
            try:
                cfg = compose_combo(combo)
            except Exception as err:  # noqa: BLE001 - translate any composition error
                raise ConfigError(_explain(err, combo, compose_combo)) from None
            try:
                validate_config(cfg)
            except ConfigError:
                raise
            except Exception as err:  # noqa: BLE001 - e.g. an interpolation that fails
                raise ConfigError(_first_line(err)) from None
