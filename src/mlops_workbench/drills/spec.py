"""The data of a drill: its spec, the learner's records (post-mortem, answers), check outcomes and reports."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.postmortem_spec import PostMortem, PostMortemGrade

__all__ = ["CheckOutcome", "DrillReport", "DrillSession", "DrillSpec", "PostMortem", "Score", "ScoreLine", "ScorePart"]

REPORT_VERSION = 2


class DrillSpec(BaseModel):
    """What a drill is: shown by ``workbench drill list|start|hint`` and after the check.

    The learner sees the neutral title (:meth:`title`), the brief and, on request, the hints; the root cause, the
    fixes and the answer stay hidden until the drill is passed.
    """

    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z0-9-]+$")
    number: int = Field(ge=1, description="the drill's neutral handle: its model, services and folder are incident-N")
    symptom: str = Field(description="what a user or a dashboard sees, for the neutral title (never the cause)")
    root_cause: RootCause | None = Field(
        description="why the system broke (hidden until the drill is passed); None "
        "for a question drill, where nothing is broken"
    )
    fixes: list[Change] = Field(default_factory=list, description="what the reference repair changes (hidden too)")
    symptoms: list[RootCause] = Field(
        default_factory=list,
        description="root causes that only name what was seen "
        "or only stop it: a post-mortem giving one earns part of the marks",
    )
    incident: bool = Field(description="an incident drill: the learner also files a post-mortem")
    brief: str = Field(
        description="what the learner is told at start: what users and dashboards see, never the "
        "cause or the fix; {model} and {folder} name the drill's model and folder"
    )
    hints: list[str] = Field(min_length=1, description="from a nudge to the fix; each costs more than the one before")
    answer: str = Field(description="the model answer, shown after the check")
    minutes: int = Field(gt=0, description="par: the time a prepared engineer needs; time beyond it costs points")
    needs: list[str] = Field(default_factory=list, description="tools the drill needs (e.g. prometheus)")

    @property
    def handle(self) -> str:
        """The neutral name of the drill's model, services and folder (``incident-3``)."""
        return f"incident-{self.number}"

    def title(self, since: float | None = None) -> str:
        """``incident 3: elevated errors after 10:02``: the handle, the symptom and, once started, the time."""
        when = f" after {datetime.fromtimestamp(since).strftime('%H:%M')}" if since is not None else ""
        return f"incident {self.number}: {self.symptom}{when}"


class ScorePart(StrEnum):
    """The parts of a drill's score, in the order the report shows them."""

    STATE = "state"
    POSTMORTEM = "postmortem"
    TIME = "time"
    HINTS = "hints"


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
    services_before: list[str] = Field(
        default_factory=list, description="services that ran before the drill: it never stops them"
    )
    finished: float | None = Field(None, description="when a check passed: the clock stopped, the services with it")
    blind: bool = Field(False, description="picked at random: the drill's name stays hidden until it is passed")
    seed: int | None = Field(None, description="what the setup drew its variant from (`--seed` replays it)")
    variant: str | None = None
    interview: str | None = Field(None, description="the interview this drill belongs to, if any")


class ScoreLine(BaseModel):
    """One part of a drill's score: state checks, post-mortem, time or hints."""

    model_config = ConfigDict(extra="forbid")
    part: ScorePart
    points: float = Field(description="earned (a penalty is negative)")
    max_points: float = Field(description="the most this part can earn (0 for a penalty)")
    detail: str = Field(description="how the points were counted, in words")


class Score(BaseModel):
    """A drill's score out of 100: the state it was left in, its post-mortem, the time against par, the hints."""

    model_config = ConfigDict(extra="forbid")
    total: float
    max_points: float = 100.0
    lines: list[ScoreLine]

    def line(self, part: ScorePart) -> ScoreLine:
        return next(line for line in self.lines if line.part == part)


class DrillReport(BaseModel):
    """The JSON report ``workbench drill check`` writes."""

    model_config = ConfigDict(extra="forbid")
    version: int = REPORT_VERSION
    drill: str
    title: str | None = None
    seed: int | None = Field(None, description="`workbench drill start NAME --seed N` breaks the same thing again")
    variant: str | None = Field(None, description="what the seed broke (shown once the report is written)")
    passed: bool
    seconds: float
    par_seconds: float | None = None
    hints_used: int
    failed: list[CheckOutcome]
    checks: list[CheckOutcome]
    checked_at: str
    score: Score | None = Field(None, description="absent in reports written before scores existed")
    postmortem: PostMortemGrade | None = Field(None, description="each answer of the post-mortem against the run")
