"""Starting and ending processes: one spawn for every child, and a kill is only done when the processes are gone,
not when the signal is sent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid

from mlops_workbench import procs
from mlops_workbench.procs import RUN_TOKEN_ENV, alive, kill_token, wait_exit


def spawn(script: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        ["sh", "-c", script], env={**os.environ, **env}, start_new_session=True, stdout=subprocess.PIPE, text=True
    )


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


def test_spawn_logs_output_and_stop_ends_the_whole_process_group(tmp_path):
    log = tmp_path / "logs" / "child.log"
    handle = procs.spawn(
        ["sh", "-c", "echo out; echo err >&2; sleep 60 & echo $! > child.pid; wait"], log=log, cwd=tmp_path
    )
    try:
        pid_file = tmp_path / "child.pid"
        assert wait_for(lambda: pid_file.exists() and pid_file.read_text().strip())
        grandchild = int(pid_file.read_text())
        assert handle.wait(timeout=0.2) is None and handle.returncode is None
        handle.stop(grace=5)
        assert handle.returncode is not None and not alive(handle.pid)
        assert not alive(grandchild), "stop() left a process the child started"
        assert log.read_text().split() == ["out", "err"]
    finally:
        handle.stop(grace=0)


def test_spawn_keeps_stderr_apart_and_wait_returns_the_exit_code(tmp_path):
    handle = procs.spawn(
        [sys.executable, "-c", "import sys; print('hidden'); sys.exit('went wrong')"],
        keep_errors=True,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert handle.wait(timeout=30) == 1
    assert handle.errors.strip() == "went wrong"
    assert handle.stop() == 1, "stopping a child that already ended only reaps it"


def test_a_child_outside_a_group_of_its_own_is_stopped_alone(tmp_path):
    handle = procs.spawn(["sleep", "60"], new_group=False)
    try:
        assert os.getpgid(handle.pid) == os.getpgid(0)
        handle.stop(grace=5)
        assert handle.returncode == -signal.SIGTERM and alive(os.getpid())
    finally:
        handle.stop(grace=0)


def wait_for(probe, timeout: float = 10.0) -> bool:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if probe():
            return True
        time.sleep(0.05)
    return False
