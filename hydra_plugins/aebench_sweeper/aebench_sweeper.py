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

Under the joblib launcher (``hydra/launcher=aebench_joblib``) the check also overlaps the
workers' start: once the first job has composed, :class:`Warmup` starts the launcher's loky
workers with the same ``Parallel`` arguments the launch uses (so the launch reuses them) and
each imports what a job imports (:func:`aebench.app.prewarm`, ~4-9 s of torch and Lightning)
while the other jobs compose. The check waits for them before it returns.
"""

import logging
import threading
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
        chosen = [batch[i] for i in jobs_to_compose(batch, is_group)]
        super().validate_batch_is_legal(chosen[:1])  # a bad value fails before workers start
        warmup = Warmup.of(self.launcher, len(batch))
        try:
            super().validate_batch_is_legal(chosen[1:])
        finally:
            if warmup is not None:
                warmup.join()
        log.debug(
            f"composed {len(chosen)} of {len(batch)} jobs' configs (each group combination and"
            f" value once) in {time.perf_counter() - tic:.2f} s"
        )


class Warmup(threading.Thread):
    """The joblib launcher's workers started in the background, each running
    :func:`aebench.app.prewarm` once (``pids``: the workers that ran it)."""

    def __init__(self, parallel_kwargs: dict, tasks: int) -> None:
        super().__init__(name="aebench-worker-warmup", daemon=True)
        self.parallel_kwargs = parallel_kwargs
        self.tasks = tasks
        self.pids: list[int] = []

    @classmethod
    def of(cls, launcher, jobs: int) -> Optional["Warmup"]:  # noqa: ANN001, UP037, UP045
        """A started warm-up of ``launcher``'s workers; None for a launcher other than joblib or
        a single worker (joblib then runs the jobs in this process)."""
        try:
            from hydra_plugins.hydra_joblib_launcher._core import process_joblib_cfg
            from hydra_plugins.hydra_joblib_launcher.joblib_launcher import JoblibLauncher
            from joblib import effective_n_jobs
        except ImportError:  # the joblib launcher is not installed: nothing to warm
            return None
        if not isinstance(launcher, JoblibLauncher):
            return None
        kwargs = dict(launcher.joblib)
        kwargs["backend"] = "loky"  # as the launch sets it (hydra_joblib_launcher._core.launch)
        process_joblib_cfg(kwargs)
        workers = effective_n_jobs(kwargs.get("n_jobs"))
        if workers < 2 or jobs < 1:  # n_jobs=1: joblib runs the jobs in this process, no workers
            return None
        warmup = cls(kwargs, min(jobs, workers))
        warmup.start()
        return warmup

    def run(self) -> None:
        from joblib import Parallel, delayed

        from aebench.app import prewarm

        tic = time.perf_counter()
        try:
            self.pids = list(
                Parallel(**self.parallel_kwargs)(delayed(prewarm)() for _ in range(self.tasks))
            )
        except Exception as err:  # noqa: BLE001 - the launch itself reports what is wrong
            log.debug(f"worker warm-up failed ({err}); the launch starts its workers itself")
            return
        log.debug(f"{len(set(self.pids))} workers warm in {time.perf_counter() - tic:.2f} s")


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
