"""MLflow's registry webhooks, so the audit log also records alias changes made outside the workbench.

The workbench writes an audit line for every alias it moves (:mod:`~.aliases`). Someone with a bare
``MlflowClient`` (or the MLflow UI) can move one without it. MLflow's tracking server (3.3 and later, sqlite or
another SQL store) can call a URL on every registry event; this module registers such a webhook for the events
``model_version_alias.created`` and ``model_version_alias.deleted`` (:func:`register`) and holds the receiver's
pure decisions. The receiver itself is a route of the monitor service
(:mod:`mlops_workbench.monitoring.registry_hooks`).

How MLflow delivers (``mlflow/webhooks/delivery.py``): a POST whose JSON body is ``{"entity", "action",
"timestamp", "data"}`` (``data`` for an alias created: ``name``, ``alias``, ``version``; deleted: ``name``,
``alias``), with the headers ``X-MLflow-Delivery-Id`` (a UUID), ``X-MLflow-Timestamp`` (Unix seconds) and, when the
webhook has a secret, ``X-MLflow-Signature: v1,<base64 HMAC-SHA256>`` over ``<delivery id>.<timestamp>.<body>``
(the Standard Webhooks scheme). It retries on 429 and 5xx, never on another 4xx. :func:`verify` checks the
signature in constant time and refuses a timestamp more than :data:`TOLERANCE` seconds away (a replayed old call);
the receiver also refuses a delivery id it has recorded already.

Ours or theirs: the workbench moves aliases while holding the model's registry lock and writes its audit line
before letting go, so a receiver that takes the same lock sees the line of any change the workbench made.
:func:`explains` says whether a recent line accounts for an event (a promotion sets its alias and ``previous`` and
may delete ``staging``; a rollback sets ``production`` and deletes ``previous``); an event no line accounts for is
recorded as :attr:`AuditOutcome.OUT_OF_BAND` (:func:`out_of_band`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, ValidationError

from mlops_workbench import settings, tracking
from mlops_workbench.alias import Alias
from mlops_workbench.errors import InputError
from mlops_workbench.records import problems
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.workbench import Workbench

NAME = "workbench-audit"
"""The webhook's name on the tracking server (one per server: :func:`register` updates it in place)."""
EVENTS = ("model_version_alias.created", "model_version_alias.deleted")
SIGNATURE_HEADER = "x-mlflow-signature"
TIMESTAMP_HEADER = "x-mlflow-timestamp"
DELIVERY_HEADER = "x-mlflow-delivery-id"
TOLERANCE = 300.0
"""Seconds a delivery's timestamp may differ from the receiver's clock (Standard Webhooks' five minutes)."""
WINDOW = timedelta(minutes=2)
"""How far apart a workbench audit line and the event it explains may be."""


class Refused(InputError):
    """A delivery the receiver will not record; ``status`` is the HTTP status to answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class AliasData(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    alias: str
    version: str | None = None
    """Absent for a deleted alias."""


class AliasEvent(BaseModel):
    """The body MLflow posts for an alias event."""

    model_config = ConfigDict(extra="ignore")  # MLflow may add fields (``workspace``); the ones used are checked
    entity: Literal["model_version_alias"]
    action: Literal["created", "deleted"]
    timestamp: datetime
    data: AliasData

    @property
    def is_mlflow_test(self) -> bool:
        """True for the example payload ``MlflowClient.test_webhook`` sends (no real model)."""
        return self.data.name == "example_model" and self.data.alias == "example_alias"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


def secret(wb: Workbench) -> str:
    """The state folder's webhook secret (made, mode 0600, the first time)."""
    return settings.secret(wb.layout.registry_hook_secret, new_secret)


def signature(key: str, delivery: str, timestamp: str, body: str) -> str:
    """MLflow's signature header value: ``v1,`` and the base64 HMAC-SHA256 of ``<delivery>.<timestamp>.<body>``."""
    digest = hmac.new(key.encode(), f"{delivery}.{timestamp}.{body}".encode(), hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify(key: str, headers: Mapping[str, str], body: bytes, now: float) -> str:
    """The delivery id of a correctly signed, fresh delivery; :class:`Refused` (400/401) naming what is wrong."""
    delivery, stamp, signed = (headers.get(h, "") for h in (DELIVERY_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not signed:
        raise Refused(
            401, "unsigned delivery: register the webhook with the state folder's secret (`workbench registry watch`)"
        )
    if not delivery or not stamp.isdigit():
        raise Refused(400, f"a delivery needs the headers {DELIVERY_HEADER} and {TIMESTAMP_HEADER} (Unix seconds)")
    if abs(now - int(stamp)) > TOLERANCE:
        raise Refused(
            401,
            f"stale delivery: its timestamp is {now - int(stamp):.0f} s from now (at most "
            f"{TOLERANCE:.0f} s): a replayed call, or a clock that is off",
        )
    try:
        text = body.decode()
    except UnicodeDecodeError:
        raise Refused(400, "the body is not UTF-8 text") from None
    wanted = signature(key, delivery, stamp, text).encode()
    if not any(hmac.compare_digest(wanted, given.encode()) for given in signed.split()):
        raise Refused(401, "bad signature: the body or its headers changed, or it was signed with another secret")
    return delivery


def event(body: bytes) -> AliasEvent | None:
    """The alias event in a verified body; None for another kind of event; Refused (422) for a malformed one."""
    try:
        raw: Any = json.loads(body)
    except ValueError:
        raise Refused(400, "the body is not JSON") from None
    if not isinstance(raw, dict) or raw.get("entity") != "model_version_alias":
        return None
    try:
        return AliasEvent.model_validate(raw)
    except ValidationError as err:
        raise Refused(422, f"not an alias event of MLflow: {problems(err, AliasEvent)}") from None


def _effects(entry: AuditEntry) -> set[tuple[str, str, str | None]]:
    """The alias events an audit line of the workbench caused: (action, alias, version or None)."""
    if entry.outcome is AuditOutcome.PROMOTED and entry.alias:
        done = {("created", entry.alias, entry.version)}
        if entry.alias == Alias.PRODUCTION:
            done |= {("created", Alias.PREVIOUS, entry.replaced), ("deleted", Alias.STAGING, None)}
        return done
    if entry.outcome is AuditOutcome.ROLLED_BACK:
        return {("created", Alias.PRODUCTION, entry.version), ("deleted", Alias.PREVIOUS, None)}
    return set()


def explains(entries: Sequence[AuditEntry], alias_event: AliasEvent) -> AuditEntry | None:
    """The workbench audit line, within :data:`WINDOW` of the event, that accounts for it; None when none does
    (the change was made outside the workbench)."""
    data = alias_event.data
    wanted = (alias_event.action, data.alias, data.version)
    at = alias_event.timestamp if alias_event.timestamp.tzinfo else alias_event.timestamp.replace(tzinfo=UTC)
    for entry in reversed(entries):
        if entry.model != data.name or abs(datetime.fromisoformat(entry.ts) - at) > WINDOW:
            continue
        if wanted in _effects(entry):
            return entry
    return None


def out_of_band(alias_event: AliasEvent, delivery: str) -> AuditEntry:
    """The audit line of an alias change the workbench did not make."""
    data = alias_event.data
    created = alias_event.action == "created"
    return AuditEntry(
        action=AuditAction.ALIAS_CREATED if created else AuditAction.ALIAS_DELETED,
        model=data.name,
        version=data.version,
        alias=data.alias,
        outcome=AuditOutcome.OUT_OF_BAND,
        at=alias_event.timestamp.isoformat(),
        reason=f"alias '{data.alias}' {'set' if created else 'deleted'} outside the workbench (MLflow webhook)",
        delivery=delivery,
    )


def register(wb: Workbench, url: str) -> str:
    """Create the webhook :data:`NAME` on the tracking server, delivering alias events to ``url`` signed with the
    state folder's secret, or update the one there (same id); returns its id. Idempotent."""
    client = tracking.client(wb)
    fields: dict[str, Any] = dict(url=url, events=list(EVENTS), secret=secret(wb), status="ACTIVE")
    description = "alias changes, for the workbench's audit log"
    for hook in client.list_webhooks(max_results=1000):
        if hook.name == NAME:
            client.update_webhook(hook.webhook_id, description=description, **fields)
            return str(hook.webhook_id)
    return str(client.create_webhook(NAME, description=description, **fields).webhook_id)
