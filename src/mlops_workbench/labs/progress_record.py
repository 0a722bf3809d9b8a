"""The progress record: where a learner stands in every lab and drill (built by :mod:`mlops_workbench.labs.progress`).

Printed by ``workbench progress --json``; its ``schema_version`` changes when a field changes meaning.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_VERSION = "1"

Seen = Literal["grade", "check()"]
"""Where the newest result of a check comes from."""
LabStatus = Literal["not started", "in progress", "passed"]
Source = Literal["learner", "reference", "none"]
"""Whose work the lab rows show."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Grade(Strict):
    """The newest grading of a lab that counts."""

    score: float
    max_score: float
    passed: bool
    pass_mark: float
    graded_at: str
    report: str = Field(description="the report file it was read from")
    reference: bool = Field(description="a reference solution's run (make demo), not the learner's work")


class FailingCheck(Strict):
    id: str
    status: str
    message: str
    seen: Seen = Field(description="where the newest result of this check comes from")


class TimeSpent(Strict):
    minutes: float | None = Field(description="None when there is not enough activity to measure")
    estimate_minutes: int
    method: Literal["activity", "reference-run", "none"]
    detail: str = Field(description="how the time was measured, in words")


class LabProgress(Strict):
    lab: str
    title: str
    level: str
    points: float
    pass_mark: float
    status: LabStatus
    grade: Grade | None
    failing: list[FailingCheck]
    time: TimeSpent
    next_step: str


class DrillProgress(Strict):
    """A drill's best attempt (passed first, then more checks passed, less time, fewer hints)."""

    drill: str
    attempts: int
    passed: bool
    checks_passed: int
    checks_total: int
    seconds: float
    hints_used: int
    last_checked_at: str


class Progress(Strict):
    schema_version: str = SCHEMA_VERSION
    generated_at: str
    home: str
    source: Source = Field(description="whose work the lab rows show")
    note: str
    labs: list[LabProgress]
    drills: list[DrillProgress]
    next_lab: str | None = Field(description="the first lab not passed yet; None when every lab passed")
    next_step: str
    problems: list[str] = Field(default_factory=list, description="files that could not be read, and the fix")
