"""The warm runner's own process (``python -m mlops_workbench.procs.zygote SOCKET READY_FD``): it imports
:data:`PRELOAD`, then forks a child per request from :mod:`mlops_workbench.procs.warm`'s clients.

The runner stays single-threaded, so a fork copies no lock another thread holds. It reaps its children and logs
each one's start and exit code, one line each. It ends when the process that started it ends.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import runpy
import select
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any, NoReturn

from mlops_workbench.procs.children import reaped
from mlops_workbench.procs.warm import MESSAGE, SERVICE_MODULE, STAGES, stage_function

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
    "mlflow",
    "mlflow.pyfunc",
    "mlflow.sklearn",
    "skops.io",
    "fastapi",
    "uvicorn",
    "httpx",
    "aiohttp",
    "prometheus_client",
    "typer",
    "rich",
)
"""What the runner imports before it forks: the third-party libraries that stages and services import, none of
the workbench's own stage or service code."""
STARTUP = {key: value for key, value in os.environ.items() if key.startswith("PYTHON")}
"""The runner's own start-up settings. Python reads ``PYTHON*`` variables once, when it starts: a child gets the
runner's, and only those of :data:`APPLIED` can be set again for it."""
APPLIED = ("PYTHONPATH", "PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")


def serve(address: str, ready_fd: int) -> NoReturn:
    """Listen at ``address`` (telling ``ready_fd``), import :data:`PRELOAD`, then fork a child per request until
    the process that started the runner ends. Requests that come during the imports wait for them."""
    parent = os.getppid()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    listener.bind(address)
    listener.listen(64)
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    began = time.process_time()
    for module in PRELOAD:
        importlib.import_module(module)
    took = time.process_time() - began
    _log(f"warm runner {os.getpid()} at {address}: imported {len(PRELOAD)} modules in {took:.2f} CPU-s")
    ours = ",".join(sorted(name for name in sys.modules if name.startswith("mlops_workbench")))
    _log(f"workbench modules: {ours} (each child imports the stage or service code itself)")
    while os.getppid() == parent:
        _reap()
        if select.select([listener], [], [], 1.0)[0]:
            _accept(listener)
    _log(f"warm runner {os.getpid()}: the process that started it has ended; stopping")
    raise SystemExit(0)


def _log(line: str) -> None:
    print(line, flush=True)  # flushed before any fork, so no child writes it again


def _reap() -> None:
    for pid, code in reaped():
        _log(f"pid {pid}: exit {code}")


def _refusal(request: Any, fds: list[int]) -> str | None:
    if not isinstance(request, dict) or len(request.get("targets", ())) != len(fds):
        return "a request without one target per file descriptor"
    if not (request.get("kind") == "stage" and request.get("stage") in STAGES) and not (
        request.get("kind") == "service" and request.get("argv")
    ):
        return f"an unknown request {request.get('kind')!r} {request.get('stage', '')}"
    env = request.get("env") or {}
    differ = sorted(
        key
        for key in {*STARTUP, *(k for k in env if k.startswith("PYTHON"))}
        if key not in APPLIED and STARTUP.get(key) != env.get(key)
    )
    return f"its Python start-up settings differ from the runner's: {', '.join(differ)}" if differ else None


def _accept(listener: socket.socket) -> None:
    conn, _ = listener.accept()
    fds: list[int] = []
    try:
        data, fds, _, _ = socket.recv_fds(conn, MESSAGE, 3)
        request = json.loads(data)
        refused = _refusal(request, fds)
        if refused is not None:
            conn.send(json.dumps({"declined": refused}).encode())  # the caller starts it as its own process
    except (OSError, ValueError) as err:
        refused = str(err)
    if refused is None:
        pid = os.fork()
        if pid == 0:
            listener.close()
            _child(conn, request, fds)
        what = f"stage {request['stage']}" if request["kind"] == "stage" else f"workbench {' '.join(request['argv'])}"
        _log(f"pid {pid}: {what} in {request['cwd']}")
    else:
        _log(f"refused {refused}")
    conn.close()
    for fd in fds:
        os.close(fd)


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> NoReturn:
    """In the forked child: become the stage's or service's process (session, folder, environment, streams),
    run it, and exit with the code its own process would have."""
    code, reported, service = 1, threading.Event(), request["kind"] == "service"
    try:
        if service:
            os.setsid()  # a session of its own, as a spawned service has: stopped with its group, not the runner's
        for target, fd in zip(request["targets"], fds, strict=True):  # received descriptors are above 2
            os.dup2(fd, target)
            if fd != target:
                os.close(fd)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        _start_up(request["env"])
        conn.send(json.dumps({"pid": os.getpid()}).encode())
        if service:
            conn.close()  # a service outlives whoever started it
            code = _run(lambda: runpy.run_module(SERVICE_MODULE, run_name="__main__", alter_sys=True), request)
        else:
            threading.Thread(target=_end_with_caller, args=(conn, reported), daemon=True).start()
            code = _run(lambda: stage_function(request["stage"])("."), request)
    except BaseException:  # noqa: BLE001 - it could not become the process: say why where its output goes
        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        reported.set()
        if not service:
            with contextlib.suppress(OSError):
                conn.send(json.dumps({"exit": code}).encode())
        os._exit(code)


def _start_up(env: dict[str, str]) -> None:
    """Do what Python does at start with the :data:`APPLIED` settings of ``env``: the module search path, stream
    buffering and bytecode writing; then open text streams over the new descriptors 0, 1 and 2."""
    given = [path for path in env.get("PYTHONPATH", "").split(os.pathsep) if path]
    runners = [path for path in STARTUP.get("PYTHONPATH", "").split(os.pathsep) if path]
    sys.path[1:] = [*given, *(path for path in sys.path[1:] if path not in runners)]
    sys.dont_write_bytecode = bool(env.get("PYTHONDONTWRITEBYTECODE"))
    unbuffered = bool(env.get("PYTHONUNBUFFERED"))
    sys.stdin = open(0, encoding="utf-8", closefd=False)  # noqa: SIM115 - the process's stream, closed at exit
    line = unbuffered or os.isatty(1)
    sys.stdout = open(1, "w", encoding="utf-8", buffering=1 if line else -1, closefd=False)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding="utf-8", errors="backslashreplace", buffering=1, closefd=False)  # noqa: SIM115
    for stream in (sys.stdout, sys.stderr):
        stream.reconfigure(write_through=unbuffered)


def _end_with_caller(conn: socket.socket, reported: threading.Event) -> None:
    """End a stage's child when its script goes (killed with its ``dvc repro``): nobody would read its result."""
    with contextlib.suppress(OSError):
        conn.recv(1)
    if not reported.is_set():  # else the stage has ended, and the main thread exits with its code
        os._exit(128 + signal.SIGHUP)


def _run(main: Any, request: dict[str, Any]) -> int:
    """Run ``main`` as ``python`` would run the stage's script or ``python -m`` the service; its exit code."""
    argv = request.get("argv") or []
    if request["kind"] == "service":
        sys.argv, sys.path[0] = [SERVICE_MODULE, *argv], request["cwd"]  # runpy puts the module's file in argv[0]
    else:
        sys.argv, sys.path[0] = list(argv), os.path.dirname(os.path.abspath(argv[0] if argv else "."))
    try:
        main()
    except SystemExit as done:
        if done.code is None or isinstance(done.code, int):
            return done.code or 0
        print(done.code, file=sys.stderr)
        return 1
    except BaseException as err:  # noqa: BLE001 - printed as Python prints an uncaught exception
        traceback.print_exception(type(err), err, err.__traceback__.tb_next if err.__traceback__ else None)
        return 128 + signal.SIGINT if isinstance(err, KeyboardInterrupt) else 1
    return 0


if __name__ == "__main__":
    serve(sys.argv[1], int(sys.argv[2]))
