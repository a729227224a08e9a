"""Every bad input gets one line: a parametrised walk over malformed command lines (overrides,
task values, data paths, output paths) and run records, each as a new user would type it.

Each case must exit non-zero, print one line on stderr that names the key (or file) and says
what is allowed, print no traceback, write nothing and lose nothing already written. The
command-line cases call the console script's ``main`` in-process (the preflight answers before
torch is imported); the cases only a task can check (its data path, its values) and the record
cases run the real console scripts in a subprocess.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

#: (overrides, what the one line must contain)
PREFLIGHT_CASES = [
    (["ae=on", "ae.laws.gauge=2"], "ae.laws.gauge=2: must be a boolean"),
    (["ae=on", "ae.laws.gauge=yes"], "ae.laws.gauge=yes: must be a boolean"),
    (["ae=on", "ae.laws.gauge=0"], "ae.laws.gauge=0: must be a boolean"),
    (["seed=1.5"], "seed=1.5: must be an integer"),
    (["seed=2.0"], "seed=2.0: must be an integer"),
    (["steps=1.5"], "steps=1.5: must be an integer"),
    (["seed=true"], "seed=true: must be an integer"),
    (["optimizer.lr=abc"], "optimizer.lr=abc: must be a number"),
    (["optimizer.lr=true"], "optimizer.lr=true: must be a number"),
    (["optimizer.lr=0"], "optimizer.lr=0"),
    (["optimizer.lr=-1e-3"], "optimizer.lr=-0.001"),
    (["optimizer.lr=nan"], "optimizer.lr=nan"),
    (["seed=-1"], "seed=-1: must be a non-negative integer"),
    (["steps=0"], "steps=0"),
    (["optimizer=sgdm", "optimizer.momentum=1.5"], "optimizer.momentum=1.5"),
    (["optimizer.betas=[0.9,1.5]"], "optimizer.betas"),
    (["task=nope"], "task=nope: no such option"),
    (["optimizer=nope"], "optimizer=nope: no such option"),
    (["ablation=no_such"], "ablation=no_such: no such option"),
    (["scale=huge"], "scale=huge: no such option"),
    (["optimizer.nope=1"], "no key 'nope' in optimizer"),
    (["seed=0,1"], "a sweep needs -m"),
    (["-m", "seed=0,1.5"], "seed=1.5: must be an integer"),
    (["-m", "ae=on", "ae.laws.gauge=true,2"], "ae.laws.gauge=2: must be a boolean"),
    (["scale.evals=0"], "scale.evals=0"),
    (["divergence.factor=1"], "divergence.factor=1"),
    (["trainer.accelerator=tpu"], "trainer.accelerator=tpu"),
    (["trainer.threads=0"], "trainer.threads=0"),
    (["task.batch_size=0"], "task.batch_size=0"),
    (["ae=on", "optimizer=prodigy"], "optimizer=prodigy"),
    (["optimizer=cma_es", "schedule=lr_finder"], "schedule=lr_finder"),
    (["optimizer=openai_es", "task=plateau"], "optimizer.lr=null"),
    (["optimizer=eggroll", "optimizer.noise_stream=-2"], "optimizer.noise_stream=-2: must be"),
    (["optimizer=eggroll", "optimizer.noise_stream=1.5"], "optimizer.noise_stream=1.5: must be"),
    (["'optimizer.lr=[1'"], "cannot parse the overrides"),
    # output paths: a folder that cannot be made
    (["hydra.run.dir=/proc/aebench/run"], "hydra.run.dir=/proc/aebench/run: cannot be created"),
    (["hydra.run.dir=/sys/aebench"], "hydra.run.dir=/sys/aebench: cannot be created"),
    (["hydra.run.dir=keep.txt/run"], "is not a folder"),
    (["-m", "hydra.sweep.dir=keep.txt/sweep", "seed=0,1"], "hydra.sweep.dir=keep.txt/sweep"),
    # online W&B without credentials: refused before the job, with the two ways out
    (["logger=wandb", "logger.offline=false"], "wandb login"),
]


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()} | {
        str(p.relative_to(root)) + "/": b"" for p in root.rglob("*") if p.is_dir()
    }


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder holding a file and an earlier run, which no bad input may touch."""
    (tmp_path / "keep.txt").write_text("keep me\n")
    old = tmp_path / "outputs" / "old"
    old.mkdir(parents=True)
    (old / "result.json").write_text('{"status": "completed"}\n')
    monkeypatch.chdir(tmp_path)
    for key in ("WANDB_MODE", "WANDB_API_KEY", "AEBENCH_CONF"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("NETRC", str(tmp_path / "no-netrc"))
    return tmp_path


def _one_line(text: str) -> str:
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one line, got:\n{text}"
    assert "Traceback" not in text
    return lines[0]


@pytest.mark.parametrize(("argv", "says"), PREFLIGHT_CASES, ids=lambda v: " ".join(v))
def test_bad_command_line_is_one_line(
    argv: list[str],
    says: str,
    workdir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    from aebench import cli

    argv = [a.strip("'") for a in argv]
    if not any(a.startswith("hydra.") for a in argv):
        argv.append("hydra.run.dir=outputs/old")  # a job that started would overwrite it
    before = _snapshot(workdir)
    monkeypatch.setattr(sys, "argv", ["aebench", *argv])
    with pytest.raises(SystemExit) as exit_:
        cli.main()
    assert exit_.value.code not in (0, None)
    out = capsys.readouterr()
    line = _one_line(out.err)
    assert out.out == ""
    assert line.startswith("aebench: error: ") and says in line, line
    assert _snapshot(workdir) == before


def _console(name: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    script = Path(sys.executable).parent / name
    env = {**os.environ, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env.pop("AEBENCH_CONF", None)
    return subprocess.run(
        [str(script), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


#: values only the task can check (its constructor runs in the job, after torch is imported)
TASK_CASES = [
    (
        ["task=fmnist", "task.data.source=real", "task.data.path=/nonexistent/fmnist"],
        "/nonexistent/fmnist",
    ),
    (["task=basis_equation", "task.l1=-1"], "task.l1=-1"),
    (["task=cartpole_drift", "task.gamma=2"], "task.gamma=2"),
]


@pytest.mark.slow  # a job starts (torch, Lightning): about 5-10 s each
@pytest.mark.parametrize(("argv", "says"), TASK_CASES, ids=lambda v: " ".join(v))
def test_bad_task_value_is_one_line_and_leaves_nothing(
    argv: list[str], says: str, workdir: Path
) -> None:
    before = _snapshot(workdir)
    done = _console("aebench", *argv, "hydra.run.dir=outputs/new/run", cwd=workdir)
    assert done.returncode != 0
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert "Traceback" not in done.stderr and len(errors) == 1, done.stderr
    assert errors[0].startswith("aebench: error: ") and says in errors[0], errors[0]
    assert _snapshot(workdir) == before


RECORDS = {
    "truncated": '{"status": "compl',
    "a list": "[1, 2]",
    "empty": "",
    "not utf-8": b"\xff\xfe\x00garbage",
}


@pytest.mark.parametrize("kind", sorted(RECORDS))
def test_corrupt_record_is_listed(kind: str, workdir: Path) -> None:
    runs = workdir / "runs" / "0"
    runs.mkdir(parents=True)
    content = RECORDS[kind]
    record = runs / "result.json"
    record.write_bytes(content if isinstance(content, bytes) else content.encode())
    before = _snapshot(workdir)
    done = _console("aebench-analyze", str(workdir / "runs"), "--out", "report", cwd=workdir)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr + done.stdout
    listed = [line for line in done.stderr.splitlines() if str(record) in line]
    assert len(listed) == 1 and "unreadable" in listed[0], done.stderr
    assert _snapshot(workdir) == before


def test_missing_run_folder_is_one_line(workdir: Path) -> None:
    done = _console("aebench-analyze", "nowhere", "--out", "report", cwd=workdir)
    assert done.returncode != 0
    assert "nowhere: no such run or sweep folder" in _one_line(done.stderr)
    assert not (workdir / "report").exists()
