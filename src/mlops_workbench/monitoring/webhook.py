"""The webhook receiver: Alertmanager's notifications (webhook payload version 4) in, one action per alert group out.

``POST /alerts`` needs the state folder's bearer token (the admin token of :mod:`mlops_workbench.serving.auth`;
Alertmanager sends it from the token file through ``http_config.authorization.credentials_file``). A call
without it gets 401, a body that is not JSON 400, one that is not a version-4 notification 422 naming every bad
field; none of them is recorded or starts anything. Each accepted notification is appended to
``<home>/monitoring/alerts.jsonl`` (:class:`AlertRecord`), and the injected ``on_firing(notification)`` runs once
per alert group: while a group keeps firing, repeated notifications start nothing; once it has resolved, a new
firing starts it again. Which groups are firing is folded from the log (:func:`firing_groups`), so a restarted
receiver still knows.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from filelock import FileLock
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_serializer

from mlops_workbench import fielderrors
from mlops_workbench.records import Record, append_line
from mlops_workbench.serving import auth, payloads
from mlops_workbench.workbench import Workbench

log = logging.getLogger("mlops_workbench.monitoring.webhook")
PATH = "/alerts"
Status = Literal["firing", "resolved"]


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class Alert(_Payload):
    """One alert of a notification, every field Alertmanager sends."""

    status: Status
    labels: dict[str, str]
    annotations: dict[str, str] = Field(default_factory=dict)
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt", description="0001-01-01T00:00:00Z while the alert fires")
    generator_url: str = Field("", alias="generatorURL")
    fingerprint: str = Field(min_length=1, description="identifies the alert by its labels")


class Notification(_Payload):
    """Alertmanager's webhook payload, version 4: one alert group, every field Alertmanager sends."""

    version: Literal["4"]
    group_key: str = Field(alias="groupKey", min_length=1, description="identifies the alert group")
    truncated_alerts: int = Field(0, alias="truncatedAlerts", ge=0)
    status: Status
    receiver: str
    group_labels: dict[str, str] = Field(alias="groupLabels")
    common_labels: dict[str, str] = Field(alias="commonLabels")
    common_annotations: dict[str, str] = Field(default_factory=dict, alias="commonAnnotations")
    external_url: str = Field(alias="externalURL")
    alerts: list[Alert] = Field(min_length=1)

    @property
    def firing(self) -> list[str]:
        """Fingerprints of the group's alerts that fire now (sorted)."""
        return sorted({a.fingerprint for a in self.alerts if a.status == "firing"})


class Action(StrEnum):
    """What an accepted notification did."""

    STARTED = "started"  # the group started firing: on_firing was started
    REPEAT = "repeat"  # the group was firing already: nothing started
    RESOLVED = "resolved"  # no alert of the group fires any more
    NONE = "none"  # firing, but no action is wired in


class AlertRecord(Record):
    """One accepted notification, as a line of ``alerts.jsonl``."""

    received: str
    group_key: str
    status: Status
    firing: list[str]
    action: Action
    notification: Notification
    """The payload as Alertmanager sent it (its own field names)."""

    @field_serializer("notification")
    def _as_sent(self, notification: Notification) -> dict[str, Any]:
        return notification.model_dump(mode="json", by_alias=True)


OnFiring = Callable[[Notification], object]


def update(groups: Mapping[str, frozenset[str]], group_key: str, firing: Iterable[str]) -> dict[str, frozenset[str]]:
    """The firing groups after a notification of ``group_key`` whose ``firing`` alerts fire now (pure)."""
    out, now = dict(groups), frozenset(firing)
    if now:
        out[group_key] = now
    else:
        out.pop(group_key, None)
    return out


def firing_groups(records: Iterable[AlertRecord]) -> dict[str, frozenset[str]]:
    """Alert groups firing after ``records`` (oldest first): group key -> its firing fingerprints (pure)."""
    groups: dict[str, frozenset[str]] = {}
    for record in records:
        groups = update(groups, record.group_key, record.firing)
    return groups


def decide(groups: Mapping[str, frozenset[str]], notification: Notification, wired: bool) -> Action:
    """The action for ``notification`` given the firing ``groups`` (pure): start only a group not firing yet."""
    if not notification.firing:
        return Action.RESOLVED
    if notification.group_key in groups:
        return Action.REPEAT
    return Action.STARTED if wired else Action.NONE


def read(path: Path) -> list[AlertRecord]:
    """The records of ``alerts.jsonl`` (none when it does not exist), oldest first."""
    if not path.exists():
        return []
    return [AlertRecord.model_validate(json.loads(line)) for line in path.read_text().splitlines() if line.strip()]


class Receiver:
    """Records notifications and starts ``on_firing`` once per alert group; safe across threads."""

    def __init__(self, wb: Workbench, on_firing: OnFiring | None = None) -> None:
        self.path = wb.layout.alerts_received
        self.on_firing = on_firing
        self._lock = threading.Lock()
        self._groups = firing_groups(read(self.path))

    def accept(self, notification: Notification, now: datetime | None = None) -> AlertRecord:
        """Record ``notification``; start ``on_firing`` on a worker thread if its group starts firing."""
        with self._lock:
            action = decide(self._groups, notification, self.on_firing is not None)
            record = AlertRecord(
                received=(now or datetime.now(UTC)).isoformat(timespec="milliseconds"),
                group_key=notification.group_key,
                status=notification.status,
                firing=notification.firing,
                action=action,
                notification=notification,
            )
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with FileLock(str(self.path) + ".lock", timeout=30):
                append_line(self.path, record)
            self._groups = update(self._groups, record.group_key, record.firing)
        if action is Action.STARTED and self.on_firing is not None:
            threading.Thread(target=self._run, args=(notification,), name="on-firing", daemon=True).start()
        return record

    def _run(self, notification: Notification) -> None:
        assert self.on_firing is not None
        try:
            self.on_firing(notification)
        except Exception:  # the action is wired-in code: its failure is logged, the receiver keeps serving
            log.exception("on_firing failed for alert group %s", notification.group_key)


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status, headers=headers)


def add_routes(app: FastAPI, receiver: Receiver, token: str) -> None:
    """``POST /alerts`` on ``app``, guarded by ``token``, handing accepted notifications to ``receiver``."""

    @app.post(PATH)
    async def alerts(request: Request) -> JSONResponse:
        if not auth.authorized(request.headers.get("authorization"), token):
            return _error(
                401, auth.UNAUTHORIZED.replace("admin endpoint", "webhook"), {"WWW-Authenticate": auth.SCHEME}
            )
        body = await request.body()
        try:
            payloads.check_content_type(request.headers.get("content-type", "").encode("latin-1"))
            if len(body) > payloads.MAX_BODY_BYTES:
                raise payloads.PayloadError(payloads.too_large_message(len(body)), 413)
            data: Any = payloads.parse_json(body)
            notification = Notification.model_validate(data)
        except payloads.PayloadError as exc:
            return _error(exc.status, str(exc))
        except ValidationError as exc:
            problems = " ".join(line.strip() for line in fielderrors.describe(exc, Notification))
            return _error(422, f"Not an Alertmanager webhook notification (version 4): {problems}")
        record = receiver.accept(notification)
        return JSONResponse({"accepted": True, "action": record.action.value, "group_key": record.group_key})
