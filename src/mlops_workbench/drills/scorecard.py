"""The scorecard of an interview: one row per drill (neutral title, seed, score part by part, time against par),
the totals, and once it is over what each drill was. Written as JSON and as a self-contained HTML page."""

from __future__ import annotations

import html
from datetime import UTC, datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.drills.spec import DrillReport

SCORECARD_VERSION = 1


class Outcome(StrEnum):
    PASSED = "passed"
    GIVEN_UP = "given-up"
    NOT_REACHED = "not-reached"


class Row(BaseModel):
    """One drill of the interview."""

    model_config = ConfigDict(extra="forbid")
    position: int = Field(ge=1)
    title: str
    drill: str = Field(description="the drill's name, revealed once the interview is over")
    seed: int
    par_seconds: float
    outcome: Outcome
    report: DrillReport | None = None

    @property
    def points(self) -> float:
        return self.report.score.total if self.report and self.report.score else 0.0

    @property
    def seconds(self) -> float:
        return self.report.seconds if self.report else 0.0


class Scorecard(BaseModel):
    """What `workbench drill interview` leaves for the learner to keep or show."""

    model_config = ConfigDict(extra="forbid")
    version: int = SCORECARD_VERSION
    interview: str
    seed: int
    started_at: str
    finished_at: str
    rows: list[Row]
    seconds: float = Field(description="the interview's one clock: the time spent on its drills")
    par_seconds: float
    score: float = Field(description="the mean of the drills' scores out of 100 (a drill not reached scores 0)")
    passed: int


def build(interview: str, seed: int, started: float, rows: list[Row]) -> Scorecard:
    """The scorecard of ``rows``; pure but for the finishing time."""

    def stamp(t: float) -> str:
        return datetime.fromtimestamp(t, tz=UTC).isoformat(timespec="seconds")

    return Scorecard(
        interview=interview,
        seed=seed,
        started_at=stamp(started),
        finished_at=stamp(datetime.now(tz=UTC).timestamp()),
        rows=rows,
        seconds=round(sum(r.seconds for r in rows), 1),
        par_seconds=sum(r.par_seconds for r in rows),
        score=round(sum(r.points for r in rows) / len(rows), 1) if rows else 0.0,
        passed=sum(r.outcome == Outcome.PASSED for r in rows),
    )


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


def _parts(row: Row) -> str:
    if row.report is None or row.report.score is None:
        return "-"
    return "; ".join(
        f"{line.part.value} {line.points:+.1f}"
        if line.max_points == 0
        else f"{line.part.value} {line.points:.1f}/{line.max_points:g}"
        for line in row.report.score.lines
    )


def to_html(card: Scorecard) -> str:
    """A page that needs nothing but a browser: the totals, then one table row per drill."""
    e = html.escape
    rows = "".join(
        f"<tr><td>{row.position}</td><td>{e(row.title)}</td><td>{e(row.drill)}</td><td>{e(row.outcome.value)}</td>"
        f"<td>{row.points:.1f}</td><td>{_clock(row.seconds)} / {_clock(row.par_seconds)}</td>"
        f"<td>{row.report.hints_used if row.report else 0}</td><td>{e(_parts(row))}</td><td>{row.seed}</td></tr>"
        for row in card.rows
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Interview scorecard {e(card.interview)}</title>
<style>body{{font-family:sans-serif;margin:2em}} table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:.3em .6em;text-align:left}} .total{{font-size:1.4em}}</style></head>
<body><h1>Interview scorecard</h1>
<p class="total">Score <b>{card.score:.1f}</b>/100 &middot; {card.passed}/{len(card.rows)} drills passed &middot;
time {_clock(card.seconds)} against a par of {_clock(card.par_seconds)}</p>
<p>Interview {e(card.interview)}, seed {card.seed} (`workbench drill interview --count {len(card.rows)} --seed
{card.seed}` sets the same drills again), from {e(card.started_at)} to {e(card.finished_at)}.</p>
<table><thead><tr><th>#</th><th>incident</th><th>drill</th><th>outcome</th><th>score</th><th>time / par</th>
<th>hints</th><th>parts</th><th>seed</th></tr></thead><tbody>{rows}</tbody></table>
</body></html>
"""
