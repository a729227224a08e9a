"""Byte-compile, once, the modules that a sweep's jobs and the analysis import.

    python -m orchestration.precompile      (the last step of ``make install``)

``make install`` runs pip with ``--no-compile``: pip would otherwise compile every module of every
package it installs, torch's thousands included, most of which no run imports (~60 s of a quiet
install here, 2026-12-04; docs/performance.md, section 7). Python compiles a module when it first
imports it and keeps the ``.pyc``, except where ``PYTHONDONTWRITEBYTECODE`` is set (as on the
project's machines): there every process would compile its imports again (measured: lightning's
import 11 s instead of 4 s). So this process lets Python write bytecode whatever the variable
says and runs a two-job smoke sweep of the demo's jobs through the same launcher as ``make demo``
(in this process: the joblib launcher with one job runs them here) and the analysis of it, so
that each module it imports is compiled once and kept; then it compiles any imported module
whose ``.pyc`` is still missing. Meanwhile a second process imports the analysis' libraries
(pandas, scipy.stats, matplotlib, jinja2), compiling them on the other core while this one
compiles torch's and Lightning's. A module imported only elsewhere (another task's loader, a test)
is compiled by Python when imported: once, or at every import where that variable is set.
"""

from __future__ import annotations

import importlib.util
import os
import py_compile
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType


def _warm(folder: Path) -> None:
    """A two-job smoke sweep (AE off and on, the demo's experiment) and its analysis."""
    from aebench.app import hydra_entry
    from analysis.cli import main as analyze

    sweep = folder / "sweep"
    argv = sys.argv
    sys.argv = [
        "aebench",
        "-m",
        "experiment=demo",
        "scale=smoke",
        "seed=0",
        "steps=4",
        "ae=off,on",
        f"hydra.sweep.dir={sweep}",
        "hydra/launcher=aebench_joblib",
        "hydra.launcher.n_jobs=1",
        "trainer.threads=1",
    ]
    try:
        hydra_entry()
    finally:
        sys.argv = argv
    analyze([str(sweep), "--out", str(folder / "report"), "--quiet"])


#: what the analysis imports (inside its functions), compiled beside the sweep's imports
ANALYSIS_IMPORTS = (
    "analysis.cli",
    "pandas",
    "scipy.stats",
    "matplotlib",
    "matplotlib.pyplot",
    "jinja2",
)


def _compile_in_parallel(modules: Iterable[str]) -> subprocess.Popen:
    """A process that imports ``modules`` and compiles what they imported (Agg backend, bytecode
    written whatever ``PYTHONDONTWRITEBYTECODE`` says)."""
    code = (
        "import importlib, sys; sys.dont_write_bytecode = False; "
        f"[importlib.import_module(m) for m in {list(modules)!r}]; "
        "from orchestration.precompile import compile_imported; compile_imported()"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["MPLBACKEND"] = "Agg"
    return subprocess.Popen([sys.executable, "-c", code], env=env)


def _stale(source: str) -> bool:
    """Whether the ``.pyc`` of ``source`` is missing or older than the source."""
    cached = importlib.util.cache_from_source(source)
    try:
        return os.stat(cached).st_mtime < os.stat(source).st_mtime
    except OSError:
        return True


def compile_imported(modules: Iterable[ModuleType] | None = None) -> tuple[int, int]:
    """Compile the source of every module of ``modules`` (default: every imported one) that has
    no up-to-date ``.pyc``: ``(compiled, modules with a source file)``."""
    sources = {
        m.__file__
        for m in (list(sys.modules.values()) if modules is None else modules)
        if getattr(m, "__file__", None)
        and str(m.__file__).endswith(".py")
        and os.path.isabs(str(m.__file__))
    }
    compiled = 0
    for source in sorted(sources):
        if not _stale(source):
            continue
        try:
            py_compile.compile(source, doraise=True)
            compiled += 1
        except (py_compile.PyCompileError, OSError) as err:  # read-only or broken: skip it
            print(f"precompile: {source}: {err}", file=sys.stderr)
    return compiled, len(sources)


def main() -> None:
    os.environ.setdefault("WANDB_MODE", "offline")
    sys.dont_write_bytecode = False  # this process keeps what it compiles
    start = time.perf_counter()
    analysis_side = _compile_in_parallel(ANALYSIS_IMPORTS)
    with tempfile.TemporaryDirectory() as tmp:
        _warm(Path(tmp))
    if analysis_side.wait() != 0:
        print("precompile: the analysis-side imports failed (compiled on use)", file=sys.stderr)
    compiled, imported = compile_imported()
    print(
        f"precompile: {compiled} of {imported} imported modules compiled "
        f"in {time.perf_counter() - start:.0f} s"
    )


if __name__ == "__main__":
    main()
