"""The warm stage runner: one process that has imported pandas and scikit-learn once, and forks a child for each
DVC stage of a lab workspace (``python prepare.py``, ``train.py``, ``evaluate.py``).

A stage started cold spends about 1.3 of its 1.6 CPU-s importing pandas, pandera and scikit-learn (which always
imports ``scipy.stats``). A child forked from the runner starts with them loaded and needs about 0.2. The demo's
pipeline and the test session start one with :func:`stage_runner`, and the stages find it through
:data:`RUNNER_ENV` in their environment.

A stage's script calls :func:`run_stage`. With a runner, it hands over its working folder, environment, argv and
standard streams (the file descriptors themselves), forwards the signals it gets to the child, and exits with
the child's exit code. Without one, or when the runner does not answer, it runs the stage itself, as in a
learner's terminal. Either way the stage's output lands where DVC reads it, and its exit code is the one DVC sees.

The child runs current code: the runner imports third-party libraries only (:data:`PRELOAD`), never the stage
functions, so an edit to ``mlops_workbench`` counts at the next stage. Installed packages count as they were when
the runner started. The runner lives as long as the process that started it, and ends by itself when that one
goes. A child ends when its stage script goes, so a killed ``dvc repro`` or lab run leaves nothing behind.
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
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

RUNNER_ENV = "WORKBENCH_STAGE_RUNNER"
"""The address (a Unix socket's path) of the stage runner that stages of this process tree hand their work to."""
STAGES = ("prepare", "train", "evaluate")
"""The stages a runner runs: ``mlops_workbench.versioning.<name>_stage``, in the stage's working folder."""
PRELOAD = (
    "pandas",
    "pandera.pandas",
    "pydantic",
    "yaml",
    "joblib",
    "scipy.stats",
    "sklearn.ensemble",
    "sklearn.linear_model",
    "sklearn.metrics",
    "sklearn.model_selection",
    "sklearn.pipeline",
    "sklearn.preprocessing",
)
"""What the runner imports before it forks: the third-party libraries the stages import, none of the workbench."""
_MESSAGE = 1 << 20  # a request carries the stage's whole environment: room for a large one


@dataclass(frozen=True)
class Runner:
    """A started stage runner: its address, process and log."""

    address: str
    pid: int
    log: Path

    @property
    def env(self) -> dict[str, str]:
        """What a process's environment needs for its stages to run here."""
        return {RUNNER_ENV: self.address}


def _stage_function(name: str) -> Callable[[str], object]:
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
        code = _hand_over(address, name)
        if code is not None:
            raise SystemExit(code)
    _stage_function(name)(".")


def _open_fds() -> list[int]:
    found = []
    for fd in (0, 1, 2):
        with contextlib.suppress(OSError):
            os.fstat(fd)
            found.append(fd)
    return found


def _hand_over(address: str, name: str) -> int | None:
    """Run the stage in the runner at ``address``; its exit code, or None when the runner did not take it."""
    conn = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        conn.connect(address)
        fds = _open_fds()
        request = {"stage": name, "cwd": os.getcwd(), "env": dict(os.environ), "argv": sys.argv, "fds": fds}
        socket.send_fds(conn, [json.dumps(request).encode()], fds)
        started = json.loads(conn.recv(_MESSAGE) or b"{}")
        if "exit" in started:  # the child could not even become the stage's process (its folder is gone)
            return int(started["exit"])
        if "pid" not in started:
            raise OSError("it closed the connection")
    except (OSError, ValueError) as err:  # nothing of the stage ran: run it here
        conn.close()
        print(f"the stage runner at {address} did not take stage {name} ({err}); running it here", file=sys.stderr)
        return None
    forwarded: list[int] = []

    def forward(signum: int, _frame: object) -> None:  # Ctrl-C or a kill meant for the stage reaches the child
        forwarded.append(signum)
        with contextlib.suppress(ProcessLookupError):
            os.kill(started["pid"], signum)

    for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, forward)
    with conn:
        ended = json.loads(conn.recv(_MESSAGE) or b"{}")
    if "exit" in ended:
        return int(ended["exit"])
    if forwarded:
        return 128 + forwarded[-1]
    print(f"stage {name} ended without an exit code in the stage runner (pid {started['pid']})", file=sys.stderr)
    return 1


def serve(address: str, ready_fd: int) -> NoReturn:
    """The runner: listen at ``address`` (telling ``ready_fd``), import :data:`PRELOAD`, then fork a child per
    request until the process that started it ends. Requests that come during the imports wait for them."""
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen(64)
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    began = time.process_time()
    for module in PRELOAD:
        importlib.import_module(module)
    ours = ",".join(sorted(name for name in sys.modules if name.startswith("mlops_workbench")))
    _log(
        f"stage runner {os.getpid()} at {address}: imported {len(PRELOAD)} modules in {time.process_time() - began:.2f} CPU-s"
    )
    _log(f"workbench modules: {ours} (the stages' own code is imported by each child)")
    while os.getppid() == parent:
        _reap()
        if select.select([listener], [], [], 1.0)[0]:
            _accept(listener)
    _log(f"stage runner {os.getpid()}: the process that started it has ended; stopping")
    raise SystemExit(0)


def _log(line: str) -> None:
    print(line, flush=True)  # flushed before any fork, so no child writes it again


def _reap() -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        _log(f"pid {pid}: exit {os.waitstatus_to_exitcode(status)}")


def _accept(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(conn, _MESSAGE, 3)
        request = json.loads(data)
        if request.get("stage") not in STAGES:
            raise ValueError(f"unknown stage {request.get('stage')!r}")
    except (OSError, ValueError) as err:
        _log(f"refused a request: {err}")
        conn.close()
        for fd in fds:
            os.close(fd)
        return
    pid = os.fork()
    if pid == 0:
        listener.close()
        _child(conn, request, fds)
    conn.close()
    for fd in fds:
        os.close(fd)
    _log(f"pid {pid}: stage {request['stage']} in {request['cwd']}")


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> NoReturn:
    """In the forked child: become the stage's process (folder, environment, streams), run it, report its code."""
    code = 1
    reported = threading.Event()
    try:
        for target, fd in zip(request["fds"], fds, strict=True):
            os.dup2(fd, target)
            os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = list(request["argv"])
        sys.path[0] = os.path.dirname(os.path.abspath(sys.argv[0]))
        _reopen_streams()
        threading.Thread(target=_end_with_caller, args=(conn, reported), daemon=True).start()
        conn.send(json.dumps({"pid": os.getpid()}).encode())
        code = _run(request["stage"])
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        reported.set()
        with contextlib.suppress(OSError):
            conn.send(json.dumps({"exit": code}).encode())
        os._exit(code)


def _reopen_streams() -> None:
    """Text streams over the stage's own descriptors, buffered as Python buffers them for a fresh process."""
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's stream, closed at exit
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1 if os.isatty(1) else -1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115


def _end_with_caller(conn: socket.socket, reported: threading.Event) -> None:
    """End the child when its stage script goes (killed with its ``dvc repro``): nobody would read its result."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    if not reported.is_set():  # else the stage has ended, and the main thread exits with its code
        os._exit(128 + signal.SIGHUP)


def _run(name: str) -> int:
    """Run the stage as ``python script.py`` would and return the exit code that process would have."""
    try:
        _stage_function(name)(".")
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    except BaseException as err:  # noqa: BLE001 - printed as Python prints an uncaught exception
        traceback.print_exception(type(err), err, err.__traceback__.tb_next if err.__traceback__ else None)
        return 128 + signal.SIGINT if isinstance(err, KeyboardInterrupt) else 1
    return 0


@contextlib.contextmanager
def stage_runner(log: Path | None = None, timeout: float = 60.0) -> Iterator[Runner]:
    """Start a stage runner for as long as the ``with`` block lasts; put :attr:`Runner.env` in the environment of
    the processes whose stages should use it. Its log (one line per stage) is ``log``, by default in a temporary
    folder that goes with it."""
    from mlops_workbench.errors import ServiceError
    from mlops_workbench.procs.children import spawn

    folder = Path(tempfile.mkdtemp(prefix="wb-stages-"))  # a short path: a socket's is limited to 107 bytes
    log = log or folder / "runner.log"
    read_end, write_end = os.pipe()
    try:
        try:
            handle = spawn(
                [sys.executable, "-m", "mlops_workbench.procs.warm", str(folder / "socket"), str(write_end)],
                log=log,
                pass_fds=[write_end],
            )
        finally:
            os.close(write_end)  # the runner's copy is the only one left: a runner that dies closes the pipe
        try:
            if not (select.select([read_end], [], [], timeout)[0] and os.read(read_end, 1)):
                raise ServiceError(f"the stage runner did not start within {timeout:.0f}s; see {log}")
            yield Runner(address=str(folder / "socket"), pid=handle.pid, log=log)
        finally:
            handle.stop(grace=5)
    finally:
        os.close(read_end)
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
