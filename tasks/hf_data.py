"""Real data through Hugging Face ``datasets``, without hangs and without silent fallbacks.

Where the data comes from (``task.data.*``), in this order:

1. ``path`` set: a folder written by ``DatasetDict.save_to_disk`` (``load_from_disk``), or a
   folder of data files such as a ``git clone`` of the Hub repository (``load_dataset(path)``,
   with ``data_dir=<config>`` when the folder has a sub-folder named like the config). Nothing
   is fetched.
2. ``online: false`` (default): the user's Hugging Face cache (``cache_dir`` or
   ``$HF_DATASETS_CACHE``) with offline mode forced for the call, so a missing data set fails
   in milliseconds instead of waiting on the network.
3. ``online: true``: the Hub, after a TCP check of the endpoint (3 s timeout) so an unreachable
   Hub fails fast too.

Any failure raises :class:`DataUnavailable` (a :class:`ConfigError`, so the CLI prints one line
and writes nothing) whose message says how to provide the data. The synthetic stand-ins never
come from here: ``data.source=synthetic`` is the user's explicit choice and is recorded as such.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from aebench.task import ConfigError

SOURCES = ("synthetic", "real")


class DataUnavailable(ConfigError):
    """The real data set cannot be loaded; the message says how to provide it."""


@dataclass(frozen=True)
class DataSpec:
    """``task.data``: where a real-data task's data comes from (see the module doc)."""

    #: ``synthetic`` (the labelled stand-in) or ``real``
    source: str = "synthetic"
    #: a local folder (save_to_disk output or data files); null: cache or Hub
    path: str | None = None
    #: the Hub id, e.g. ``uoft-cs/cifar10``
    name: str = ""
    #: the Hub config, e.g. ``plain_text`` or ``wikitext-2-raw-v1``; null for none
    config: str | None = None
    #: the datasets cache folder; null: ``$HF_DATASETS_CACHE`` (~/.cache/huggingface/datasets)
    cache_dir: str | None = None
    #: may the Hub be contacted when the data is neither at ``path`` nor in the cache
    online: bool = False

    def check(self, allowed: Sequence[str] = SOURCES) -> None:
        if self.source not in allowed:
            raise ConfigError(
                f"task.data.source={self.source}: must be one of {', '.join(allowed)}"
            )


@dataclass(frozen=True)
class ImageData(DataSpec):
    """The shape of an image task's ``task.data`` (``cifar_corruptions``): the config schema
    reads it from here (aebench.schema); the task receives a dict."""

    image_column: str = "img"
    label_column: str = "label"


@dataclass(frozen=True)
class TextData(DataSpec):
    """The shape of a text task's ``task.data`` (``wikitext``; ``files`` and ``val_every`` for
    ``source=text_files``, tasks/text_files.py)."""

    text_column: str = "text"
    files: list[str] = field(default_factory=list)
    val_every: int = 10


def how_to_provide(spec: DataSpec, what: str) -> str:
    """The instructions appended to every data error (one line)."""
    config = f", {spec.config!r}" if spec.config else ""
    return (
        f"to provide {what}: on a machine with internet run "
        f'`python -c "import datasets; datasets.load_dataset({spec.name!r}{config})'
        f".save_to_disk('DIR')\"`, copy DIR here and pass task.data.path=DIR; or fill the "
        f"Hugging Face cache (task.data.cache_dir, now {_cache_dir(spec)}); or pass "
        f"task.data.online=true where the Hub is reachable; or task.data.source=synthetic "
        f"for the labelled stand-in (docs/tasks.md, Bringing the real data)"
    )


def _cache_dir(spec: DataSpec) -> str:
    if spec.cache_dir:
        return str(Path(spec.cache_dir).expanduser())
    import datasets.config

    return str(datasets.config.HF_DATASETS_CACHE)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return (text.splitlines()[0] if text else type(err).__name__)[:300]


@contextmanager
def _offline() -> Iterator[None]:
    """Force Hugging Face offline mode for the duration (both libraries read these flags at
    call time; the environment variables are read only at import, too late to rely on)."""
    import datasets.config as dconfig
    import huggingface_hub.constants as hconstants

    saved = dconfig.HF_HUB_OFFLINE, hconstants.HF_HUB_OFFLINE
    dconfig.HF_HUB_OFFLINE = hconstants.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        dconfig.HF_HUB_OFFLINE, hconstants.HF_HUB_OFFLINE = saved


def _hub_reachable(timeout: float = 3.0) -> bool:
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    url = urlparse(endpoint)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((url.hostname or "huggingface.co", port), timeout=timeout):
            return True
    except OSError:
        return False


def _quiet_progress() -> None:
    import datasets

    datasets.disable_progress_bars()
    datasets.logging.set_verbosity_error()


def load_splits(spec: DataSpec, splits: Sequence[str], what: str) -> dict[str, Any]:
    """The ``splits`` of the real data set as ``datasets.Dataset`` objects, or
    :class:`DataUnavailable` within seconds."""
    import datasets

    _quiet_progress()
    how = how_to_provide(spec, what)
    if spec.path:
        root = Path(spec.path).expanduser()
        if not root.exists():
            raise DataUnavailable(f"task.data.path={spec.path}: no such folder; {how}")
        try:
            with _offline():
                if (root / "dataset_dict.json").exists() or (root / "state.json").exists():
                    loaded = datasets.load_from_disk(str(root))
                else:
                    data_dir = (
                        spec.config if spec.config and (root / spec.config).is_dir() else None
                    )
                    loaded = datasets.load_dataset(
                        str(root), data_dir=data_dir, cache_dir=spec.cache_dir
                    )
        except Exception as err:  # noqa: BLE001 - any loader failure becomes one line
            raise DataUnavailable(
                f"task.data.path={spec.path}: cannot load {what} ({_first_line(err)}); {how}"
            ) from None
        where = f"task.data.path={spec.path}"
    else:
        kwargs = {"name": spec.config} if spec.config else {}
        t0 = time.perf_counter()
        if spec.online:
            if not _hub_reachable():
                raise DataUnavailable(
                    f"task.data.online=true: the Hugging Face Hub is not reachable; {how}"
                )
            try:
                loaded = datasets.load_dataset(spec.name, cache_dir=spec.cache_dir, **kwargs)
            except Exception as err:  # noqa: BLE001
                raise DataUnavailable(
                    f"task.data.name={spec.name}: download failed ({_first_line(err)}); {how}"
                ) from None
        else:
            try:
                with _offline():
                    loaded = datasets.load_dataset(spec.name, cache_dir=spec.cache_dir, **kwargs)
            except Exception:  # noqa: BLE001 - "not in the cache" has several exception types
                waited = time.perf_counter() - t0
                raise DataUnavailable(
                    f"task.data.source=real: {what} is not at task.data.path (null) nor in the "
                    f"Hugging Face cache {_cache_dir(spec)} (checked offline in {waited:.1f} s); "
                    f"{how}"
                ) from None
        where = f"Hub id {spec.name}"
    if isinstance(loaded, datasets.Dataset):
        raise DataUnavailable(
            f"{where}: holds one split, {what} needs the splits {', '.join(splits)} "
            f"(save the whole DatasetDict); {how}"
        )
    missing = [s for s in splits if s not in loaded]
    if missing:
        raise DataUnavailable(
            f"{where}: no split {', '.join(missing)} (has {', '.join(loaded)}); {how}"
        )
    return {s: loaded[s] for s in splits}


def require_columns(dataset: Any, columns: Sequence[str], where: str) -> None:
    """One-line error when ``dataset`` lacks one of ``columns``."""
    missing = [c for c in columns if c not in dataset.column_names]
    if missing:
        raise DataUnavailable(
            f"{where}: no column {', '.join(missing)} (has {', '.join(dataset.column_names)}); "
            "set the task.data.*_column keys to the data set's names"
        )
