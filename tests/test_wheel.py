"""An installed copy runs: build the wheel, install it (not editable) into a fresh venv, and run a
smoke job and ``aebench-analyze`` from it, outside the checkout.

The fresh venv installs the wheel alone (``--no-deps``, offline); its dependencies (torch,
Lightning, Hydra, ...) come from the test's own environment through a ``.pth`` line. A ``.pth``
line only adds a folder to ``sys.path``, so the checkout's editable install there is not active,
and ``aebench`` resolves to the installed wheel (the test checks that it does).
"""

from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout


@pytest.mark.slow
def test_the_wheel_ships_the_configs_and_runs(tmp_path: Path) -> None:
    # build from a copy: setuptools builds in the source folder, and a stale build/ there could
    # ship files the tree no longer has
    src = tmp_path / "src"
    skip = (".venv", ".git", "multirun", "outputs", "build", "evidence", "*.egg-info", "__py*")
    shutil.copytree(ROOT, src, symlinks=True, ignore=shutil.ignore_patterns(*skip))
    dist = tmp_path / "dist"
    _run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         str(src), "-w", str(dist)],
        cwd=tmp_path,
    )  # fmt: skip
    (wheel,) = dist.glob("aebench-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {n.removeprefix("aebench/conf/") for n in names if n.startswith("aebench/conf/")}
    on_disk = {str(p.relative_to(ROOT / "conf")) for p in (ROOT / "conf").rglob("*") if p.is_file()}
    assert shipped == on_disk, f"missing from the wheel: {sorted(on_disk - shipped)[:5]}"
    assert "hydra_plugins/aebench_sweeper/aebench_sweeper.py" in names  # the default sweeper

    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    bin_dir = env_dir / "bin"
    py = bin_dir / "python"
    purelib = Path(
        _run(
            [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp_path
        ).strip()
    )
    (purelib / "_aebench_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    _run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps",
         "--no-index", str(wheel)],
        cwd=tmp_path,
    )  # fmt: skip

    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("AEBENCH_CONF", "PYTHONPATH")}
    env.update(WANDB_MODE="offline", OMP_NUM_THREADS="1", PATH=f"{bin_dir}:{env['PATH']}")
    where = _run([str(py), "-c", "import aebench; print(aebench.__file__)"], work, env)
    assert Path(where.strip()).is_relative_to(purelib), where

    run_dir = work / "runs" / "one"
    _run(
        [str(bin_dir / "aebench"), "task=regression", "optimizer=sgdm", "scale=smoke",
         f"hydra.run.dir={run_dir}"],
        work, env,
    )  # fmt: skip
    record = json.loads((run_dir / "result.json").read_text())
    assert record["status"] == "completed" and record["task"] == "regression"

    report = work / "report"
    _run([str(bin_dir / "aebench-analyze"), str(work / "runs"), "--out", str(report)], work, env)
    assert any(report.iterdir())
