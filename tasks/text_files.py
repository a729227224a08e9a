"""A text corpus from local UTF-8 files (``task.data.source=text_files`` of ``tasks/wikitext.py``).

``task.data.files`` lists paths or globs (``**`` recursive). The split rule, fixed so that the
same files always give the same split whatever the seed: the matched files (plain files only,
each once) are sorted by their path, and file i of that order (0-based) goes to validation when
``i % val_every == val_every - 1``, to train otherwise: every ``val_every``-th file, a ~1 /
``val_every`` share of the files, validated on whole documents never seen in training.

Each file is decoded as strict UTF-8 and split into lines (newlines kept; a final newline is
added where a file lacks one), so the byte tokenizer sees the files' bytes concatenated in order
and the word tokenizer sees their lines. Errors (no pattern, a pattern matching nothing, fewer
files than ``val_every``, a file that is not UTF-8, an empty corpus) raise
:class:`~tasks.hf_data.DataUnavailable` with one line.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from tasks.hf_data import DataUnavailable


def match_files(patterns: Sequence[str]) -> list[Path]:
    """The plain files the ``patterns`` match, each once, sorted by path."""
    if isinstance(patterns, str):
        patterns = [patterns]
    if not patterns:
        raise DataUnavailable(
            "task.data.files=[]: data.source=text_files needs one or more UTF-8 files or globs"
        )
    found: set[Path] = set()
    for pattern in patterns:
        hits = [Path(p) for p in glob.glob(str(Path(pattern).expanduser()), recursive=True)]
        hits = [p for p in hits if p.is_file()]
        if not hits:
            raise DataUnavailable(f"task.data.files: {pattern!r} matches no file")
        found.update(p.resolve() for p in hits)
    return sorted(found, key=str)


def split_files(files: Sequence[Path], val_every: int) -> tuple[list[Path], list[Path]]:
    """(train, validation) by the module's rule."""
    if val_every < 2:
        raise DataUnavailable(f"task.data.val_every={val_every}: must be an integer >= 2")
    if len(files) < val_every:
        raise DataUnavailable(
            f"task.data.files: {len(files)} files, fewer than task.data.val_every={val_every} "
            "(every val_every-th file is validation): give more files or a smaller val_every"
        )
    val = [f for i, f in enumerate(files) if i % val_every == val_every - 1]
    train = [f for i, f in enumerate(files) if i % val_every != val_every - 1]
    return train, val


def read_lines(path: Path) -> list[str]:
    """The lines of the UTF-8 file ``path``, newlines kept, the last one terminated."""
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise DataUnavailable(
            f"task.data.files: {path} is not UTF-8 (byte {err.start}: {err.reason})"
        ) from None
    lines = text.splitlines(keepends=True)
    if lines and not lines[-1].endswith(("\n", "\r")):
        lines[-1] += "\n"
    return lines


def load_text_files(
    patterns: Sequence[str], val_every: int, name: str
) -> tuple[dict[str, list[str]], dict[str, int]]:
    """split -> lines of the corpus, and split -> number of files (module doc)."""
    train, val = split_files(match_files(patterns), val_every)
    rows = {
        "train": [line for f in train for line in read_lines(f)],
        "validation": [line for f in val for line in read_lines(f)],
    }
    for split, lines in rows.items():
        if not any(line.strip() for line in lines):
            raise DataUnavailable(f"{name} split {split}: the files hold no text")
    return rows, {"train": len(train), "validation": len(val)}
