"""No reference to a file that is not in the repo (issue 16, item 5).

Scans the docs (``docs/*.md``, ``README.md``), the config tree (``conf/**/*.yaml``) and the
docstrings and comments of every Python file for

- repo-relative paths (``docs/tasks.md``, ``conf/task/regression.yaml``, ``aebench/runner.py``:
  a first part that is a top-level folder of the repo), which must exist;
- markdown links to local files (``[recipe](howto_add_task.md)``, relative to the page);
- dotted module references in the code's own packages (``aebench.evidence.run_plan``), whose
  module must exist;
- the notes outside the repo that the code once cited (``DESIGN.md``, ``AE_READINGS.md``).

Absolute paths (``/usr/share/datasets/...``) name places outside the repo on purpose and are not
checked; nor are patterns (``<name>``, ``*``, ``{x}``, ``${...}``) or paths under ``multirun/``
and ``outputs/`` (run outputs, made by runs).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: top-level folders whose paths are checked (a first part elsewhere is not a repo path)
TOP = ("aebench", "analysis", "baselines", "benchmarks", "conf", "docs", "orchestration", "tasks",
       "tests", ".ci")  # fmt: skip
#: top-level files a text may name bare
TOP_FILES = ("README.md", "Makefile", "pyproject.toml")
PACKAGES = ("aebench", "analysis", "baselines", "orchestration", "tasks")
#: made by runs, not kept in the repo
GENERATED = ("multirun/", "outputs/")
#: files outside the repo the project once depended on
GONE = ("DESIGN.md", "AE_READINGS.md")

PATH = re.compile(
    r"(?<![\w./~$-])((?:" + "|".join(re.escape(t) for t in TOP) + r")/[\w./<>*{}$-]*[\w/>*}])"
)
BARE = re.compile(r"(?<![\w./-])(" + "|".join(re.escape(f) for f in TOP_FILES) + r")(?![\w-])")
LINK = re.compile(r"\]\(([^)\s#]+)(?:#[^)]*)?\)")
DOTTED = re.compile(r"(?<![\w./-])((?:" + "|".join(PACKAGES) + r")(?:\.[A-Za-z_]\w*)+)(?![\w/-])")
#: file names, not modules (``tasks.md``, ``baselines.py``)
SUFFIXES = (".md", ".py", ".yaml", ".yml", ".json", ".csv", ".txt", ".html", ".toml")
#: paths a page names on purpose that a run writes (not kept in the repo)
WRITTEN = {
    "docs/step_times/paper-cuda.json": "written by benchmarks/step_times.py --device cuda",
}
#: stale references in files this change may not edit (their owners fix them); each must still
#: be found, so the entry goes when the reference is fixed
PENDING: set[tuple[str, str]] = set()
PATTERN = re.compile(r"[<>*{}$\[\]]")


def python_text(path: Path) -> str:
    """The docstrings and comments of a Python file, each on its own line number (the code is
    blanked: it is checked by running it)."""
    source = path.read_text(encoding="utf-8")
    lines = source.splitlines()
    kept = [""] * len(lines)
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type == tokenize.COMMENT:
            kept[tok.start[0] - 1] = tok.string
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            if ast.get_docstring(node, clean=False) is None:
                continue
            doc = node.body[0]
            for i in range(doc.lineno - 1, doc.end_lineno or doc.lineno):
                kept[i] = lines[i]
    return "\n".join(kept)


def texts(root: Path = ROOT) -> list[tuple[Path, str]]:
    """``(file, prose)`` of every file the test reads."""
    found = [(p, p.read_text(encoding="utf-8")) for p in sorted((root / "docs").rglob("*.md"))]
    if (root / "README.md").exists():
        found.append((root / "README.md", (root / "README.md").read_text(encoding="utf-8")))
    found += [(p, p.read_text(encoding="utf-8")) for p in sorted((root / "conf").rglob("*.yaml"))]
    for package in (*PACKAGES, "tests", "benchmarks"):
        for path in sorted((root / package).rglob("*.py")):
            if path.resolve() != Path(__file__).resolve():  # its own examples are stale on purpose
                found.append((path, python_text(path)))
    return found


def _module_exists(dotted: str, root: Path) -> bool:
    """Whether ``dotted`` walks the repo's packages to a module (the rest may be attributes) or
    to a name its package's ``__init__`` defines or imports."""
    parts = dotted.split(".")
    path = root / parts[0]
    for part in parts[1:]:
        if (path / f"{part}.py").exists():
            return True
        if (path / part).is_dir():
            path = path / part
            continue
        init = path / "__init__.py"
        return init.exists() and bool(re.search(rf"\b{re.escape(part)}\b", init.read_text()))
    return True


def problems(root: Path = ROOT) -> list[str]:
    bad = []
    for path, text in texts(root):
        where = path.relative_to(root)
        for line_no, line in enumerate(text.splitlines(), 1):
            for gone in GONE:
                if gone in line:
                    bad.append(f"{where}:{line_no}: cites {gone}, which is not in the repo")
            for match in PATH.finditer(line):
                ref = match.group(1).rstrip(".")
                if PATTERN.search(ref) or ref.startswith(GENERATED) or ref in WRITTEN:
                    continue
                if not ((root / ref).exists() or (root / f"{ref}.py").exists()):  # a module too
                    bad.append(f"{where}:{line_no}: {ref} does not exist")
            for match in BARE.finditer(line):
                if not (root / match.group(1)).exists():
                    bad.append(f"{where}:{line_no}: {match.group(1)} does not exist")
            if path.suffix == ".md":
                for match in LINK.finditer(line):
                    ref = match.group(1)
                    if "://" in ref or ref.startswith(("mailto:", "/")) or PATTERN.search(ref):
                        continue
                    if not (path.parent / ref).exists():
                        bad.append(f"{where}:{line_no}: link to {ref}, which does not exist")
            for match in DOTTED.finditer(line):
                ref = match.group(1).rstrip(".")
                if not (ref.endswith(SUFFIXES) or _module_exists(ref, root)):
                    bad.append(f"{where}:{line_no}: {ref}: no such module")
    return bad


def test_every_referenced_file_exists() -> None:
    found = problems()
    pending = {(f.split(":", 1)[0], f.split(": ", 1)[1]) for f in found} & PENDING
    assert not [f for f in found if (f.split(":", 1)[0], f.split(": ", 1)[1]) not in PENDING], (
        "\n".join(found)
    )
    assert pending == PENDING, f"fixed, remove from PENDING: {sorted(PENDING - pending)}"


@pytest.mark.parametrize(
    ("text", "stale"),
    [
        ("see docs/nowhere.md for more", "docs/nowhere.md does not exist"),
        ("# the reading (AE_READINGS.md #3)", "cites AE_READINGS.md"),
        ("[recipe](howto_add_nothing.md)", "link to howto_add_nothing.md"),
        ("``aebench.evidence.run_plan`` runs it", "aebench.evidence.run_plan: no such module"),
        ("the schema: conf/task/nothing.yaml", "conf/task/nothing.yaml does not exist"),
    ],
)
def test_the_scan_catches_a_stale_reference(tmp_path: Path, text: str, stale: str) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "aebench").mkdir()
    (tmp_path / "aebench" / "__init__.py").write_text('"""The core."""\n')
    (tmp_path / "aebench" / "runner.py").write_text('"""Runs ``aebench.runner.run_job``."""\n')
    (tmp_path / "docs" / "page.md").write_text(
        "# A page\n\nFine: aebench/runner.py, /usr/share/datasets/x, conf/<group>/x.yaml.\n"
        f"{text}\n"
    )
    found = problems(tmp_path)
    assert len(found) == 1 and stale in found[0], found


def test_absolute_and_pattern_paths_are_not_checked(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "page.md").write_text(
        "/usr/share/datasets/fashion-mnist, conf/task/<name>.yaml, docs/*.md, "
        "multirun/2026-01-01/x.json, [site](https://example.org/a.md)\n"
    )
    assert problems(tmp_path) == []
