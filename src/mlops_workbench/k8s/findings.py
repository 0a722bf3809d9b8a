"""What offline validation reports about a manifest: one :class:`Finding` per problem, naming the resource, the
field path and the fix. Shared by the schema checks (:mod:`~mlops_workbench.k8s.validate`) and the
cross-reference checks (:mod:`~mlops_workbench.k8s.xref`)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict


class Finding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    resource: str
    path: str
    message: str
    fix: str
    severity: Literal["error", "warning"] = "error"
    source: str = ""

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.resource} {self.path or '(whole object)'}: {self.message} -> {self.fix}"


def name_of(obj: dict[str, Any]) -> str:
    return f"{obj.get('kind', '?')}/{(obj.get('metadata') or {}).get('name', '?')}"
