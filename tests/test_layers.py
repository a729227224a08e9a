"""The layer rules of docs/design.md, checked by walking every import (module level and inside
functions) of the project's packages.

    orchestration   (aebench-evidence, the catalogue)      may import everything below
    analysis        (records -> report; no torch)           imports no other project layer
    tasks, baselines (plug-ins)                             import the core, not each other
    aebench         (the training core)                     imports no plug-in and no layer above

An arrow not allowed here fails the test with the file, the line and the arrow.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("aebench", "analysis", "tasks", "baselines", "orchestration")

#: package -> the project packages it must not import
FORBIDDEN: dict[str, set[str]] = {
    "aebench": {"analysis", "orchestration", "tasks", "baselines"},
    "analysis": {"aebench", "orchestration", "tasks", "baselines"},
    "tasks": {"analysis", "orchestration", "baselines"},
    "baselines": {"analysis", "orchestration", "tasks"},
    "orchestration": set(),
}
#: third-party packages a layer must not import (analysis reads records anywhere, without torch)
FORBIDDEN_THIRD_PARTY: dict[str, set[str]] = {"analysis": {"torch", "lightning"}}


def imports(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """``(line, absolute module name)`` of every import statement in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(root).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found.append((node.lineno, base))
    return found


def violations(root: Path = ROOT) -> list[str]:
    problems = []
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            for line, name in imports(path, root):
                top = name.split(".", 1)[0]
                banned = FORBIDDEN[package] | FORBIDDEN_THIRD_PARTY.get(package, set())
                if top in banned:
                    problems.append(f"{path.relative_to(root)}:{line}: {package} -> {name}")
                elif top in PACKAGES and importlib.util.find_spec(name) is None:
                    problems.append(f"{path.relative_to(root)}:{line}: {name} does not exist")
    return problems


def test_no_forbidden_arrow() -> None:
    assert violations() == []


@pytest.mark.parametrize(
    ("package", "source", "arrow"),
    [
        ("aebench", "from analysis.cli import main\n", "aebench -> analysis.cli"),
        ("aebench", "def f():\n    import tasks.regression\n", "aebench -> tasks.regression"),
        ("aebench", "from orchestration import evidence\n", "aebench -> orchestration"),
        ("analysis", "import torch\n", "analysis -> torch"),
        ("tasks", "from baselines.es import core\n", "tasks -> baselines.es"),
    ],
)
def test_the_walk_catches_an_arrow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, package: str, source: str, arrow: str
) -> None:
    """The checker itself: a module with one forbidden import in a copy of the layout."""
    for name in PACKAGES:
        (tmp_path / name).mkdir()
    (tmp_path / package / "bad.py").write_text(source)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: object())
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].endswith(arrow), found


def test_relative_imports_resolve(tmp_path: Path) -> None:
    (tmp_path / "aebench" / "ae").mkdir(parents=True)
    runner, law = tmp_path / "aebench" / "runner.py", tmp_path / "aebench" / "ae" / "law.py"
    runner.write_text("from .record import RunRecord\n")
    law.write_text("from .. import task\nfrom .config import AEConfig\n")
    assert [n for _, n in imports(runner, tmp_path)] == ["aebench.record"]
    assert [n for _, n in imports(law, tmp_path)] == ["aebench", "aebench.ae.config"]


# ------------------------------------------------------------------------------- the docs set
def _relative_links(page: Path) -> list[str]:
    import re

    links = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text())
    return [link for link in links if not link.startswith(("http://", "https://", "mailto:"))]


def test_the_readme_is_a_front_door() -> None:
    """README <= 12 KB (what it is, quick start, the three moves, where to go next); every page
    it and the docs index link to exists, and neither cites a file outside the repository."""
    readme = ROOT / "README.md"
    assert readme.stat().st_size <= 12 * 1024, f"README.md is {readme.stat().st_size} bytes"
    for page in (readme, ROOT / "docs" / "index.md", ROOT / "docs" / "design.md"):
        missing = [link for link in _relative_links(page) if not (page.parent / link).exists()]
        assert missing == [], f"{page.relative_to(ROOT)} links to missing pages: {missing}"
        text = page.read_text()
        assert "DESIGN.md" not in text and "AE_READINGS" not in text


# ------------------------------------------------------------------------ one recorder base
def test_one_recorder_base_class() -> None:
    """The single run's recorder and the population's share one base (aebench.recorder.Recorder):
    the curve bookkeeping (time-to-target, best, AUC, lr cliffs) is defined once in the core."""
    defined: dict[str, list[str]] = {}
    bases: dict[str, list[str]] = {}
    for path in sorted((ROOT / "aebench").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ClassDef):
                bases[node.name] = [ast.unparse(b) for b in node.bases]
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name in ("auc", "_track"):
                        defined.setdefault(item.name, []).append(f"{path.name}:{node.name}")
    assert defined == {"auc": ["recorder.py:Recorder"], "_track": ["recorder.py:Recorder"]}
    assert bases["RunRecorder"] == ["Recorder"] and bases["SwarmCallback"] == ["Recorder"]
