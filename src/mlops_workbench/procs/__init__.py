"""Every process the workbench starts or ends goes through this package.

:func:`spawn` (from :mod:`~mlops_workbench.procs.children`, with the signals and waits) is the one way a child
process starts: it gives back a :class:`Handle` whose ``stop`` ends the child's whole process group. Background
services (mlflow, uvicorn, router, Prometheus) are spawned by :func:`start` (a ``workbench`` service is forked
by the warm runner of :mod:`~mlops_workbench.procs.warm` when one runs), detached in their own process group,
with pid, port and command recorded in ``<home>/run/<name>.json`` and output in ``<home>/logs/<name>.log``;
``stop_all`` ends every service of a state folder, which is how labs, the
grader and tests leave nothing running. :func:`kill_token` ends every process
of one headless lab run, however deep its children forked. Ports are chosen and
claimed in :mod:`~mlops_workbench.procs.ports`.
"""

from __future__ import annotations

import functools
import json
import os
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psutil

from mlops_workbench.errors import ServiceError
from mlops_workbench.procs import warm
from mlops_workbench.procs.children import (
    RUN_TOKEN_ENV,
    Handle,
    Output,
    alive,
    end,
    kill_token,
    reap,
    signal_group,
    spawn,
    start_time,
    wait_exit,
)
from mlops_workbench.procs.ports import (
    PortChoice,
    choose_port,
    claim_port,
    ensure_free,
    free_port,
    on_default_port,
    port_in_use,
)
from mlops_workbench.workbench import Workbench

__all__ = [
    "RUN_TOKEN_ENV",
    "Handle",
    "Output",
    "PortChoice",
    "PortClash",
    "Service",
    "alive",
    "choose_port",
    "claim_port",
    "end",
    "ensure_free",
    "free_port",
    "get",
    "http",
    "kill_token",
    "on_default_port",
    "port_in_use",
    "running",
    "signal_group",
    "spawn",
    "start",
    "stop",
    "stop_all",
    "wait_exit",
    "workbench_cmd",
]

if TYPE_CHECKING:  # httpx loads with the first request: DVC stage processes import this module and send none
    import httpx


@dataclass
class Service:
    """A running background service, as recorded in its run file."""

    name: str
    pid: int
    port: int
    cmd: list[str]
    log: str
    started: str | None = None
    """The process's start time (``/proc/PID/stat``): a recycled pid is never taken for the service."""

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def _running(service: Service) -> bool:
    """The recorded process itself still runs (not another process that got its pid since)."""
    if not alive(service.pid):
        return False
    return service.started is None or start_time(service.pid) in (None, service.started)


def _run_dir(wb: Workbench) -> Path:
    """Where the run files of ``wb``'s services are; made by :func:`start`, the one writer."""
    return wb.layout.run


def get(wb: Workbench, name: str) -> Service | None:
    """The recorded service ``name`` if its process is still alive, else None (stale records are removed)."""
    record = _run_dir(wb) / f"{name}.json"
    if not record.exists():
        return None
    service = Service(**json.loads(record.read_text()))
    if _running(service):
        return service
    record.unlink(missing_ok=True)
    return None


def start(
    wb: Workbench,
    name: str,
    cmd: Sequence[str],
    port: int,
    *,
    health_path: str | None = "/health",
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
) -> Service:
    """Start ``cmd`` as service ``name`` listening on ``port`` and wait until it answers.

    Raises RuntimeError naming the log file when the process exits or does not
    answer ``health_path`` within ``timeout`` seconds; the process is then stopped.
    """
    existing = get(wb, name)
    if existing:
        return existing
    if port_in_use(port):
        raise ServiceError(
            f"Port {port} is already taken by another program, so '{name}' cannot start. "
            f"Stop that program or choose another port."
        )
    log_path = wb.layout.log(name)
    # a service belongs to the state folder it is recorded in: it reads that folder's token and settings
    child_env = {**{k: v for k, v in os.environ.items() if k != RUN_TOKEN_ENV}, **wb.env(), **(env or {})}
    proc, pid = None, warm.start_service(cmd, log_path, cwd, child_env)  # forked by the warm runner if one runs
    if pid is None:
        proc = spawn(cmd, log=log_path, cwd=cwd, env=child_env)
        pid = proc.pid
    service = Service(name=name, pid=pid, port=port, cmd=list(cmd), log=str(log_path), started=start_time(pid))
    _run_dir(wb).mkdir(parents=True, exist_ok=True)
    (_run_dir(wb) / f"{name}.json").write_text(json.dumps(asdict(service)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if (proc.poll() is not None) if proc is not None else not alive(pid):
            stop(wb, name)
            code = f" with code {proc.returncode}" if proc is not None else ""
            raise ServiceError(f"'{name}' exited{code} while starting; see {log_path}.")
        if _answers(service, health_path):
            if _listens(port, group=pid):
                return service
            stop(wb, name)
            raise PortClash(
                f"Port {port} answered, but another program listens on it ('{name}' started at the same "
                f"moment as it and lost the port): start '{name}' again on a free port."
            )
        time.sleep(0.1)
    stop(wb, name)
    raise ServiceError(f"'{name}' did not answer on port {port} within {timeout:.0f}s; see {log_path}.")


class PortClash(ServiceError):
    """The port was free when checked, but another program took it before the service could."""


def _listens(port: int, group: int) -> bool:
    """Whoever listens on ``port`` belongs to the process group ``group`` (True when the OS does not say who)."""
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
            try:
                return os.getpgid(conn.pid) == group
            except ProcessLookupError:
                return False
    return True


@functools.cache
def http() -> httpx.Client:
    """The one HTTP client for the workbench's own services (health checks, metrics, admin calls, the tracking
    server's REST API); timeouts are given per request.

    A new client loads the CA bundle, about 40 ms of CPU: polling loops paid it on every request, and while a
    service started, its health checks took a third of a core from it. One client, shared by every thread.
    """
    import httpx

    return httpx.Client()


def _answers(service: Service, health_path: str | None) -> bool:
    import httpx

    if health_path is None:
        return port_in_use(service.port)
    try:
        return http().get(service.url + health_path, timeout=1.0).status_code < 500
    except httpx.HTTPError:
        return False


def stop(wb: Workbench, name: str, grace: float = 10.0) -> bool:
    """Stop service ``name`` (SIGTERM to its process group, SIGKILL after ``grace`` s). True if it was running."""
    record = _run_dir(wb) / f"{name}.json"
    if not record.exists():
        return False
    service = Service(**json.loads(record.read_text()))
    was_alive = _running(service)
    if was_alive:
        end(service.pid, grace)
        reap(service.pid)
    record.unlink(missing_ok=True)
    return was_alive


def running(wb: Workbench) -> list[Service]:
    """Every live service recorded under ``wb.home``."""
    names = [p.stem for p in sorted(_run_dir(wb).glob("*.json"))]
    return [s for s in (get(wb, n) for n in names) if s]


def stop_all(wb: Workbench, keep: Iterable[str] = ()) -> list[str]:
    """Stop every service recorded under ``wb.home`` but those named in ``keep``; returns the names that were running."""
    kept = set(keep)
    names = [p.stem for p in sorted(_run_dir(wb).glob("*.json")) if p.stem not in kept]
    return [n for n in names if stop(wb, n)]


def workbench_cmd(*args: str) -> list[str]:
    """The command line of ``workbench ARGS`` run by this interpreter: the one way a service process starts."""
    return [sys.executable, "-m", "mlops_workbench.cli.main", *args]
