"""orchestration.precompile: the .pyc of an imported module is written even where Python writes
none itself (PYTHONDONTWRITEBYTECODE), and an up-to-date one is left alone."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

from orchestration import precompile


def test_compile_imported_writes_the_missing_pyc_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "aebench_precompile_probe.py"
    source.write_text("VALUE = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    module = importlib.import_module("aebench_precompile_probe")
    monkeypatch.delitem(sys.modules, "aebench_precompile_probe")
    cached = Path(importlib.util.cache_from_source(str(source)))
    assert not cached.exists()  # Python kept nothing
    assert precompile.compile_imported([module]) == (1, 1)
    assert cached.exists() and not precompile._stale(str(source))
    assert precompile.compile_imported([module]) == (0, 1)  # up to date: not again
    source.write_text("VALUE = 2\n")
    os.utime(source, (cached.stat().st_mtime + 10,) * 2)
    assert precompile._stale(str(source))
    assert precompile.compile_imported([module]) == (1, 1)
