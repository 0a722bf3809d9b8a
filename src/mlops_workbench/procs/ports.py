"""Which port a service listens on, and how two starters never pick the same one.

Every state folder has the same default ports (base port + ``WORKBENCH_PORT_OFFSET``), so two labs, tests or
terminals that start MLflow at the same moment both see its default port free. A port chosen for a start is
therefore *claimed* (:func:`claim_port`): a lock file in this user's temporary folder, held with the operating
system's file lock while the service starts. Another starter skips a claimed port, and a claim ends by itself
when its holder exits, however it exits.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from filelock import FileLock, Timeout

from mlops_workbench import settings
from mlops_workbench.errors import ServiceError
from mlops_workbench.workbench import Workbench

T = TypeVar("T")
CLAIMS = Path(tempfile.gettempdir()) / f"mlops-workbench-{os.getuid() if hasattr(os, 'getuid') else 'user'}-ports"
"""Where claims are held: machine-wide for this user, whatever state folder or project a starter works in."""


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
    wanted: int
    """The workbench's default port of the service (``Workbench.port``)."""
    reason: str
    """Where :attr:`wanted` comes from (``Workbench.port_reason``)."""

    @property
    def note(self) -> str | None:
        """One line saying which port was taken, why it was wanted and which one the service uses instead (None
        when the service got its default port)."""
        if self.port == self.wanted:
            return None
        return (
            f"port {self.reason} is taken by another program; {settings.SERVICE_LABELS[self.service]} uses {self.port}"
        )


def _claim(port: int) -> FileLock | None:
    """The claim on ``port``, held, or None when another starter holds it."""
    CLAIMS.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(CLAIMS / f"{port}.lock"), timeout=0, thread_local=False, is_singleton=False)
    try:
        lock.acquire()
    except Timeout:
        return None
    return lock


@contextmanager
def claim_port(wb: Workbench, service: str, tries: int = 50) -> Iterator[PortChoice]:
    """The default port of ``service`` in ``wb`` (base port + its port offset) if free, else the next free one above
    it (any free port after ``tries``), claimed until the block ends: start the service inside it. A port another
    starter has claimed counts as taken. A move is said on stderr in one line (:attr:`PortChoice.note`)."""
    wanted = wb.port(service)
    port, claim = None, None
    for candidate in range(wanted, min(wanted + tries, 65536)):
        if port_in_use(candidate) or (claim := _claim(candidate)) is None:
            continue
        if not port_in_use(candidate):  # free, and still free now that it is ours
            port = candidate
            break
        claim.release()
        claim = None
    choice = PortChoice(service, port or free_port(), wanted, wb.port_reason(service))
    if choice.note:
        print(choice.note, file=sys.stderr, flush=True)
    try:
        yield choice
    finally:
        if claim is not None:
            claim.release()


def choose_port(wb: Workbench, service: str, tries: int = 50) -> PortChoice:
    """The port :func:`claim_port` picks, unclaimed: for a service started by another program (JupyterLab)."""
    with claim_port(wb, service, tries) as choice:
        return choice


def on_default_port(wb: Workbench, service: str, start: Callable[[int], T]) -> T:
    """``start(port)`` on the port :func:`claim_port` picks for ``service``, claimed until ``start`` returns; if a
    program that claims nothing took that port at the same moment (the start failed and the port is now in use),
    once more on the next free one."""
    with claim_port(wb, service) as choice:
        try:
            return start(choice.port)
        except ServiceError:
            if not port_in_use(choice.port):
                raise
    with claim_port(wb, service) as choice:
        return start(choice.port)


def ensure_free(wb: Workbench, service: str, port: int, host: str = "127.0.0.1") -> None:
    """Refuse, naming the port, why it was wanted and the fix, when another program already listens on ``port``."""
    if port_in_use(port, "127.0.0.1" if host in ("0.0.0.0", "") else host):
        why = wb.port_reason(service) if port == wb.port(service) else f"{port} (--port)"
        raise ServiceError(
            f"port {why} is taken by another program, so the {settings.SERVICE_LABELS[service]} "
            "cannot start: stop that program, or pass --port with a free port."
        )
