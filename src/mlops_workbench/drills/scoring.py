"""A drill's score out of 100, a pure function of its graded checks, the post-mortem, the time and the hints.

* state: :data:`STATE_POINTS` shared by the state checks that grade the repair (the post-mortem's share too in
  drills without one). Guards earn nothing by passing (doing nothing passes them); a failed guard (everything
  torn down, evidence deleted) zeroes this part;
* post-mortem: :data:`POSTMORTEM_POINTS` times the share of its answers that match the run;
* time: :data:`TIME_POINTS` within par, falling linearly to none at :data:`TIME_LIMIT` times par, and only for a
  solved drill (every state check passed): a quick check of an untouched system earns no time;
* hints: each hint taken costs :func:`hint_cost` points, more for each later (more specific) one.
"""

from __future__ import annotations

from mlops_workbench.drills.spec import CheckOutcome, Score, ScoreLine, ScorePart

STATE_POINTS = 60.0
POSTMORTEM_POINTS = 25.0
TIME_POINTS = 15.0
TIME_LIMIT = 2.0
"""At this multiple of par the time earns nothing."""
HINT_STEP = 5.0


def hint_cost(number: int) -> float:
    """Points hint ``number`` (1-based) costs: 5, 10, 15, ..."""
    return HINT_STEP * number


def hints_cost(used: int) -> float:
    """Points the first ``used`` hints cost together."""
    return sum(hint_cost(n) for n in range(1, used + 1))


def time_points(seconds: float, par_seconds: float) -> float:
    """:data:`TIME_POINTS` within par, then linearly less down to 0 at :data:`TIME_LIMIT` x par."""
    if seconds <= par_seconds:
        return TIME_POINTS
    over = (seconds - par_seconds) / (par_seconds * (TIME_LIMIT - 1))
    return round(max(0.0, TIME_POINTS * (1 - over)), 2)


def _clock(seconds: float) -> str:
    minutes, rest = divmod(int(round(seconds)), 60)
    return f"{minutes}m{rest:02d}s"


def score(
    checks: list[CheckOutcome], seconds: float, par_seconds: float, hints_used: int, postmortem: float | None
) -> Score:
    """The score of one attempt. ``checks`` are the state checks (not the post-mortem); ``postmortem`` is the share
    (0 to 1) of the post-mortem's answers that match the run, or None for a drill without one."""
    state_max = STATE_POINTS + (POSTMORTEM_POINTS if postmortem is None else 0.0)
    repairs = [c for c in checks if not c.guard]
    passed = sum(c.passed for c in repairs)
    guards = [c.id for c in checks if c.guard and not c.passed]
    state = 0.0 if guards or not repairs else round(state_max * passed / len(repairs), 2)
    detail = f"{passed}/{len(repairs)} state checks passed"
    if guards:
        detail += f"; a guard failed ({', '.join(guards)}), so the state earns nothing"
    solved = bool(checks) and all(c.passed for c in checks)
    lines = [ScoreLine(part=ScorePart.STATE, points=state, max_points=state_max, detail=detail)]
    if postmortem is not None:
        share = min(max(postmortem, 0.0), 1.0)
        lines.append(
            ScoreLine(
                part=ScorePart.POSTMORTEM,
                points=round(POSTMORTEM_POINTS * share, 2),
                max_points=POSTMORTEM_POINTS,
                detail=f"{share:.0%} of the post-mortem matches the run",
            )
        )
    clock = f"{_clock(seconds)} against a par of {_clock(par_seconds)}"
    lines.append(
        ScoreLine(
            part=ScorePart.TIME,
            points=time_points(seconds, par_seconds) if solved else 0.0,
            max_points=TIME_POINTS,
            detail=clock if solved else f"{clock}; not solved yet, so no points for time",
        )
    )
    lines.append(
        ScoreLine(
            part=ScorePart.HINTS, points=-hints_cost(hints_used), max_points=0.0, detail=f"{hints_used} hint(s) taken"
        )
    )
    total = round(min(100.0, max(0.0, sum(line.points for line in lines))), 2)
    return Score(total=total, lines=lines)
