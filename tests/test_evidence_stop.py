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
