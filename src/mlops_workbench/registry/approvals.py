"""Approval records: who approved a model version into an alias, when, why, and the gate's verdict.

A building block of promotion (``aliases.promote`` and the lab 03 learner's own
``promote`` both use it): the record is stored on the model version as the tags
``approval.<alias>.approver``, ``.at``, ``.reason`` and ``.gate`` (the gate result
as JSON), where the MLflow UI shows it next to the version. It moves no alias and
decides nothing: whoever calls it has already checked the gate and the approver.

Second-person approvals (``registry.second_approval`` in params.yaml): a reviewer's approval is recorded *before*
the promotion (:func:`approve`, ``workbench registry approve VERSION --as alice``) as the tags
``review.<alias>.approver``, ``.at`` and ``.reason``; the promotion, asked for by someone else
(``workbench registry promote VERSION --as bob``), checks it with :func:`second_person`. Open-source MLflow has no
approval workflow, so this is the workbench's own. Who acts is :func:`identity`: an explicit name (``--as``), else
``git config user.email``, else the login name.
"""

from __future__ import annotations

import getpass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from mlops_workbench import tools
from mlops_workbench.alias import Alias
from mlops_workbench.errors import RegistryError
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion

    from mlops_workbench.registry.gate import GateResult

FIELDS = ("approver", "at", "reason", "gate")
REGISTERED_BY = "registered_by"
"""Version tag naming who registered it (set by ``registry.register``; set it yourself with
``mlflow.register_model(..., tags={"registered_by": ...})``)."""
MAX_TAG = 5000  # MLflow's limit on a tag value


def tag(alias: str, field: str) -> str:
    """The version tag holding ``field`` of the approval into ``alias`` (``approval.production.approver``)."""
    return f"approval.{alias}.{field}"


def record(
    client: MlflowClient,
    name: str,
    version: str | int,
    *,
    approver: str,
    reason: str,
    gate: GateResult | None = None,
    alias: str = Alias.PRODUCTION,
) -> dict[str, str]:
    """Tag version ``version`` of ``name`` with its approval into ``alias``; returns the record written.

    ``client`` is an ``MlflowClient``; ``gate`` the ``GateResult`` the approval relied on (None: no gate).
    """
    values = {
        "approver": str(approver),
        "at": audit.now(),
        "reason": str(reason),
        "gate": gate.model_dump_json() if gate is not None else "",
    }
    for field, value in values.items():
        client.set_model_version_tag(name, str(version), tag(alias, field), value[:MAX_TAG])
    return values


def read(client: MlflowClient, name: str, version: str | int, alias: str = Alias.PRODUCTION) -> dict[str, str] | None:
    """The approval record of ``version`` into ``alias`` (None when it was never approved there)."""
    tags = client.get_model_version(name, str(version)).tags
    found = {field: tags[tag(alias, field)] for field in FIELDS if tag(alias, field) in tags}
    return found or None


# --- second-person approvals ---------------------------------------------------------------------------------------
REVIEW_FIELDS = ("approver", "at", "reason")


class Review(BaseModel):
    """A reviewer's approval of a version for an alias, recorded before the promotion asks for it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    approver: str
    at: str
    reason: str


def identity(explicit: str | None = None) -> str:
    """Who acts: ``explicit`` (the CLI's ``--as NAME``), else ``git config user.email``, else the login name."""
    if explicit is not None and explicit.strip():
        return explicit.strip()
    code, email = tools.probe(["git", "config", "user.email"], timeout=10)
    if code == 0 and email.strip():
        return email.strip()
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "unknown"


def review_tag(alias: str, field: str) -> str:
    """The version tag holding ``field`` of the review for ``alias`` (``review.production.approver``)."""
    return f"review.{alias}.{field}"


def read_review(client: MlflowClient, name: str, version: str | int, alias: str = Alias.PRODUCTION) -> Review | None:
    """The recorded review of ``version`` for ``alias`` (None when nobody approved it yet)."""
    tags = client.get_model_version(name, str(version)).tags
    if not all(review_tag(alias, field) in tags for field in REVIEW_FIELDS):
        return None
    return Review(**{field: tags[review_tag(alias, field)] for field in REVIEW_FIELDS})


def approve(
    wb: Workbench, client: MlflowClient, mv: ModelVersion, *, approver: str, reason: str, alias: str = Alias.PRODUCTION
) -> Review:
    """Record ``approver``'s approval of model version ``mv`` for ``alias``, audited; the person who registered the
    version may not approve it (refused with :class:`RegistryError`, audited too, nothing recorded)."""
    name, version = mv.name, str(mv.version)
    registrant = mv.tags.get(REGISTERED_BY)
    fields: dict[str, Any] = dict(action=AuditAction.APPROVE, model=name, version=version, alias=alias)
    fields.update(approver=approver, registered_by=registrant, reason=reason)
    if not reason.strip():
        raise RegistryError("An approval needs a reason: pass --reason 'what you checked'. Nothing was recorded.")
    if registrant and registrant == approver:
        why = (
            f"self-approval: {approver} registered version {version} and may not approve it; the approval must come "
            f"from someone else (`workbench registry approve {version} --as NAME --reason ...`)"
        )
        audit.append(wb, AuditEntry(**fields, outcome=AuditOutcome.REFUSED, error=why))
        raise RegistryError(f"Approval refused, nothing recorded: {why}.")
    review = Review(approver=approver, at=audit.now(), reason=reason)
    for field in REVIEW_FIELDS:
        client.set_model_version_tag(name, version, review_tag(alias, field), getattr(review, field)[:MAX_TAG])
    audit.append(wb, AuditEntry(**fields, outcome=AuditOutcome.APPROVED, at=review.at))
    return review


def second_person(
    requester: str,
    review: Review | None,
    version: str,
    max_age_days: float | None = None,
    now: datetime | None = None,
) -> tuple[str, str | None]:
    """(the approver to record, empty when there is none; why the promotion must be refused, None when it may go
    on) when ``requester`` asks to promote ``version`` at ``now`` and ``review`` is its recorded approval.

    With ``max_age_days`` (params.yaml ``registry.approval_max_age_days``) an approval recorded longer ago than
    that no longer counts: what was checked then may not hold now. ``now`` defaults to the current UTC time."""
    ask = f"ask a reviewer to run `workbench registry approve {version} --as NAME --reason ...`"
    if review is None:
        return "", (
            f"version {version} has no recorded approval: promotion to production needs one by someone other "
            f"than {requester}, who asks for it; {ask}"
        )
    if review.approver == requester:
        return review.approver, (
            f"self-approval: {requester} asks for the promotion of version {version} and the only approval is "
            f"{requester}'s own; it must come from someone else: {ask}"
        )
    if max_age_days is not None:
        age = _age_days(review.at, now or datetime.now(UTC))
        if age is None:
            return review.approver, (
                f"the approval of version {version} by {review.approver} has a date that cannot be read "
                f"({review.at!r}), so its age against registry.approval_max_age_days is unknown: {ask} again"
            )
        if age > max_age_days:
            return review.approver, (
                f"the approval of version {version} by {review.approver} was recorded {age:.1f} days ago "
                f"({review.at}), more than registry.approval_max_age_days ({max_age_days:g}) allows: {ask} again"
            )
    return review.approver, None


def _age_days(at: str, now: datetime) -> float | None:
    """Days from ``at`` (ISO 8601; UTC when it names no zone) to ``now``; None when ``at`` is not a date."""
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        return None
    return (now - (when if when.tzinfo else when.replace(tzinfo=UTC))).total_seconds() / 86400
