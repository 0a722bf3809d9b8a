"""The grade report: one versioned JSON document per submission (schema shipped in the package)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

from mlops_workbench import __version__
from mlops_workbench.labs.run import CellRun

SCHEMA_VERSION = "1.0"
SCHEMA_PATH = Path(__file__).with_name("report.schema.json")

Status = Literal["passed", "failed", "error", "timeout", "blocked"]


class CheckResult(BaseModel):
    id: str
    description: str
    status: Status
    score: float
    max_score: float
    visibility: Literal["public", "hidden"]
    message: str = ""
    seconds: float = 0.0


class IntegrityIssue(BaseModel):
    cell: str
    problem: Literal["deleted", "duplicated", "edited-read-only", "id-added", "tampered"]
    message: str


class Timings(BaseModel):
    execution_seconds: float = 0.0
    checks_seconds: float = 0.0
    total_seconds: float = 0.0


class Report(BaseModel):
    """The result of grading one submission of one lab."""

    schema_version: str = SCHEMA_VERSION
    lab: str
    title: str = ""
    submission: str
    submission_sha256: str | None = None
    released_sha256: str | None = None
    score: float
    max_score: float
    pass_mark: float = Field(description="fraction of max_score needed to pass")
    passed: bool
    error: str | None = Field(None, description="why the submission could not be graded at all")
    seed: int | None = Field(
        None, description="the seed of the hidden scenarios; `workbench grade --seed N` replays them"
    )
    execution_status: str = "not-run"
    execution_message: str = ""
    checks: list[CheckResult]
    cells: list[CellRun] = []
    integrity: list[IntegrityIssue] = []
    timings: Timings = Field(default_factory=Timings)
    graded_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    grader_version: str = __version__

    @property
    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.status] = out.get(c.status, 0) + 1
        return out


def schema() -> dict[str, Any]:
    """The JSON Schema of :class:`Report`."""
    return Report.model_json_schema()


def write_schema(path: Path = SCHEMA_PATH) -> None:
    path.write_text(json.dumps(schema(), indent=2, sort_keys=True) + "\n")


def validate_report(document: dict[str, Any]) -> None:
    """Validate a report document against the shipped schema (raises jsonschema.ValidationError)."""
    import jsonschema

    jsonschema.validate(document, json.loads(SCHEMA_PATH.read_text()))
