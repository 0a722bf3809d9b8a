"""The rollout event log: typed records of weight changes, measurements, faults and decisions, in append-only JSONL.

Every line is one :class:`RolloutEvent`: ``t`` (unix seconds), ``type`` and ``rollout``
(the rollout id), plus the fields of its type, each type its own model (``WeightEvent``
has ``canary``, ``DecisionEvent`` has ``decision``, ...). This module is the only one that
knows the log's keys: :meth:`EventLog.emit` checks what it is given against the model of
the type before writing, and the readers return event objects. The log is only ever
appended to; timelines, time to detect/restore and blast radius are computed from it.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import ValidationError

from mlops_workbench.errors import InputError
from mlops_workbench.records import Record, append_line, problems
from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.workbench import Workbench

_LOCK = threading.Lock()

Number = int | float
"""A count or a measure, kept as written (``20`` stays ``20``, ``0.5`` stays ``0.5``)."""
Totals = dict[str, dict[str, Number]]
"""The router's cumulative counters: ``{"stable": {"requests": n, "errors": n}, "canary": {...}}``."""


class EventType(StrEnum):
    """What an event records; each type has its own model in :data:`MODELS`."""

    START = "start"
    WEIGHT = "weight"
    MEASUREMENT = "measurement"
    TRAFFIC = "traffic"
    FAULT = "fault"
    DECISION = "decision"
    PHASE = "phase"
    REGISTRY = "registry"


class Decision(StrEnum):
    """What the controller decided for the canary: its end (promote, abort, inconclusive), or to go on past a
    pause at an operator's request (continue)."""

    PROMOTE = "promote"
    ABORT = "abort"
    INCONCLUSIVE = "inconclusive"
    CONTINUE = "continue"


FINAL_DECISIONS = (Decision.PROMOTE, Decision.ABORT, Decision.INCONCLUSIVE)
"""The decisions that end a rollout."""


class RolloutEvent(Record):
    """What every event has: when (``t``), what (``type``) and which rollout (None outside one)."""

    ALWAYS = frozenset({"v", "t", "type", "rollout"})
    t: float
    type: EventType
    rollout: str | None = None


class StartEvent(RolloutEvent):
    """A rollout began: the candidate, the stable version, the policy's name, steps and detection bound."""

    type: Literal[EventType.START] = EventType.START
    candidate: str | None = None
    stable: str | None = None
    policy: str | None = None
    steps: list[dict[str, Any]] | None = None
    bound_s: float | None = None


class WeightEvent(RolloutEvent):
    """The canary's share of traffic (percent) changed."""

    type: Literal[EventType.WEIGHT] = EventType.WEIGHT
    canary: Number
    reason: str | None = None


class MeasurementEvent(RolloutEvent):
    """One measurement of one metric (query, values, threshold, verdict) at the canary weight of the moment."""

    type: Literal[EventType.MEASUREMENT] = EventType.MEASUREMENT
    metric: str
    kind: str | None = None
    phase: MeasurementPhase
    message: str = ""
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    samples: dict[str, Number] = {}
    query: str = ""
    window: tuple[float, float] | None = None
    source: str | None = None
    weight: Number | None = None


class TrafficEvent(RolloutEvent):
    """The router's cumulative counters at this moment (for the blast radius)."""

    type: Literal[EventType.TRAFFIC] = EventType.TRAFFIC
    totals: Totals | None = None


class FaultEvent(RolloutEvent):
    """A fault was injected into the canary (the incident's onset), with the counters just before it."""

    type: Literal[EventType.FAULT] = EventType.FAULT
    totals: Totals | None = None
    error_rate: float | None = None
    latency_ms: float | None = None
    crash_after: int | None = None
    seed: int | None = None
    drill: str | None = None
    what: str | None = None


class DecisionEvent(RolloutEvent):
    """The controller's decision and why."""

    type: Literal[EventType.DECISION] = EventType.DECISION
    decision: Decision
    reason: str | None = None


class PhaseEvent(RolloutEvent):
    """The rollout entered a phase (``Promoted``, ``Aborted``, ``Resumed`` after a restart, ``Paused`` for an operator,
    ...)."""

    type: Literal[EventType.PHASE] = EventType.PHASE
    phase: str
    step: int | None = None
    reason: str | None = None


class RegistryEvent(RolloutEvent):
    """The controller moved (or failed to move) a registry alias: ``promote``, ``rollback``, ``rollback-failed``."""

    type: Literal[EventType.REGISTRY] = EventType.REGISTRY
    action: str
    version: str | None = None
    record: str | None = None
    reason: str | None = None


MODELS: dict[EventType, type[RolloutEvent]] = {
    EventType.START: StartEvent,
    EventType.WEIGHT: WeightEvent,
    EventType.MEASUREMENT: MeasurementEvent,
    EventType.TRAFFIC: TrafficEvent,
    EventType.FAULT: FaultEvent,
    EventType.DECISION: DecisionEvent,
    EventType.PHASE: PhaseEvent,
    EventType.REGISTRY: RegistryEvent,
}
"""The model of each event type."""


def parse(data: Mapping[str, Any], where: str = "This event") -> RolloutEvent:
    """``data`` as the event model of its ``type``; InputError (starting with ``where``) naming the bad fields."""
    kind = data.get("type")
    try:
        model = MODELS[EventType(str(kind))]
    except ValueError:
        raise InputError(
            f"{where} has type {kind!r}, not one of {', '.join(EventType)}: "
            "write one of those types (the event log accepts no other)."
        ) from None
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise InputError(f"{where} is not a valid '{kind}' event: {problems(err, model)}.") from None


def log_path(wb: Workbench) -> Path:
    return wb.layout.rollout_events


class EventLog:
    """Appends events to ``<home>/rollout/events.jsonl`` (one fsync'd line per event)."""

    def __init__(self, wb: Workbench, rollout: str | None = None, path: Path | None = None) -> None:
        self.path = path or log_path(wb)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.rollout = rollout

    def emit(self, type: str, **fields: Any) -> RolloutEvent:
        """Append one event of ``type`` with ``fields`` (checked against its model first) and return it.

        A ``t`` among the fields (a measurement's own time) is the event's time; otherwise it is now.
        """
        if fields.get("t") is None:
            fields.pop("t", None)
        event = parse({"t": round(time.time(), 3), "type": type, "rollout": self.rollout, **fields})
        with _LOCK:
            append_line(self.path, event)
        return event


def read(wb: Workbench, rollout: str | None = None, path: Path | None = None) -> list[RolloutEvent]:
    """All events (of one rollout if given), oldest first; a torn last line is skipped."""
    return list(iter_events(path or log_path(wb), rollout))


def iter_events(path: Path, rollout: str | None = None) -> Iterator[RolloutEvent]:
    """The events at ``path`` (of ``rollout`` if given). A last line cut short by a writer still at work is skipped;
    any other line that is not a valid event raises InputError naming the file, the line and the fields."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        lines = fh.readlines()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError:
            if number == len(lines):
                continue  # torn: the writer has not finished this line yet
            raise InputError(
                f"{path} line {number} is not JSON: the event log was edited by hand. "
                "Remove that line (or restore the file); the log is append-only."
            ) from None
        if not isinstance(data, dict):
            raise InputError(f"{path} line {number} is not a JSON object: remove it; the event log is append-only.")
        event = parse(data, f"{path} line {number}")
        if rollout is None or event.rollout == rollout:
            yield event


def of_rollout(events: Iterable[RolloutEvent], rollout: str | None) -> list[RolloutEvent]:
    """The events of ``rollout``."""
    return [e for e in events if e.rollout == rollout]


def last_rollout(events: list[RolloutEvent]) -> str | None:
    """Id of the most recent rollout that appears in ``events``."""
    for event in reversed(events):
        if event.rollout:
            return event.rollout
    return None
