"""The rollout event log: append-only JSONL of weight changes, measurements, faults and decisions.

Every line is one JSON object with at least ``t`` (unix seconds), ``type`` and
``rollout`` (the rollout id). Types: ``start``, ``weight``, ``measurement``,
``traffic``, ``fault``, ``decision``, ``phase``. The log is only ever appended to;
timelines, time to detect/restore and blast radius are computed from it.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any, Iterator

from mlops_workbench import settings

_LOCK = threading.Lock()


def log_path(home: Path | None = None) -> Path:
    return settings.layout(home).rollout_events


class EventLog:
    """Appends events to ``<home>/rollout/events.jsonl`` (one fsync'd line per event)."""

    def __init__(self, home: Path | None = None, rollout: str | None = None, path: Path | None = None) -> None:
        self.path = path or log_path(home)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rollout = rollout

    def emit(self, type: str, **fields: Any) -> dict[str, Any]:
        """Append one event and return it."""
        event = {"t": round(time.time(), 3), "type": type, "rollout": self.rollout, **fields}
        line = json.dumps(event, default=str) + "\n"
        with _LOCK:
            with open(self.path, "a", encoding="utf-8") as fh:
                fh.write(line)
                fh.flush()
                os.fsync(fh.fileno())
        return event


def read(home: Path | None = None, rollout: str | None = None, path: Path | None = None) -> list[dict[str, Any]]:
    """All events (of one rollout if given), oldest first; a torn last line is skipped."""
    return list(iter_events(path or log_path(home), rollout))


def iter_events(path: Path, rollout: str | None = None) -> Iterator[dict[str, Any]]:
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            try:
                event = json.loads(line)
            except json.JSONDecodeError:
                continue
            if rollout is None or event.get("rollout") == rollout:
                yield event


def last_rollout(events: list[dict[str, Any]]) -> str | None:
    """Id of the most recent rollout that appears in ``events``."""
    for event in reversed(events):
        if event.get("rollout"):
            return event["rollout"]
    return None
