"""``hydra/sweeper=aebench`` (the default): Hydra's basic sweeper, checking each sweep value once.

Before launching, Hydra's basic sweeper composes the config of every job of the sweep, so that a
bad combination fails before any job starts. A composition costs ~0.4 s here (2026-12-04), which
made the check the longest serial step of a sweep: 8 s before the demo's 20 jobs could start,
about 2 minutes before e18's 288 (docs/performance.md, section 5). Most of those compositions
repeat one another: jobs that differ only in ``seed`` compose the same tree.

This sweeper composes the jobs that bring something new, in sweep order: a job is composed when
its combination of config-group choices (``ae=on``, ``optimizer=adamw``, ``experiment=...``) has
not been composed yet, or when it sets a key to a value no composed job has set. Every group
combination and every value is thus composed at least once, and the demo's 20 jobs cost 11
compositions. What it does not check is a value that composes under one group combination but
not under another (a key whose type changes with the chosen option): that job fails when it
starts, with Hydra's message, as any job of the basic sweeper would fail on an error only the
run can see. Everything else (the cartesian product, batches, the job order and indices, the
``multirun.yaml``) is the basic sweeper's.
"""

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Optional

from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
from hydra.core.config_store import ConfigStore

log = logging.getLogger(__name__)


@dataclass
class AebenchSweeperConf:
    _target_: str = "hydra_plugins.aebench_sweeper.aebench_sweeper.AebenchSweeper"
    # typing.Optional: Hydra loads this module without a sys.modules entry, and OmegaConf reads
    # the annotations as objects (no postponed evaluation)
    max_batch_size: Optional[int] = None  # noqa: UP045
    params: Optional[dict[str, str]] = None  # noqa: UP045


ConfigStore.instance().store(
    group="hydra/sweeper", name="aebench", node=AebenchSweeperConf, provider="aebench"
)


def jobs_to_compose(batch: Sequence[Sequence[str]], is_group: Callable[[str], bool]) -> list[int]:
    """Indices of the jobs of ``batch`` (each a list of ``key=value`` overrides) that bring a new
    combination of group choices (keys for which ``is_group(key)``) or a new ``key=value``."""
    combos: set[tuple[str, ...]] = set()
    values: set[str] = set()
    chosen = []
    for i, overrides in enumerate(batch):
        combo = tuple(sorted(o for o in overrides if is_group(o.split("=", 1)[0].lstrip("+~"))))
        new_values = set(overrides) - values
        if combo not in combos or new_values:
            chosen.append(i)
            combos.add(combo)
            values |= set(overrides)
    return chosen


class AebenchSweeper(BasicSweeper):
    """The basic sweeper with :func:`jobs_to_compose` as its check before launching."""

    def validate_batch_is_legal(self, batch: Sequence[Sequence[str]]) -> None:
        groups = _group_names(self.hydra_context.config_loader)

        def is_group(key: str) -> bool:
            return key.split("@", 1)[0] in groups

        tic = time.perf_counter()
        chosen = jobs_to_compose(batch, is_group)
        super().validate_batch_is_legal([batch[i] for i in chosen])
        log.debug(
            f"composed {len(chosen)} of {len(batch)} jobs' configs (each group combination and"
            f" value once) in {time.perf_counter() - tic:.2f} s"
        )


def _group_names(loader) -> set[str]:  # noqa: ANN001 - hydra's ConfigLoader
    """Every config group, nested ones by their path (``hydra/launcher``)."""
    names: set[str] = set()
    stack = [""]
    while stack:
        parent = stack.pop()
        for name in loader.list_groups(parent):
            path = f"{parent}/{name}" if parent else name
            names.add(path)
            stack.append(path)
    return names
