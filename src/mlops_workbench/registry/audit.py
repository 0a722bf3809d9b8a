"""The registry audit log (typed records in append-only JSONL) and the file locks that serialise changes to shared state.

Every registry action (promotion, refusal, rollback, approval, a model server refusing an artifact, a blue-green
switch) is one :class:`AuditEntry`, written as one JSON line of ``<home>/audit/registry.jsonl``. So is each step of a
retrain and re-release (lab 07): the retrain's start, data validation, pipeline run, registration, the gate on a
fresh window, the shadow and the canary, each line carrying the :class:`Lineage` that ties the chain together
(the cause, the data commit, the run, the rollout).
This module is the only one that knows the log's keys: writers hand it an entry (or a
plain dict, as lab 03's learner code does through ``record=audit.recorder(lab.wb)``), readers get
``AuditEntry`` objects back. Appends take a file lock, so lines written by concurrent
processes never interleave; nothing ever rewrites the file.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from pathlib import Path
from typing import Any, Literal

from filelock import FileLock, Timeout
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_workbench.alias import Alias
from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.records import Record, append_line, problems
from mlops_workbench.registry.gate import GateResult
from mlops_workbench.registry.verdicts import ShadowVerdict
from mlops_workbench.workbench import Workbench

LOCK_TIMEOUT = 60.0


class AuditAction(StrEnum):
    """What was attempted: a promotion, a rollback, a model server loading (``serve``) or reloading a version, a
    GitOps sync of the deployment repository (``gitops_sync``: its HEAD; ``gitops_rollback``: an older commit),
    a step of a retrain and re-release (``retrain`` itself, the ``gate`` on a fresh window, the ``shadow``, the
    ``canary``), a reviewer's approval ahead of a promotion (``approve``), a blue-green traffic ``switch``, or an
    alias set or deleted outside the workbench (``alias_created``, ``alias_deleted``: MLflow's registry webhooks)."""

    PROMOTE = "promote"
    ROLLBACK = "rollback"
    SERVE = "serve"
    RELOAD = "reload"
    GITOPS_SYNC = "gitops_sync"
    GITOPS_ROLLBACK = "gitops_rollback"
    RETRAIN = "retrain"
    GATE = "gate"
    SHADOW = "shadow"
    CANARY = "canary"
    APPROVE = "approve"
    SWITCH = "switch"
    ALIAS_CREATED = "alias_created"
    """MLflow said (registry webhook) that an alias was set, and no workbench action explains it."""
    ALIAS_DELETED = "alias_deleted"
    """MLflow said (registry webhook) that an alias was deleted, and no workbench action explains it."""


class AuditOutcome(StrEnum):
    """How the attempt (or the step) ended."""

    PROMOTED = "promoted"
    REFUSED = "refused"
    ROLLED_BACK = "rolled_back"
    SYNCED = "synced"
    FAILED = "failed"
    STARTED = "started"
    VALIDATED = "validated"
    REPRODUCED = "reproduced"
    REGISTERED = "registered"
    REJECTED = "rejected"
    PASSED = "passed"
    APPROVED = "approved"
    SWITCHED = "switched"
    OUT_OF_BAND = "out_of_band"
    """A registry change made outside the workbench (a bare MlflowClient, the MLflow UI), seen through a webhook."""


class Cause(BaseModel):
    """Why a retrain ran: a new data commit, an alert group (Alertmanager's ``groupKey`` and the fingerprints of
    its alerts), or a person."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["data-commit", "alert", "manual"]
    group_key: str | None = None
    fingerprints: list[str] = Field(default_factory=list)
    alertname: str | None = None

    def describe(self) -> str:
        if self.kind != "alert":
            return self.kind
        name = f" {self.alertname}" if self.alertname else ""
        prints = f" (fingerprints {', '.join(self.fingerprints)})" if self.fingerprints else ""
        return f"alert{name} group {self.group_key}{prints}"


class Lineage(BaseModel):
    """What ties the lines of one retrain and re-release together: the attempt, its cause, the data commit it
    trained on (git sha, the data's DVC md5), the MLflow run, and the canary rollout once there is one."""

    model_config = ConfigDict(extra="forbid")
    attempt: str
    cause: Cause
    workspace: str
    git_commit: str
    data_md5: str | None = None
    run_id: str | None = None
    rollout: str | None = None


class AuditEntry(Record):
    """One line of the audit log.

    ``version`` is the version acted on (for a rollback, the one restored; for a blue-green switch, the one the
    environment named in ``serving`` serves) and ``replaced`` the one production held before (the one live before
    the switch); ``requester`` asked for a promotion that ``approver`` approved (second-person approvals); ``at``
    is the approval's timestamp, ``ts`` when the line was written. A GitOps sync names the deployment
    repository's commit it applied (``revision``) and the changes it made live (``changes``); ``version`` is then
    the stable version that commit asks for.
    Version numbers given as integers are stored as text, the way MLflow names versions.

    For notebooks that treat audit lines as JSON objects (``pd.DataFrame(audit.read())``,
    ``entry.get("model")``), an entry also reads like a read-only mapping of the line it was written as.
    Package code uses the attributes.
    """

    model_config = ConfigDict(coerce_numbers_to_str=True)
    ALWAYS = frozenset({"v", "ts"})

    ts: str = Field(default_factory=lambda: now())
    action: AuditAction
    model: str
    version: str | None = None
    alias: str | None = None
    outcome: AuditOutcome
    approver: str | None = None
    requester: str | None = None
    registered_by: str | None = None
    reason: str | None = None
    replaced: str | None = None
    at: str | None = None
    error: str | None = None
    gate: GateResult | None = None
    uri: str | None = None
    serving: str | None = None
    files: list[dict[str, Any]] | None = None
    revision: str | None = None
    changes: list[str] | None = None
    lineage: Lineage | None = None
    shadow: ShadowVerdict | None = None
    delivery: str | None = None
    """The id of the MLflow webhook delivery that reported an out-of-band change (so a redelivery adds nothing)."""

    @property
    def changed_production(self) -> bool:
        """True for a line that moved the production alias (a promotion into it, or a rollback)."""
        return self.alias == Alias.PRODUCTION and self.outcome in (AuditOutcome.PROMOTED, AuditOutcome.ROLLED_BACK)

    # --- the read-only JSON view for notebooks -----------------------------------------------------------
    def keys(self) -> list[str]:
        return list(self.line())

    def __getitem__(self, key: str) -> Any:
        return self.line()[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self.line().get(key, default)


Mapping.register(AuditEntry)


def now() -> str:
    """The current UTC time, ISO 8601 with milliseconds (``2026-01-31T12:00:00.123+00:00``)."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def log_path(wb: Workbench, log: str = "registry") -> Path:
    """``<home>/audit/<log>.jsonl``."""
    return wb.layout.audit_log(log)


def lock(wb: Workbench, name: str, timeout: float = LOCK_TIMEOUT) -> FileLock:
    """An inter-process (and inter-thread) lock file ``<home>/locks/<name>.lock``; use it as a context manager."""
    folder = wb.layout.locks
    folder.mkdir(parents=True, exist_ok=True)
    return FileLock(str(folder / f"{name}.lock"), timeout=timeout, thread_local=False, is_singleton=False)


def entry(fields: Mapping[str, Any] | AuditEntry) -> AuditEntry:
    """``fields`` as an :class:`AuditEntry`, stamped with ``ts`` (now) when it has none; InputError if it does not fit."""
    if isinstance(fields, AuditEntry):
        return fields
    try:
        return AuditEntry.model_validate(dict(fields))
    except ValidationError as err:
        raise InputError(
            f"This audit entry does not fit the audit log: {problems(err, AuditEntry)}. "
            "Correct those fields where the entry is built."
        ) from None


def recorder(wb: Workbench, log: str = "registry") -> Callable[[Mapping[str, Any] | AuditEntry], AuditEntry]:
    """``record(fields)``: :func:`append` to the audit log ``log`` of ``wb``'s state folder, as one function (what
    lab 03's procedures take as ``record``)."""
    return partial(append, wb, log=log)


def append(wb: Workbench, fields: Mapping[str, Any] | AuditEntry, log: str = "registry") -> AuditEntry:
    """Append one entry (a dict is checked against :class:`AuditEntry` first) as one line; returns what was written."""
    record = entry(fields)
    path = log_path(wb, log)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with FileLock(str(path) + ".lock", timeout=LOCK_TIMEOUT):
            append_line(path, record)
    except Timeout:
        raise ServiceError(
            f"Could not lock {path} within {LOCK_TIMEOUT:.0f}s: another process holds it. "
            f"If none runs, delete {path}.lock and retry."
        ) from None
    return record


def read(wb: Workbench, log: str = "registry") -> list[AuditEntry]:
    """Every entry of the log, oldest first (an empty list when nothing was logged yet)."""
    return list(iter_entries(log_path(wb, log)))


def iter_entries(path: Path) -> Iterator[AuditEntry]:
    """The entries of the audit log at ``path``; InputError naming the line for one that is not a valid entry."""
    if not path.exists():
        return
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if line.strip():
                yield _parse(line, path, number)


def _parse(line: str, path: Path, number: int) -> AuditEntry:
    fix = "Restore it from a backup; audit logs are append-only."
    try:
        data = json.loads(line)
    except json.JSONDecodeError:
        raise InputError(f"{path} line {number} is not JSON: the audit log was edited by hand. {fix}") from None
    if not isinstance(data, dict):
        raise InputError(f"{path} line {number} is not a JSON object: the audit log was edited by hand. {fix}")
    try:
        return AuditEntry.model_validate(data)
    except ValidationError as err:
        raise InputError(
            f"{path} line {number} is not an audit entry ({problems(err, AuditEntry)}): the audit log "
            f"was edited by hand. {fix}"
        ) from None


def production_moves(entries: list[AuditEntry], model: str) -> list[AuditEntry]:
    """The entries of ``model`` that moved its production alias, oldest first."""
    return [e for e in entries if e.model == model and e.changed_production]
