"""``workbench drill interview``: N random drills (among those this machine can run) in a row, names hidden, each
with its own seeded variant, one clock over all of them, and a scorecard (JSON and HTML) at the end.

The interview lives in ``<home>/drills/interview.json``. A passing ``drill check`` moves on to the next drill by
itself; ``next`` gives the current one up (graded as it stands), ``stop`` ends the interview early. Each drill is
reset once its result is recorded, so nothing of it keeps running.
"""

from __future__ import annotations

import random
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.drills import catalog, session, tools
from mlops_workbench.drills.base import DrillError
from mlops_workbench.drills.scorecard import Outcome, Row, Scorecard, build, to_html
from mlops_workbench.drills.spec import DrillReport
from mlops_workbench.drills.variants import SEED_RANGE
from mlops_workbench.workbench import Workbench


class Slot(BaseModel):
    """One drill of the interview: what it is, its seed, and how it went."""

    model_config = ConfigDict(extra="forbid")
    drill: str
    seed: int
    outcome: Outcome | None = None
    report: DrillReport | None = None


class Interview(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str
    seed: int
    started: float
    slots: list[Slot] = Field(min_length=1)
    current: int = 0


def plan(seed: int, count: int, available: list[str]) -> list[tuple[str, int]]:
    """``count`` different drills of ``available`` and a seed for each, drawn from ``seed`` (pure)."""
    if count < 1:
        raise DrillError(f"--count {count}: an interview needs at least one drill.")
    if count > len(available):
        raise DrillError(
            f"--count {count} is more than the {len(available)} drills this machine can run "
            f"({', '.join(available)}): ask for fewer, or install what the others need."
        )
    rng = random.Random(f"interview:{seed}")
    return [(name, rng.randrange(SEED_RANGE)) for name in rng.sample(available, count)]


def _path(wb: Workbench) -> Path:
    return wb.layout.drills.interview


def current(wb: Workbench) -> Interview | None:
    path = _path(wb)
    return Interview.model_validate_json(path.read_text()) if path.exists() else None


def _save(wb: Workbench, interview: Interview) -> None:
    path = _path(wb)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(interview.model_dump_json(indent=1))


def _begin(wb: Workbench, interview: Interview) -> None:
    slot = interview.slots[interview.current]
    session.start(wb, slot.drill, blind=True, seed=slot.seed, interview=interview.id)
    _save(wb, interview)


def start(
    wb: Workbench, count: int, seed: int | None = None, probe: tools.Installed = tools.installed
) -> tuple[Interview, dict[str, str]]:
    """Plan the interview, set up its first drill and start the clock; returns it and the drills left out."""
    if current(wb) is not None:
        raise DrillError(
            "An interview is already running: finish it, or end it with `workbench drill interview "
            "stop` (its scorecard is written), then start a new one."
        )
    seed = random.randrange(SEED_RANGE) if seed is None else seed
    available, left_out = catalog.runnable(probe)
    slots = [Slot(drill=name, seed=drill_seed) for name, drill_seed in plan(seed, count, available)]
    interview = Interview(
        id=f"{time.strftime('%Y%m%d-%H%M%S')}-seed{seed}", seed=seed, started=time.time(), slots=slots
    )
    _begin(wb, interview)
    return interview, left_out


def _record(wb: Workbench, interview: Interview, outcome: Outcome, report: DrillReport | None) -> None:
    slot = interview.slots[interview.current]
    slot.outcome, slot.report = outcome, report
    session.reset(wb, name=slot.drill)


def _advance(wb: Workbench, interview: Interview) -> Path | None:
    """Set up the next drill, or write the scorecard after the last one (returns its folder then)."""
    if interview.current + 1 < len(interview.slots):
        interview.current += 1
        _begin(wb, interview)
        return None
    return finish(wb, interview)


def check(wb: Workbench) -> DrillReport:
    """Check the running drill (:func:`session.check`); when it belongs to an interview and passed, record it and
    set up the interview's next drill (or write the scorecard after the last). What `workbench drill check` runs.

    The interview wraps the session rather than the session calling back into the interview, so that the
    session knows nothing of interviews."""
    state = session.current(wb)
    report = session.check(wb)
    interview = current(wb)
    if report.passed and state is not None and state.finished is None and interview is not None:
        _record(wb, interview, Outcome.PASSED, report)
        _advance(wb, interview)
    return report


def give_up(wb: Workbench) -> Path | None:
    """Grade the current drill as it stands, record it as given up and move on."""
    interview = _running(wb)
    _record(wb, interview, Outcome.GIVEN_UP, _grade_now(wb))
    return _advance(wb, interview)


def stop(wb: Workbench) -> Path:
    """End the interview now: the current drill is given up, the rest are not reached; writes the scorecard."""
    interview = _running(wb)
    _record(wb, interview, Outcome.GIVEN_UP, _grade_now(wb))
    for slot in interview.slots[interview.current + 1 :]:
        slot.outcome = Outcome.NOT_REACHED
    return finish(wb, interview)


def _running(wb: Workbench) -> Interview:
    interview = current(wb)
    if interview is None:
        raise DrillError("No interview is running: start one with `workbench drill interview --count N`.")
    return interview


def _grade_now(wb: Workbench) -> DrillReport | None:
    state = session.current(wb)
    if state is None:
        return None
    if state.finished is not None:
        return session.check(wb)
    return session.grade(wb, catalog.get(state.drill), time.time() - state.started, state.hints_used)


def scorecard(interview: Interview) -> Scorecard:
    rows = [
        Row(
            position=n,
            title=catalog.get(slot.drill).spec.title(),
            drill=slot.drill,
            seed=slot.seed,
            par_seconds=catalog.get(slot.drill).spec.minutes * 60.0,
            outcome=slot.outcome or Outcome.NOT_REACHED,
            report=slot.report,
        )
        for n, slot in enumerate(interview.slots, start=1)
    ]
    return build(interview.id, interview.seed, interview.started, rows)


def folder(wb: Workbench, interview_id: str) -> Path:
    """Where the scorecard of the interview ``interview_id`` goes."""
    return wb.layout.drills.interviews / interview_id


def finish(wb: Workbench, interview: Interview) -> Path:
    """Write the scorecard (``scorecard.json`` and ``scorecard.html``) and end the interview; returns its folder."""
    card, out = scorecard(interview), folder(wb, interview.id)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scorecard.json").write_text(card.model_dump_json(indent=1))
    (out / "scorecard.html").write_text(to_html(card))
    _path(wb).unlink(missing_ok=True)
    return out


def status(wb: Workbench) -> dict[str, Any]:
    """Where the interview stands: the drill under way, the one clock, the results so far."""
    interview = _running(wb)
    done = [s for s in interview.slots if s.outcome is not None]
    state = session.current(wb)
    now = (time.time() - state.started) if state is not None and state.finished is None else 0.0
    return {
        "interview": interview.id,
        "seed": interview.seed,
        "drill": interview.current + 1,
        "drills": len(interview.slots),
        "clock_s": round(sum(s.report.seconds for s in done if s.report) + now, 1),
        "par_s": sum(catalog.get(s.drill).spec.minutes * 60 for s in interview.slots),
        "done": [
            {
                "title": catalog.get(s.drill).spec.title(),
                "outcome": s.outcome,
                "score": s.report.score.total if s.report and s.report.score else 0.0,
            }
            for s in done
        ],
    }
