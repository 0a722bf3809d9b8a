"""The data of a drill: its spec, the learner's records (post-mortem, answers), check outcomes and reports."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Category = Literal["model", "data", "config"]
REPORT_VERSION = 1


class DrillSpec(BaseModel):
    """What a drill is: shown by ``workbench drill list|start|hint`` and after the check."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    title: str
    category: Literal["model", "data", "config", "trace"] = Field(description="root-cause category of the broken state")
    incident: bool = Field(description="an incident drill: the learner also files a post-mortem")
    brief: str = Field(description="what the learner is told at start: symptoms, not causes")
    hints: list[str] = Field(min_length=1)
    answer: str = Field(description="the model answer, shown after the check")
    minutes: int = Field(gt=0, description="time budget")
    needs: list[str] = Field(default_factory=list, description="tools the drill needs (e.g. prometheus)")


class PostMortem(BaseModel):
    """The learner's post-mortem of an incident drill, checked against the event log and the registry."""

    model_config = ConfigDict(extra="forbid")
    time_to_detect_s: float = Field(ge=0, description="seconds from the onset to the first action on the incident")
    time_to_restore_s: float = Field(ge=0, description="seconds from the onset until users were safe again")
    blast_radius: int = Field(ge=0, description="requests the faulty version answered during the incident")
    root_cause: Category


class PostMortemTruth(BaseModel):
    """What the logs say happened (computed by the drill, never typed by the learner)."""

    model_config = ConfigDict(extra="forbid")
    time_to_detect_s: float | None
    time_to_restore_s: float | None
    blast_radius: int | None
    root_cause: Category
    evidence: str = Field(description="where the values come from, for the debrief")


class CheckOutcome(BaseModel):
    """One graded check of a drill."""

    model_config = ConfigDict(extra="forbid")
    id: str
    passed: bool
    message: str = ""
    guard: bool = Field(False, description="a guard: fails on destructive 'fixes' (everything stopped, data deleted)")


class DrillSession(BaseModel):
    """The running drill (``<home>/drills/session.json``)."""

    model_config = ConfigDict(extra="forbid")
    drill: str
    started: float
    setup_seconds: float
    hints_used: int = 0


class DrillReport(BaseModel):
    """The JSON report ``workbench drill check`` writes."""

    model_config = ConfigDict(extra="forbid")
    version: int = REPORT_VERSION
    drill: str
    passed: bool
    seconds: float
    hints_used: int
    failed: list[CheckOutcome]
    checks: list[CheckOutcome]
    checked_at: str
