"""Pre-registered predictions: the schema of ``conf/predictions/*.yaml``, loading, validation.

A prediction names the runs it needs, the metric(s), the comparison, the direction the theory
predicts, a threshold and alpha, and the sweep that produces its runs. It is written before the
runs exist and evaluated by :mod:`analysis.verdicts`. Every key is documented in
docs/predictions.md; in short:

- ``kind: compare`` (default): arm ``b`` (the arm the theory favours) against arm ``a`` (the
  reference), paired on ``pair_on`` (default: the seed) within each stratum (``strata``,
  default the task; the data source is always a stratum). ``select_a: best`` replaces arm ``a``
  by the best of the arms matching it (per stratum, by the first metric's mean), e.g. "the best
  fixed schedule".
- ``a: best_fixed_schedule`` (a named arm, :data:`NAMED_ARMS`) is shorthand for "the best
  vanilla run over every schedule and lr in the stratum": ``a = {ae: false, swarm: off}``
  without the optimizers that set their own step size (the run field ``self_tuning``, from the
  record's ``optimizer_traits``; :func:`analysis.runs.self_tuning`), and
  ``select_a: best`` implied (``select_a: all`` is an error). The selection is over schedules
  and lrs, so neither may be a stratum or a pairing field (``schedule``, ``lr``, ``arm``,
  ``label``, ``method``, ``config.schedule...``, ``config.optimizer.lr``): a one-line error
  says which. ``schedule=lr_finder`` runs are candidates too (a tuned fixed schedule). Put
  ``optimizer`` in ``strata`` to pick per optimizer, or restrict the candidates with ``runs``.
- ``kind: spread``: as ``compare``, on the spread of a metric across the levels of ``factor``
  (e.g. ``config.task.loss_scale``) within each pairing unit: ``sd_log`` (standard deviation of
  its log) or ``range_log`` (max minus min of its log).
- ``kind: correlation``: the correlation of ``x`` and ``y`` over the best ``top_fraction`` of
  the runs (ranked by ``rank_by``), with a bootstrap CI.

``metric`` is one name or a list; a list entry may be a mapping ``{name, effect, direction,
threshold}`` overriding the prediction's defaults for that metric. ``combine: all`` needs
every metric's test to support the claim, ``any`` one of them. ``guards`` are non-inferiority
side conditions (e.g. "instability does not rise"): ``{metric, effect, margin}``.

Errors are one line naming the file, the key, the value and what is allowed
(:class:`PredictionError`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from analysis.arms import RUN_FIELDS
from analysis.metrics import METRICS, metric_spec

KINDS = ("compare", "spread", "correlation")
DIRECTIONS = ("better", "worse", "increase", "decrease")
EFFECTS = ("difference", "relative")
SELECTS = ("all", "best")
#: named arms ``a`` may be instead of a filter: ``(filter, excluded, what varies inside)``
NAMED_ARMS: dict[str, tuple[dict[str, tuple], dict[str, tuple], str]] = {
    "best_fixed_schedule": (
        {"ae": (False,), "swarm": ("off",)},
        # optimizers that set their own step size are no fixed schedule (their trait)
        {"self_tuning": (True,)},
        "schedule and optimizer.lr",
    ),
}
#: fields that vary across the candidates of a named arm: neither strata nor pairing fields
_VARYING = ("schedule", "lr", "arm", "label", "method", "config.optimizer.lr")
COMBINES = ("all", "any")
SPREADS = ("sd_log", "range_log")
CORRELATIONS = ("spearman", "pearson")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")
REQUIRED = ("claim", "sweep", "direction", "threshold", "alpha")
ALLOWED = (
    "name",
    "claim",
    "source",
    "experiment",
    "sweep",
    "kind",
    "runs",
    "runs_not",
    "a",
    "b",
    "select_a",
    "metric",
    "effect",
    "direction",
    "threshold",
    "combine",
    "alpha",
    "min_n",
    "strata",
    "pair_on",
    "guards",
    "factor",
    "spread",
    "x",
    "y",
    "rank_by",
    "top_fraction",
    "method",
)


class PredictionError(ValueError):
    """A prediction file that does not follow the schema (one line)."""


Scalar = str | int | float | bool | None
Filter = dict[str, tuple[Any, ...]]


@dataclass(frozen=True)
class MetricTest:
    """One hypothesis: ``metric`` moves in ``direction`` by more than ``threshold``.

    ``effect: difference`` measures ``b - a`` in the metric's units; ``relative`` measures
    ``1 - mean(b)/mean(a)`` for a decrease and ``mean(b)/mean(a) - 1`` for an increase (so
    ``threshold: 0.5`` with ``decrease`` reads "b halves a"). For a correlation the effect is the
    correlation coefficient, sign-flipped for ``decrease``.
    """

    metric: str
    effect: str
    direction: str
    threshold: float


@dataclass(frozen=True)
class Guard:
    """A side condition: arm ``b`` is not worse than ``a`` on ``metric`` by more than
    ``margin`` (``effect`` as in :class:`MetricTest`)."""

    metric: str
    effect: str
    margin: float


@dataclass(frozen=True)
class Prediction:
    """One pre-registered prediction (see the module doc and docs/predictions.md for every key)."""

    name: str
    claim: str
    sweep: str
    tests: tuple[MetricTest, ...]
    alpha: float
    source: str = ""
    experiment: str = ""
    kind: str = "compare"
    runs: Filter = field(default_factory=dict)
    #: runs matching every field of this filter are left out (e.g. another experiment's)
    runs_not: Filter = field(default_factory=dict)
    a: Filter = field(default_factory=dict)
    b: Filter = field(default_factory=dict)
    select_a: str = "all"
    #: the named arm ``a`` stands for (``best_fixed_schedule``), "" for a plain filter
    a_named: str = ""
    #: runs of arm ``a`` matching every field of this filter are left out (named arms)
    a_not: Filter = field(default_factory=dict)
    combine: str = "all"
    min_n: int = 5
    strata: tuple[str, ...] = ("task", "scale")
    pair_on: tuple[str, ...] = ("seed",)
    guards: tuple[Guard, ...] = ()
    factor: str | None = None
    spread: str = "sd_log"
    x: tuple[str, ...] = ()
    y: tuple[str, ...] = ()
    rank_by: str = "final"
    top_fraction: float = 0.25
    method: str = "spearman"
    path: str = ""


# --------------------------------------------------------------------------- validation


def _err(path: str, key: str, value: Any, allowed: str) -> PredictionError:
    return PredictionError(f"{path}: {key}={value!r}: {allowed}")


def _choice(path: str, key: str, value: Any, options: tuple[str, ...]) -> str:
    if value not in options:
        raise _err(path, key, value, "allowed: " + ", ".join(options))
    return str(value)


def _number(
    path: str,
    key: str,
    value: Any,
    lo: float | None = None,
    hi: float | None = None,
    open_lo: bool = False,
    open_hi: bool = False,
) -> float:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and lo is not None:
        ok = value > lo if open_lo else value >= lo
    if ok and hi is not None:
        ok = value < hi if open_hi else value <= hi
    if not ok:
        lo_s = "" if lo is None else ("(" if open_lo else "[") + f"{lo}"
        hi_s = "" if hi is None else f"{hi}" + (")" if open_hi else "]")
        span = (
            f" in {lo_s or '(-inf'}, {hi_s or 'inf)'}" if lo is not None or hi is not None else ""
        )
        raise _err(path, key, value, f"a finite number{span}")
    return float(value)


def _field_name(path: str, key: str, name: Any) -> str:
    if isinstance(name, str) and (name in RUN_FIELDS or re.match(r"^config\.\w", name)):
        return name
    raise _err(path, key, name, "a run field (" + ", ".join(RUN_FIELDS) + ") or config.<path>")


def _filter(path: str, key: str, value: Any) -> Filter:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise _err(path, key, value, "a mapping of field: value or [values]")
    out: Filter = {}
    for name, allowed in value.items():
        _field_name(path, f"{key}.{name}", name)
        values = allowed if isinstance(allowed, list) else [allowed]
        for v in values:
            if not isinstance(v, str | int | float | bool | list) and v is not None:
                raise _err(path, f"{key}.{name}", v, "a scalar, a list, or a list of those")
        out[name] = tuple(values)
    return out


def _metric_name(path: str, key: str, value: Any, directed: bool = True) -> str:
    spec = metric_spec(value) if isinstance(value, str) else None
    if spec is None or (directed and value not in METRICS):
        known = ", ".join(METRICS)
        extra = "" if directed else " or <coefficient>:<start|end|min|max|logmean|horizon>"
        raise _err(path, key, value, f"one of {known}{extra}")
    return str(value)


def _names(path: str, key: str, value: Any, check) -> tuple[str, ...]:  # noqa: ANN001
    values = value if isinstance(value, list) else [value]
    if not values:
        raise _err(path, key, value, "at least one name")
    return tuple(check(path, key, v) for v in values)


def _tests(path: str, raw: dict, kind: str) -> tuple[MetricTest, ...]:
    effect = _choice(path, "effect", raw.get("effect", "difference"), EFFECTS)
    directions = ("increase", "decrease") if kind == "correlation" else DIRECTIONS
    direction = _choice(path, "direction", raw["direction"], directions)
    threshold = _number(path, "threshold", raw["threshold"])
    if kind == "correlation":
        if "metric" in raw:
            raise _err(path, "metric", raw["metric"], "not used by kind=correlation (x and y)")
        if "effect" in raw:
            raise _err(path, "effect", raw["effect"], "not used by kind=correlation")
        if not -1 <= threshold < 1:
            raise _err(path, "threshold", threshold, "a correlation in [-1, 1)")
        return (MetricTest("correlation", "correlation", direction, threshold),)
    if "metric" not in raw:
        raise PredictionError(f"{path}: metric is missing (required by kind={kind})")
    entries = raw["metric"] if isinstance(raw["metric"], list) else [raw["metric"]]
    if not entries:
        raise _err(path, "metric", raw["metric"], "a metric name or a non-empty list")
    tests = []
    for i, entry in enumerate(entries):
        key = f"metric[{i}]" if isinstance(raw["metric"], list) else "metric"
        item = entry if isinstance(entry, dict) else {"name": entry}
        unknown = set(item) - {"name", "effect", "direction", "threshold"}
        if unknown:
            bad = sorted(unknown)[0]
            raise _err(path, f"{key}.{bad}", item[bad], "keys: name, effect, direction, threshold")
        name = _metric_name(
            path, f"{key}.name" if isinstance(entry, dict) else key, item.get("name")
        )
        test = MetricTest(
            metric=name,
            effect=_choice(path, f"{key}.effect", item.get("effect", effect), EFFECTS),
            direction=_choice(
                path, f"{key}.direction", item.get("direction", direction), directions
            ),
            threshold=_number(path, f"{key}.threshold", item.get("threshold", threshold)),
        )
        if test.effect == "relative" and test.direction == "decrease" and test.threshold >= 1:
            raise _err(path, f"{key}.threshold", test.threshold, "below 1 for a relative decrease")
        tests.append(test)
    return tuple(tests)


def _guards(path: str, value: Any) -> tuple[Guard, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise _err(path, "guards", value, "a list of {metric, effect, margin}")
    out = []
    for i, g in enumerate(value):
        key = f"guards[{i}]"
        if not isinstance(g, dict) or "metric" not in g or "margin" not in g:
            raise _err(path, key, g, "a mapping with metric, margin and optionally effect")
        unknown = set(g) - {"metric", "effect", "margin"}
        if unknown:
            bad = sorted(unknown)[0]
            raise _err(path, f"{key}.{bad}", g[bad], "keys: metric, effect, margin")
        out.append(
            Guard(
                metric=_metric_name(path, f"{key}.metric", g["metric"]),
                effect=_choice(path, f"{key}.effect", g.get("effect", "difference"), EFFECTS),
                margin=_number(path, f"{key}.margin", g["margin"], lo=0),
            )
        )
    return tuple(out)


def validate(raw: Any, path: str, default_name: str) -> Prediction:
    """A :class:`Prediction` from the parsed YAML of one file, or a :class:`PredictionError`."""
    if not isinstance(raw, dict):
        raise _err(
            path, "<file>", type(raw).__name__, "a mapping of keys (see docs/predictions.md)"
        )
    for key in raw:
        if key not in ALLOWED:
            raise _err(path, str(key), raw[key], "unknown key; allowed: " + ", ".join(ALLOWED))
    for key in REQUIRED:
        if key not in raw:
            raise PredictionError(f"{path}: {key} is missing (required: {', '.join(REQUIRED)})")
    name = raw.get("name", default_name)
    if not isinstance(name, str) or not NAME.match(name):
        raise _err(path, "name", name, "lower-case letters, digits and _ (a-z first)")
    for key in ("claim", "sweep", "source", "experiment"):
        if key in raw and not (isinstance(raw[key], str) and raw[key].strip()):
            raise _err(path, key, raw[key], "a non-empty string")
    kind = _choice(path, "kind", raw.get("kind", "compare"), KINDS)
    tests = _tests(path, raw, kind)
    named, a_not = "", {}
    if isinstance(raw.get("a"), str) and kind != "correlation":
        named = _named_arm(path, raw)
        a_filter, a_not, _ = NAMED_ARMS[named]
        raw = {**raw, "a": {k: list(v) for k, v in a_filter.items()}, "select_a": "best"}
    pred = Prediction(
        name=name,
        claim=raw["claim"].strip(),
        sweep=" ".join(raw["sweep"].split()),
        tests=tests,
        alpha=_number(path, "alpha", raw["alpha"], lo=0, hi=0.5, open_lo=True),
        source=str(raw.get("source", "")).strip(),
        experiment=str(raw.get("experiment", "")).strip(),
        kind=kind,
        runs=_filter(path, "runs", raw.get("runs")),
        runs_not=_filter(path, "runs_not", raw.get("runs_not")),
        a=_filter(path, "a", raw.get("a")),
        b=_filter(path, "b", raw.get("b")),
        select_a=_choice(path, "select_a", raw.get("select_a", "all"), SELECTS),
        a_named=named,
        a_not=dict(a_not),
        combine=_choice(path, "combine", raw.get("combine", "all"), COMBINES),
        min_n=int(_number(path, "min_n", raw.get("min_n", 5), lo=2)),
        strata=_names(path, "strata", raw.get("strata", ["task", "scale"]), _field_name),
        pair_on=_names(path, "pair_on", raw.get("pair_on", ["seed"]), _field_name),
        guards=_guards(path, raw.get("guards")),
        factor=_field_name(path, "factor", raw["factor"]) if "factor" in raw else None,
        spread=_choice(path, "spread", raw.get("spread", "sd_log"), SPREADS),
        x=_names(path, "x", raw["x"], _any_metric) if "x" in raw else (),
        y=_names(path, "y", raw["y"], _any_metric) if "y" in raw else (),
        rank_by=_metric_name(path, "rank_by", raw.get("rank_by", "final")),
        top_fraction=_number(path, "top_fraction", raw.get("top_fraction", 0.25), 0, 1, True),
        method=_choice(path, "method", raw.get("method", "spearman"), CORRELATIONS),
        path=path,
    )
    _check_kind(pred, raw, path)
    return pred


def _named_arm(path: str, raw: dict) -> str:
    """Check ``a: <name>`` of :data:`NAMED_ARMS` and what it implies (module doc)."""
    name = raw["a"]
    if name not in NAMED_ARMS:
        raise _err(path, "a", name, "a filter mapping or one of " + ", ".join(NAMED_ARMS))
    if raw.get("select_a", "best") != "best":
        raise _err(path, "select_a", raw["select_a"], f"a: {name} implies best; remove it")
    varies = NAMED_ARMS[name][2]
    for key, default in (("strata", ["task", "scale"]), ("pair_on", ["seed"])):
        fields = raw.get(key, default)
        for f in fields if isinstance(fields, list) else [fields]:
            if f in _VARYING or (isinstance(f, str) and f.startswith("config.schedule")):
                raise _err(
                    path, key, fields, f"a: {name} selects over {varies}, so {f} cannot be one"
                )
    return str(name)


def _any_metric(path: str, key: str, value: Any) -> str:
    return _metric_name(path, key, value, directed=False)


def _check_kind(pred: Prediction, raw: dict, path: str) -> None:
    """Keys that belong to one kind only, and what each kind needs."""
    if pred.kind == "correlation":
        for key in ("a", "b", "select_a", "guards", "factor", "pair_on"):
            if key in raw:
                raise _err(path, key, raw[key], "not used by kind=correlation; remove it")
        for key in ("x", "y"):
            if key not in raw:
                raise PredictionError(f"{path}: {key} is missing (required by kind=correlation)")
        return
    for key in ("x", "y", "rank_by", "top_fraction", "method"):
        if key in raw:
            raise _err(path, key, raw[key], f"only for kind=correlation, not {pred.kind}")
    if not pred.a or not pred.b:
        missing = "a" if not pred.a else "b"
        raise PredictionError(f"{path}: {missing} is missing (a filter naming the arm)")
    if pred.kind == "spread":
        if pred.factor is None:
            raise PredictionError(f"{path}: factor is missing (required by kind=spread)")
        if pred.guards:
            raise _err(path, "guards", raw["guards"], "not supported by kind=spread")
    elif "factor" in raw or "spread" in raw:
        bad = "factor" if "factor" in raw else "spread"
        raise _err(path, bad, raw[bad], "only for kind=spread")


# --------------------------------------------------------------------------- loading


def prediction_files(paths: Iterable[str | Path]) -> list[Path]:
    """YAML files: each path is a file or a folder of ``*.yaml`` (sorted)."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(p.glob("*.yaml")))
        elif p.is_file():
            files.append(p)
        else:
            raise PredictionError(f"{p}: no such prediction file or folder")
    return files


def load_predictions(paths: Iterable[str | Path]) -> list[Prediction]:
    """Every prediction under ``paths``, validated; names must be unique."""
    import yaml

    out: list[Prediction] = []
    for file in prediction_files(paths):
        try:
            raw = yaml.safe_load(file.read_text())
        except (OSError, yaml.YAMLError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise PredictionError(f"{file}: not readable YAML ({first})") from None
        out.append(validate(raw, str(file), file.stem))
    seen: dict[str, str] = {}
    for p in out:
        if p.name in seen:
            raise _err(p.path, "name", p.name, f"unique; also used by {seen[p.name]}")
        seen[p.name] = p.path
    return out


def default_predictions_dir() -> Path:
    """``conf/predictions`` of this checkout (``$AEBENCH_CONF/predictions`` when set, like the
    suite's config tree)."""
    import os

    env = os.environ.get("AEBENCH_CONF")
    # the config tree ships inside the aebench package (a checkout links it to conf/ at the root)
    root = Path(env) if env else (Path(__file__).resolve().parent.parent / "aebench" / "conf")
    return root.resolve() / "predictions"
