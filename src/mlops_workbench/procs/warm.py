"""The warm runner: one process that has imported pandas, scikit-learn, MLflow and FastAPI once, and forks a
child for each workspace DVC stage (``python prepare.py``, ``train.py``, ``evaluate.py``) and each workbench
service (``workbench serve``, the router, the monitor) started while it runs.

A stage started cold spends about 1.3 of its 1.6 CPU-s importing pandas, pandera and scikit-learn (which always
imports ``scipy.stats``); a model server about 2.7 CPU-s importing MLflow, skops and FastAPI before it loads its
model. A forked child starts with all of that loaded. The demo's pipeline and the test session start a runner
with :func:`runner`; the processes they start find it through :data:`RUNNER_ENV` in their environment.

- A stage's script calls :func:`run_stage`. With a runner, it hands over its working folder, environment, argv
  and standard streams (the file descriptors themselves), forwards the signals it gets to the child, and exits
  with the child's exit code. A child ends when its script goes, so a killed ``dvc repro`` or lab run leaves
  nothing behind.
- :func:`mlops_workbench.procs.start` hands a ``workbench`` service to the runner with :func:`start_service`:
  the child leads a session of its own, writes to the service's log and outlives whoever started it, as a
  spawned service does. Its pid is the service's.
- Without a runner, or when it does not answer, the stage or service starts as its own process, as in a
  learner's terminal or notebook. Either way the outputs, logs and exit codes are the same.

The children run current code: the runner (:mod:`mlops_workbench.procs.zygote`) imports third-party libraries
only, never the stage or service code of the workbench, so an edit to ``mlops_workbench`` counts at the next
start. Installed packages count as they were when the runner started. The runner lives as long as the process
that started it.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

RUNNER_ENV = "WORKBENCH_WARM_RUNNER"
"""The address (a Unix socket's path) of the runner that the stages and services of this process tree use."""
STAGES = ("prepare", "train", "evaluate")
"""The stages a runner runs: ``mlops_workbench.versioning.<name>_stage``, in the stage's working folder."""
SERVICE_MODULE = "mlops_workbench.cli.main"
"""The one module a runner starts services from: the ``workbench`` command line."""
MESSAGE = 1 << 20
"""The largest request: it carries a whole environment."""


@dataclass(frozen=True)
class Runner:
    """A started runner: its address, process and log."""

    address: str
    pid: int
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """What a process's environment needs for its stages and services to start here."""
        return {RUNNER_ENV: self.address}


def stage_function(name: str) -> Callable[[str], object]:
    """``mlops_workbench.versioning.<name>_stage``, imported now; SystemExit naming the stages for another name."""
    if name not in STAGES:
        raise SystemExit(f"unknown stage {name!r}: a workspace's stages are {', '.join(STAGES)}")
    versioning = importlib.import_module("mlops_workbench.versioning")
    stage: Callable[[str], object] = getattr(versioning, f"{name}_stage")
    return stage


def run_stage(name: str) -> None:
    """Run stage ``name`` of the workspace in the working folder: in the runner :data:`RUNNER_ENV` names when
    there is one (exiting with the stage's exit code), else in this process."""
    address = os.environ.get(RUNNER_ENV)
    if address:
        code = _stage_in_runner(address, name)
        if code is not None:
            raise SystemExit(code)
    stage_function(name)(".")


def _send(address: str, request: dict[str, Any], fds: Sequence[int]) -> tuple[socket.socket, dict[str, Any]]:
    """Send ``request`` with ``fds`` (which the child puts at ``request["targets"]``) to the runner; return the
    connection and its first reply. OSError or ValueError when the runner is not there or took nothing."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(address)
        socket.send_fds(conn, [json.dumps(request).encode()], list(fds))
        reply = json.loads(conn.recv(MESSAGE) or b"{}")
        if "declined" in reply:
            raise OSError(reply["declined"])
        if "pid" not in reply and "exit" not in reply:
            raise OSError("it closed the connection")
    except (OSError, ValueError):
        conn.close()
        raise
    return conn, reply


def _stage_in_runner(address: str, name: str) -> int | None:
    """Run the stage in the runner at ``address``; its exit code, or None when the runner did not take it."""
    streams = [fd for fd in (0, 1, 2) if _is_open(fd)]
    request = {"kind": "stage", "stage": name, "cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv}
    try:
        conn, started = _send(address, {**request, "targets": streams}, streams)
    except (OSError, ValueError) as err:  # nothing of the stage ran: run it here
        print(f"the warm runner at {address} did not take stage {name} ({err}); running it here", file=sys.stderr)
        return None
    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:  # Ctrl-C or a kill meant for the stage reaches the child
        forwarded.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(started["pid"], signum)

    with conn:
        if "exit" in started:  # the child could not even become the stage's process (its folder is gone)
            return int(started["exit"])
        for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(sig, forward)
        ended = json.loads(conn.recv(MESSAGE) or b"{}")
    if "exit" in ended:
        return int(ended["exit"])
    if forwarded:
        return 128 + forwarded[-1]
    print(f"stage {name} ended without an exit code in the warm runner (pid {started['pid']})", file=sys.stderr)
    return 1


def _is_open(fd: int) -> bool:
    try:
        os.fstat(fd)
    except OSError:
        return False
    return True


def start_service(cmd: Sequence[str], log: Path, cwd: Path | None, env: Mapping[str, str]) -> int | None:
    """Start ``cmd`` (``python -m mlops_workbench.cli.main ...``) as a service forked by the runner that
    ``env`` names, in a session of its own with its output appended to ``log``: its pid, or None when there is
    no runner, ``cmd`` is not a workbench command, or the runner did not take it (start it cold then)."""
    address = env.get(RUNNER_ENV)
    if not address or list(cmd[:3]) != [sys.executable, "-m", SERVICE_MODULE]:
        return None
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(os.devnull, "rb") as stdin, open(log, "ab") as out:
        fds = [stdin.fileno(), out.fileno(), out.fileno()]
        request = {"kind": "service", "argv": list(cmd[3:]), "cwd": str(cwd or os.getcwd()), "env": dict(env)}
        try:
            conn, started = _send(address, {**request, "targets": [0, 1, 2]}, fds)
        except (OSError, ValueError):
            return None
    conn.close()
    return int(started["pid"]) if "pid" in started else None


@contextlib.contextmanager
def runner(log: Path | None = None, timeout: float = 60.0) -> Iterator[Runner]:
    """Start a runner for as long as the ``with`` block lasts; put :attr:`Runner.env` in the environment of the
    processes whose stages and services should use it. Its log (a line per child) is ``log``, by default in a
    temporary folder that goes with it."""
    from mlops_workbench.errors import ServiceError
    from mlops_workbench.procs.children import spawn

    folder = Path(tempfile.mkdtemp(prefix="wb-runner-"))  # a short path: a socket's is limited to 107 bytes
    log = log or folder / "runner.log"
    read_end, write_end = os.pipe()
    try:
        try:
            handle = spawn(
                [sys.executable, "-m", "mlops_workbench.procs.zygote", str(folder / "socket"), str(write_end)],
                log=log,
                pass_fds=[write_end],
            )
        finally:
            os.close(write_end)  # the runner's copy is the only one left: a runner that dies closes the pipe
        try:
            if not (select.select([read_end], [], [], timeout)[0] and os.read(read_end, 1)):
                raise ServiceError(f"the warm runner did not start within {timeout:.0f}s; see {log}")
            yield Runner(address=str(folder / "socket"), pid=handle.pid, log=log)
        finally:
            handle.stop(grace=5)
    finally:
        os.close(read_end)
        shutil.rmtree(folder, ignore_errors=True)
