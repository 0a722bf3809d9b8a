"""Approval records: who approved a model version into an alias, when, why, and the gate's verdict.

A building block of promotion (``aliases.promote`` and the lab 03 learner's own
``promote`` both use it): the record is stored on the model version as the tags
``approval.<alias>.approver``, ``.at``, ``.reason`` and ``.gate`` (the gate result
as JSON), where the MLflow UI shows it next to the version. It moves no alias and
decides nothing: whoever calls it has already checked the gate and the approver.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mlops_workbench.alias import Alias
from mlops_workbench.registry import audit

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlops_workbench.registry.gate import GateResult

FIELDS = ("approver", "at", "reason", "gate")
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
