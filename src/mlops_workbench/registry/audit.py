"""Append-only audit logs (JSONL) and the file locks that serialise changes to shared state.

Every registry action (promotion, refusal, rollback) is one JSON line in
``<home>/audit/registry.jsonl``. Appends take a file lock, so lines written by
concurrent processes never interleave; nothing ever rewrites the file.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from filelock import FileLock, Timeout

from mlops_workbench import settings
from mlops_workbench.errors import InputError, ServiceError

LOCK_TIMEOUT = 60.0


def now() -> str:
    """The current UTC time, ISO 8601 with milliseconds (``2026-01-31T12:00:00.123+00:00``)."""
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def log_path(log: str = "registry", home: Path | None = None) -> Path:
    """``<home>/audit/<log>.jsonl``."""
    return settings.layout(home).audit_log(log)


def lock(name: str, home: Path | None = None, timeout: float = LOCK_TIMEOUT) -> FileLock:
    """An inter-process (and inter-thread) lock file ``<home>/locks/<name>.lock``; use it as a context manager."""
    folder = settings.layout(home).locks
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{name}.lock"), timeout=timeout, thread_local=False, is_singleton=False)


def append(entry: dict[str, Any], log: str = "registry", home: Path | None = None) -> dict[str, Any]:
    """Append ``entry`` (with a ``ts`` timestamp added if missing) as one line; returns what was written."""
    path = log_path(log, home)
    path.parent.mkdir(parents=True, exist_ok=True)
    record = {"ts": now(), **entry}
    line = json.dumps(record, sort_keys=False, default=str) + "\n"
    try:
        with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT):
            with open(path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
    except Timeout:
        raise ServiceError(
            f"Could not lock {path} within {LOCK_TIMEOUT:.0f}s: another process holds it. "
            f"If none runs, delete {path}.lock and retry."
        ) from None
    return record


def read(log: str = "registry", home: Path | None = None) -> list[dict[str, Any]]:
    """Every entry of the log, oldest first (an empty list when nothing was logged yet)."""
    return list(iter_entries(log_path(log, home)))


def iter_entries(path: Path) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError:
                    raise InputError(
                        f"{path} line {number} is not JSON: the audit log was edited by hand. "
                        "Restore it from a backup; audit logs are append-only."
                    ) from None
