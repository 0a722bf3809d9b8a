"""Ending processes: a kill is only done when the processes are gone, not when the signal is sent."""

from __future__ import annotations

import os
import signal
import subprocess
import uuid

from mlops_workbench.labs.run import kill_token
from mlops_workbench.procs import RUN_TOKEN_ENV, alive, wait_exit


def spawn(script: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(["sh", "-c", script], env={**os.environ, **env}, start_new_session=True,
                            stdout=subprocess.PIPE, text=True)


def test_wait_exit_waits_for_the_end_and_reports_a_process_that_outlives_it():
    proc = spawn("exec sleep 60")
    try:
        assert wait_exit([proc.pid], timeout=0.2) is False and alive(proc.pid)
        os.kill(proc.pid, signal.SIGKILL)
        assert wait_exit([proc.pid], timeout=10) is True
        assert not alive(proc.pid)  # an unreaped child is a zombie, which counts as ended
    finally:
        proc.kill()
        proc.wait()
    assert wait_exit([proc.pid], timeout=1) is True  # a pid that no longer exists has ended


def test_kill_token_ends_every_carrier_and_its_children_before_returning():
    token = uuid.uuid4().hex
    carrier = spawn("sleep 60 & echo $!; wait", **{RUN_TOKEN_ENV: token})
    other = spawn("exec sleep 60")
    try:
        child = int(carrier.stdout.readline())
        assert alive(carrier.pid) and alive(child)
        kill_token(token)
        assert not alive(carrier.pid) and not alive(child), "kill_token returned while a carrier still ran"
        assert alive(other.pid), "a process without the token must be left alone"
    finally:
        for proc in (carrier, other):
            proc.kill()
            proc.wait()
