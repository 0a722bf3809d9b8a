"""Every process the workbench starts or ends goes through here.

:func:`spawn` is the one way a child process starts: it gives back a
:class:`Handle` whose ``stop`` ends the child's whole process group. Background
services (mlflow, uvicorn, router, Prometheus) are spawned by :func:`start`,
detached in their own process group, with pid, port and command recorded in
``<home>/run/<name>.json`` and output in ``<home>/logs/<name>.log``;
``stop_all`` ends every service of a state folder, which is how labs, the
grader and tests leave nothing running. :func:`kill_token` ends every process
of one headless lab run, however deep its children forked.
"""

from __future__ import annotations

import functools
import json
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Literal, TypeVar

import psutil

from mlops_workbench import settings
from mlops_workbench.errors import ServiceError

if TYPE_CHECKING:  # httpx loads with the first request: DVC stage processes import this module and send none
    import httpx

T = TypeVar("T")
Output = Path | Literal["discard", "inherit"]
RUN_TOKEN_ENV = "WORKBENCH_RUN_TOKEN"
"""Marks the processes of one headless lab run; services drop it so they outlive the kernel until graded."""


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


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


@dataclass(frozen=True)
class PortChoice:
    """Where a service listens when no port was asked for: its default port or, if that is taken, the next free one."""

    service: str
    """A key of :data:`settings.BASE_PORTS` (``"mlflow"``, ``"jupyter"``, ...)."""
    port: int

    @property
    def note(self) -> str | None:
        """One line saying which port was taken, why it was wanted and which one the service uses instead (None
        when the service got its default port)."""
        if self.port == settings.default_port(self.service):
            return None
        return (
            f"port {settings.port_reason(self.service)} is taken by another program; "
            f"{settings.SERVICE_LABELS[self.service]} uses {self.port}"
        )


def choose_port(service: str, tries: int = 50) -> PortChoice:
    """The default port of ``service`` (base port + ``WORKBENCH_PORT_OFFSET``) if free, else the next free one above
    it (any free port after ``tries``). A move is said on stderr in one line (:attr:`PortChoice.note`)."""
    wanted = settings.default_port(service)
    port = next((p for p in range(wanted, min(wanted + tries, 65536)) if not port_in_use(p)), None)
    choice = PortChoice(service, port or free_port())
    if choice.note:
        print(choice.note, file=sys.stderr, flush=True)
    return choice


def on_default_port(service: str, start: Callable[[int], T]) -> T:
    """``start(port)`` on the port :func:`choose_port` picks for ``service``; if another program took that port at
    the same moment (the start failed and the port is now in use), once more on the next free one."""
    port = choose_port(service).port
    try:
        return start(port)
    except ServiceError:
        if not port_in_use(port):
            raise
        return start(choose_port(service).port)


def ensure_free(service: str, port: int, host: str = "127.0.0.1") -> None:
    """Refuse, naming the port, why it was wanted and the fix, when another program already listens on ``port``."""
    if port_in_use(port, "127.0.0.1" if host in ("0.0.0.0", "") else host):
        why = settings.port_reason(service) if port == settings.default_port(service) else f"{port} (--port)"
        raise ServiceError(
            f"port {why} is taken by another program, so the {settings.SERVICE_LABELS[service]} "
            "cannot start: stop that program, or pass --port with a free port."
        )


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie child counts as dead
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[-1].split()[0] != "Z"
    except OSError:
        return True


def _start_time(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(") ", 1)[-1].split()[19]
    except (OSError, IndexError):
        return None


@dataclass(eq=False)
class Handle:
    """A child process started by :func:`spawn`: wait for it, or stop it together with everything it started."""

    cmd: list[str]
    new_group: bool
    _popen: subprocess.Popen[str] = field(repr=False)  # the one pipe it may have, stderr, is text
    errors: str = ""
    """What the child wrote to stderr, when :func:`spawn` was asked to keep it (filled by :meth:`wait`)."""

    @property
    def pid(self) -> int:
        return self._popen.pid

    @property
    def returncode(self) -> int | None:
        """The exit code once the child has ended and been waited for, else None."""
        return self._popen.returncode

    def poll(self) -> int | None:
        """The exit code if the child has ended, else None; never blocks."""
        return self._popen.poll()

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait up to ``timeout`` seconds (for ever when None) for the child to end and return its exit code, or
        None if it still runs. Kept stderr is read meanwhile, so a chatty child cannot block on a full pipe."""
        try:
            _, err = self._popen.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        self.errors += err or ""
        return self._popen.returncode

    def stop(self, grace: float = 10.0) -> int:
        """End the child: SIGTERM to its process group (to the child alone if it leads none), SIGKILL to whatever
        is left after ``grace`` seconds (at once when ``grace`` is 0). Returns the exit code; a child that has
        already ended is only reaped."""
        if self._popen.poll() is None:
            end(self.pid, grace, group=self.new_group)
        code = self._popen.wait()
        for pipe in (self._popen.stdout, self._popen.stderr):
            if pipe is not None:
                pipe.close()
        return code


def _stream(output: Output) -> int | IO[bytes] | None:
    if output == "discard":
        return subprocess.DEVNULL
    if output == "inherit":
        return None
    Path(output).parent.mkdir(parents=True, exist_ok=True)
    return open(output, "ab")


def spawn(
    cmd: Sequence[str],
    *,
    log: Output = "discard",
    keep_errors: bool = False,
    cwd: Path | str | None = None,
    env: Mapping[str, str] | None = None,
    new_group: bool = True,
    pass_fds: Sequence[int] = (),
) -> Handle:
    """Start ``cmd`` and return its :class:`Handle`; the one place a child process is started.

    ``log`` takes the child's output: a file (appended to, stdout and stderr together, its folder made), or
    ``"discard"``, or ``"inherit"`` (this process's own stdout and stderr). With ``keep_errors``, stderr goes to
    :attr:`Handle.errors` instead, and stdout alone follows ``log``. ``env`` is the child's whole environment
    (default: this process's). ``new_group`` puts the child in a session of its own, so :meth:`Handle.stop` ends
    everything it starts and a Ctrl-C in the terminal does not reach it. stdin is always closed; ``pass_fds``
    are file descriptors the child inherits.
    """
    stream = _stream(log)
    try:
        popen = subprocess.Popen(
            list(cmd),
            stdin=subprocess.DEVNULL,
            stdout=stream,
            stderr=subprocess.PIPE if keep_errors else subprocess.STDOUT if stream is not None else None,
            text=keep_errors,
            cwd=cwd,
            env=None if env is None else dict(env),
            start_new_session=new_group,
            pass_fds=tuple(pass_fds),
        )
    finally:
        if stream is not None and not isinstance(stream, int):  # a log file this process opened
            stream.close()
    return Handle(cmd=list(cmd), new_group=new_group, _popen=popen)


def end(pid: int, grace: float = 10.0, group: bool = True) -> None:
    """End process ``pid`` that this process may not have started (a pid read from a file): SIGTERM to the group
    it leads (to ``pid`` alone without ``group``), SIGKILL after ``grace`` seconds (at once when 0) to whatever is
    left, and return once every one of them has gone."""
    send = signal_group if group else _signal_one

    def targets() -> list[int]:  # looked up on each wait: a member may have forked meanwhile
        return [pid, *(_group_members(pid) if group else [])]

    if grace > 0:
        send(pid, signal.SIGTERM)
        if wait_exit(targets(), grace):
            return
    send(pid, signal.SIGKILL)
    wait_exit(targets(), max(grace, 10.0))


def _group_members(pgid: int) -> list[int]:
    """The live processes of process group ``pgid`` (read from ``/proc``: the leader may have exited already)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(") ", 1)[-1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(int(entry.name))
    return found


def _signal_one(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _running(service: Service) -> bool:
    """The recorded process itself still runs (not another process that got its pid since)."""
    if not alive(service.pid):
        return False
    return service.started is None or _start_time(service.pid) in (None, service.started)


def _run_dir(home: Path | None) -> Path:
    """Where the run files of ``home``'s services are; made by :func:`start`, the one writer."""
    return settings.layout(home).run


def get(name: str, home: Path | None = None) -> Service | None:
    """The recorded service ``name`` if its process is still alive, else None (stale records are removed)."""
    record = _run_dir(home) / f"{name}.json"
    if not record.exists():
        return None
    service = Service(**json.loads(record.read_text()))
    if _running(service):
        return service
    record.unlink(missing_ok=True)
    return None


def start(
    name: str,
    cmd: Sequence[str],
    port: int,
    *,
    health_path: str | None = "/health",
    timeout: float = 60.0,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    home: Path | None = None,
) -> Service:
    """Start ``cmd`` as service ``name`` listening on ``port`` and wait until it answers.

    Raises RuntimeError naming the log file when the process exits or does not
    answer ``health_path`` within ``timeout`` seconds; the process is then stopped.
    """
    home = home or settings.home()
    existing = get(name, home)
    if existing:
        return existing
    if port_in_use(port):
        raise ServiceError(
            f"Port {port} is already taken by another program, so '{name}' cannot start. "
            f"Stop that program or choose another port."
        )
    log_path = settings.layout(home).log(name)
    # a service belongs to the state folder it is recorded in: it reads that folder's token and settings
    proc = spawn(
        cmd,
        log=log_path,
        cwd=cwd,
        env={
            **{k: v for k, v in os.environ.items() if k != RUN_TOKEN_ENV},
            settings.HOME_ENV: str(home),
            **(env or {}),
        },
    )
    service = Service(
        name=name, pid=proc.pid, port=port, cmd=list(cmd), log=str(log_path), started=_start_time(proc.pid)
    )
    _run_dir(home).mkdir(parents=True, exist_ok=True)
    (_run_dir(home) / f"{name}.json").write_text(json.dumps(asdict(service)))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop(name, home)
            raise ServiceError(f"'{name}' exited with code {proc.returncode} while starting; see {log_path}.")
        if _answers(service, health_path):
            if _listens(port, group=proc.pid):
                return service
            stop(name, home)
            raise PortClash(
                f"Port {port} answered, but another program listens on it ('{name}' started at the same "
                f"moment as it and lost the port): start '{name}' again on a free port."
            )
        time.sleep(0.1)
    stop(name, home)
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


def stop(name: str, home: Path | None = None, grace: float = 10.0) -> bool:
    """Stop service ``name`` (SIGTERM to its process group, SIGKILL after ``grace`` s). True if it was running."""
    record = _run_dir(home) / f"{name}.json"
    if not record.exists():
        return False
    service = Service(**json.loads(record.read_text()))
    was_alive = _running(service)
    if was_alive:
        end(service.pid, grace)
        _reap(service.pid)
    record.unlink(missing_ok=True)
    return was_alive


def wait_exit(pids: Iterable[int], timeout: float) -> bool:
    """Wait until every process in ``pids`` has exited (a zombie counts); False if one still runs after ``timeout`` s.

    Signals are delivered asynchronously: a process sent SIGKILL can still be running when ``os.kill``
    returns. This waits on each process's pidfd, which becomes readable the moment the process exits.
    """
    poller, fds = select.poll(), []
    try:
        for pid in set(pids):
            try:
                fds.append(os.pidfd_open(pid))
            except ProcessLookupError:
                continue
            poller.register(fds[-1], select.POLLIN)
        pending, deadline = set(fds), time.monotonic() + timeout
        while pending and (left := deadline - time.monotonic()) > 0:
            for fd, _ in poller.poll(left * 1000):
                pending.discard(fd)
                poller.unregister(fd)
        return not pending
    finally:
        for fd in fds:
            os.close(fd)


def signal_group(pid: int, sig: int) -> None:
    """Send ``sig`` to the process group ``pid`` leads, or to ``pid`` alone if it leads none; gone is fine."""
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def kill_token(token: str, *extra_pids: int) -> None:
    """Kill every process whose environment carries ``token`` in :data:`RUN_TOKEN_ENV` (a headless lab run's
    kernel and all it started, even those that left its process group), and the process groups of
    ``extra_pids``; return once they have all ended."""
    for pid in extra_pids:
        signal_group(pid, signal.SIGKILL)
    for _ in range(5):  # scan again: a process may have forked while the last scan ran
        found = _carrying(token)
        for pid in found:
            _signal_one(pid, signal.SIGKILL)
        if not found or not wait_exit(found, timeout=30):
            return


def _carrying(token: str) -> list[int]:
    """The live processes whose environment carries ``token`` (a zombie's environment reads as empty)."""
    needle, found = f"{RUN_TOKEN_ENV}={token}".encode(), []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def running(home: Path | None = None) -> list[Service]:
    """Every live service recorded under ``home``."""
    names = [p.stem for p in sorted(_run_dir(home).glob("*.json"))]
    return [s for s in (get(n, home) for n in names) if s]


def stop_all(home: Path | None = None, keep: Iterable[str] = ()) -> list[str]:
    """Stop every service recorded under ``home`` but those named in ``keep``; returns the names that were running."""
    kept = set(keep)
    names = [p.stem for p in sorted(_run_dir(home).glob("*.json")) if p.stem not in kept]
    return [n for n in names if stop(n, home)]


def workbench_cmd(*args: str) -> list[str]:
    """The command line of ``workbench ARGS`` run by this interpreter: the one way a service process starts."""
    return [sys.executable, "-m", "mlops_workbench.cli.main", *args]
