"""Stopping aebench-evidence stops its whole sweep (orchestration/evidence.py, run_plan).

A parallel launcher's workers are grandchildren of aebench-evidence; when it was killed they
used to go on training (and writing records) for minutes beside a rerun. The sweep now leads a
process group of its own, which SIGTERM and Ctrl-C stop as a whole.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestration.evidence import Plan, _raise_terminated, _Terminated, run_plan

pytestmark = pytest.mark.skipif(os.name != "posix", reason="process groups are POSIX")

# a "sweep" that starts a worker (a grandchild of the test) and waits for it
SWEEP = """
import subprocess, sys
w = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
open(sys.argv[1], "w").write(str(w.pid))
w.wait()
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is dead
        return f.read().split()[2] != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_sigterm_stops_the_sweep_and_its_workers(tmp_path: Path) -> None:
    pid_file = tmp_path / "worker.pid"
    plan = Plan("e_fake", [], [sys.executable, "-c", SWEEP, str(pid_file)])
    args = argparse.Namespace(jobs=2, verbose=False, poll=0.1)

    def kill_when_started() -> None:
        for _ in range(200):
            if pid_file.exists() and pid_file.read_text():
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=kill_when_started, daemon=True).start()
    lines: list[str] = []
    with pytest.raises(_Terminated):
        run_plan(plan, tmp_path, args, lines.append)
    worker = int(pid_file.read_text())
    for _ in range(50):
        if not _alive(worker):
            break
        time.sleep(0.1)
    assert not _alive(worker), "the sweep's worker outlived aebench-evidence"
    assert any("interrupted" in line for line in lines)
    assert signal.getsignal(signal.SIGTERM) is not _raise_terminated  # the handler is restored


# a tuning trial's "aebench" (sys.executable swapped for this script): writes its pid, sleeps
TRIAL = """#!/bin/sh
echo $$ > "$AEBENCH_TEST_PID"
exec sleep 120
"""
# aebench-evidence's tuning stage running that trial; the test SIGKILLs it
PARENT = """
import sys
from pathlib import Path
from orchestration import tuning_stage
sys.executable = sys.argv[1]
tuning_stage._runner(1)(["task=regression"], Path(sys.argv[2]))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
def test_a_tuning_trial_dies_with_aebench_evidence_even_by_sigkill(tmp_path: Path) -> None:
    import subprocess

    trial = tmp_path / "trial.sh"
    trial.write_text(TRIAL)
    trial.chmod(0o755)
    pid_file = tmp_path / "trial.pid"
    env = {**os.environ, "AEBENCH_TEST_PID": str(pid_file)}
    root = Path(__file__).resolve().parent.parent
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, str(trial), str(tmp_path / "trial")], env=env, cwd=root
    )
    for _ in range(400):
        if pid_file.exists() and pid_file.read_text().strip():
            break
        time.sleep(0.05)
    child = int(pid_file.read_text())
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    for _ in range(50):
        if not _alive(child):
            break
        time.sleep(0.1)
    assert not _alive(child), "the tuning trial outlived aebench-evidence"
