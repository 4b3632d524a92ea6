"""Which processes belong to an embedded stack: found by environment or by session, so a task
process that retitled itself (and so hid its environment) is still found and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import time

from framecast_airflow.localstack import parent_pid, processes_of


def _wait_for_children(pid: int, n: int) -> list[int]:
    from pathlib import Path

    deadline = time.time() + 10
    while time.time() < deadline:
        kids = [int(p.name) for p in Path("/proc").iterdir()
                if p.name.isdigit() and parent_pid(int(p.name)) == pid]
        if len(kids) >= n:
            return kids
        time.sleep(0.05)
    raise AssertionError(f"process {pid} did not start {n} child(ren)")


def test_a_session_finds_processes_whose_environment_says_nothing(tmp_path):
    home = tmp_path / "airflow"
    home.mkdir()
    # A component in its own session (as the stack starts them) with a forked child, neither
    # carrying AIRFLOW_HOME in its environment.
    leader = subprocess.Popen(["sh", "-c", "sleep 60 & wait"], env={"PATH": "/usr/bin:/bin"},
                              start_new_session=True)
    other = subprocess.Popen(["sleep", "60"], env={"PATH": "/usr/bin:/bin"})
    try:
        (child,) = _wait_for_children(leader.pid, 1)
        assert processes_of(home) == []
        found = processes_of(home, sessions=[leader.pid])
        assert found == sorted([leader.pid, child])  # not `other`, not this test's process
        marked = subprocess.Popen(["sleep", "60"], env={"AIRFLOW_HOME": str(home)})
        try:
            assert processes_of(home) == [marked.pid]
        finally:
            marked.kill()
            marked.wait()
    finally:
        os.killpg(leader.pid, signal.SIGKILL)  # its own group: the child goes with it
        other.kill()
        for p in (leader, other):
            p.wait()
