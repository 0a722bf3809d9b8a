"""The post-mortem of an incident drill: the learner's structured answers, what the drill's own run says (its
truth, from the audit log, the rollout event log and the servers' counters) and the grade of each answer."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from mlops_workbench.drills.causes import Change, RootCause


class PostMortem(BaseModel):
    """What the learner files (``postmortem.yaml``, or ``drills.record(NAME, ...)``)."""

    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1, description="the faulty version: the one promoted, or the canary's candidate")
    began_at: AwareDatetime = Field(description="when it began, ISO 8601 with a time zone (2026-11-04T10:02:13Z)")
    restored_at: AwareDatetime = Field(description="when users were safe again, ISO 8601 with a time zone")
    requests_affected: int = Field(ge=0, description="requests the faulty version answered in between")
    share_affected: float = Field(
        ge=0, le=1, description="the share (0 to 1) of all requests in that time that the faulty version answered"
    )
    root_cause: RootCause = Field(description="why it happened, from the fixed list")
    changes: list[Change] = Field(min_length=1, description="what you changed to repair it, from the fixed list")

    @field_validator("version", mode="before")
    @classmethod
    def _version(cls, value: object) -> object:
        """``3``, ``"3"`` and ``"v3"`` all name version 3."""
        if isinstance(value, bool):
            raise ValueError("a version is a number like 3, not a boolean")
        return str(value).strip().removeprefix("v") if isinstance(value, (int, str)) else value

    @field_validator("changes")
    @classmethod
    def _distinct(cls, value: list[Change]) -> list[Change]:
        if len(set(value)) != len(value):
            raise ValueError("list each change once")
        return value


class PostMortemTruth(BaseModel):
    """What the run says happened (computed by the drill from its logs, never typed by the learner)."""

    model_config = ConfigDict(extra="forbid")
    version: str
    began_at: datetime
    restored_at: datetime | None = Field(description="None while users are still exposed")
    requests_affected: int | None
    share_affected: float | None
    root_cause: RootCause
    symptoms: list[RootCause] = Field(default_factory=list, description="answers that only name what was seen")
    changes: list[Change] = Field(description="the changes the logs and the state show since the setup")
    required: list[Change] = Field(description="the changes the repair needs (the drill's fixes)")
    evidence: str = Field(description="where the values come from, for the debrief")


class FieldGrade(BaseModel):
    """One answer of the post-mortem against the run."""

    model_config = ConfigDict(extra="forbid")
    field: str
    points: float
    max_points: float
    message: str = Field("", description="why it lost points, naming the evidence")


class PostMortemGrade(BaseModel):
    model_config = ConfigDict(extra="forbid")
    fields: list[FieldGrade]
    error: str = Field("", description="the record could not be read (missing, malformed): no field was graded")

    @property
    def share(self) -> float:
        total = sum(f.max_points for f in self.fields)
        return sum(f.points for f in self.fields) / total if total and not self.error else 0.0

    @property
    def problems(self) -> list[str]:
        return [self.error] if self.error else [f"{f.field}: {f.message}" for f in self.fields if f.message]
