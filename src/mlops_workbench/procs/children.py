"""Child processes: start one (:func:`spawn`, the one place a child starts), wait for it, and end it with its
whole process group (:func:`end`, :func:`signal_group`), or every process of one headless lab run
(:func:`kill_token`). Background services built on these are :mod:`mlops_workbench.procs`'s."""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

Output = Path | Literal["discard", "inherit"]
RUN_TOKEN_ENV = "WORKBENCH_RUN_TOKEN"
"""Marks the processes of one headless lab run; services drop it so they outlive the kernel until graded."""


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


def start_time(pid: int) -> str | None:
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


def reaped() -> Iterator[tuple[int, int]]:
    """Wait for each child of this process that has ended, never blocking: the pid and exit code of each (a
    negative code is the signal that ended it). The CPU time of each joins this process's ``RUSAGE_CHILDREN``."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        yield pid, os.waitstatus_to_exitcode(status)


def reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
