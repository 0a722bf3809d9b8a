"""Where a learner stands: one typed record per lab, built only from what the workbench already wrote.

Nothing here keeps state of its own. The record is derived, on every call, from:

* each lab's ``lab.yaml`` (title, level, time estimate, pass mark) and ``checks.py`` (points, read statically);
* the learner's **check log** (``<home>/checks/<lab>.jsonl``, :mod:`~mlops_workbench.labs.checklog`): every
  ``start()`` and ``check()`` in a live notebook;
* the learner's **gradings**: ``<home>/results/<lab>.json`` (a grading run with this state folder) and
  ``<grades>/*/report.json`` (what ``workbench grade`` writes, ``build/grades/`` by default);
* the **reference runs** of ``make demo`` / ``workbench pipeline`` (``<home>/pipeline/*/results/<lab>.json``), and
  any grading of an instructor source (``labs/NN-slug/lab.ipynb``);
* the learner's **drill reports** (``<home>/drills/reports/*.json``, written by ``workbench drill check``).

Which reports count: the learner's own. Reference runs are shown only when the learner has no evidence of their own
at all (no check log, no grading), so that right after ``make demo`` the page shows the state the demo left; the
record says so in ``source`` and ``note``, and every lab is still "not started" for the learner then.

Time spent is measured from the learner's own activity: the timestamps of ``start()``, ``check()`` and gradings of a
lab, summing the gaps between consecutive ones and counting a gap longer than :data:`BREAK` as a break. For reference
runs it is the machine time of the headless run. Each record says which (``time.method``, ``time.detail``).
"""

from __future__ import annotations

import ast
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import ValidationError

from mlops_workbench import settings
from mlops_workbench.labs import checklog
from mlops_workbench.labs.checklog import CheckEvent
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.progress_record import (
    DrillProgress,
    FailingCheck,
    Grade,
    LabProgress,
    LabStatus,
    Progress,
    Seen,
    Source,
    TimeSpent,
)
from mlops_workbench.labs.report import CheckResult, Report
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlops_workbench.drills.spec import DrillReport

BREAK = timedelta(minutes=15)
"""A longer pause between two events of a lab is a break, not time spent on it."""


@dataclass(frozen=True)
class Found:
    """A grade report read from ``path``."""

    report: Report
    path: Path
    reference: bool


@dataclass(frozen=True)
class LabInfo:
    id: str
    title: str
    level: str
    minutes: int
    pass_mark: float
    points: float
    notebook: str = ""
    """The learner's copy of the notebook, as shown (``make lab`` opens it); the release path when empty."""

    @property
    def number(self) -> str:
        return self.id.split("-")[0]

    def start_step(self) -> str:
        return f"start lab {self.number} ({self.notebook or f'notebooks/{self.id}.ipynb'})"


def declared_points(lab: Lab) -> float:
    """The lab's total points, read from the ``@check(..., points=N)`` decorators of its ``checks.py`` without
    importing it (checks import whole toolchains); imported only when a decorator's points are not a literal."""
    total = 0.0
    for node in ast.walk(ast.parse((lab.folder / "checks.py").read_text())):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "check":
            points = next((k.value for k in node.keywords if k.arg == "points"), ast.Constant(1.0))
            if not isinstance(points, ast.Constant) or not isinstance(points.value, (int, float)):
                return lab.max_score
            total += float(points.value)
    return total


def lab_info(wb: Workbench, lab: Lab) -> LabInfo:
    s = lab.spec
    copy = wb.layout.notebook(lab.id)
    try:
        shown = copy.resolve().relative_to(settings.project_root()).as_posix()
    except ValueError:
        shown = str(copy)
    return LabInfo(lab.id, s.title, s.level, s.minutes, s.pass_mark, declared_points(lab), shown)


def when(stamp: str) -> datetime:
    """A report's ISO 8601 time as an aware datetime (naive times are UTC)."""
    moment = datetime.fromisoformat(stamp)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def is_reference(report: Report) -> bool:
    """A grading of an instructor source (``labs/NN-slug/lab.ipynb``): a solution, not the learner's work."""
    parts = Path(report.submission).parts
    return len(parts) >= 3 and parts[-1] == "lab.ipynb" and parts[-3] == "labs"


def active_minutes(times: Sequence[datetime]) -> float:
    """Minutes between the first and last event, leaving out every gap longer than :data:`BREAK`."""
    gaps = (later - earlier for earlier, later in pairwise(sorted(times)))
    return round(sum((gap for gap in gaps if gap <= BREAK), timedelta()).total_seconds() / 60, 1)


def _failing(grade: Found | None, events: list[CheckEvent]) -> list[FailingCheck]:
    """The newest result of every check (a grading's, or a later ``check()``'s) that has not passed."""
    newest: dict[str, tuple[datetime, CheckResult, Seen]] = {}
    if grade is not None:
        at = when(grade.report.graded_at)
        newest = {c.id: (at, c, "grade") for c in grade.report.checks}
    for event in events:
        for result in event.results:
            if result.id not in newest or event.at >= newest[result.id][0]:
                newest[result.id] = (event.at, result, "check()")
    return [
        FailingCheck(id=r.id, status=r.status, message=r.message, seen=seen)
        for _, r, seen in newest.values()
        if r.status != "passed"
    ]


def _grade(found: Found) -> Grade:
    r = found.report
    return Grade(
        score=r.score,
        max_score=r.max_score,
        passed=r.passed,
        pass_mark=r.pass_mark,
        graded_at=r.graded_at,
        report=str(found.path),
        reference=found.reference,
    )


def learner_lab(info: LabInfo, gradings: list[Found], events: list[CheckEvent]) -> LabProgress:
    """One lab from the learner's own gradings and check log."""
    latest = max(gradings, key=lambda f: when(f.report.graded_at), default=None)
    failing = _failing(latest, events)
    times = [e.at for e in events] + [when(f.report.graded_at) for f in gradings]
    if len(times) > 1:
        time = TimeSpent(
            minutes=active_minutes(times),
            estimate_minutes=info.minutes,
            method="activity",
            detail=f"from your {len(times)} start()s, check()s and gradings; pauses over "
            f"{BREAK.seconds // 60} min left out",
        )
    else:
        time = TimeSpent(
            minutes=None,
            estimate_minutes=info.minutes,
            method="none",
            detail="shown from your second check() or grading on" if times else "not started",
        )
    status: LabStatus
    if latest is not None and latest.report.passed:
        status, step = "passed", "done"
    elif latest is None and not events:
        status, step = "not started", info.start_step()
    else:
        status = "in progress"
        error = latest.report.error if latest is not None else None
        step = (
            (failing[0].message or f"make check '{failing[0].id}' pass")
            if failing
            else (
                error
                or f"every check you ran passes: grade it with `workbench grade {info.notebook or f'notebooks/{info.id}.ipynb'}`"
            )
        )
    return LabProgress(
        lab=info.id,
        title=info.title,
        level=info.level,
        points=info.points,
        pass_mark=info.pass_mark,
        status=status,
        grade=_grade(latest) if latest else None,
        failing=failing,
        time=time,
        next_step=step,
    )


def reference_lab(info: LabInfo, runs: list[Found]) -> LabProgress:
    """One lab as the reference run left it: its grade and failing checks; the learner has not started it."""
    latest = max(runs, key=lambda f: when(f.report.graded_at), default=None)
    if latest is None:
        time = TimeSpent(minutes=None, estimate_minutes=info.minutes, method="none", detail="no run of this lab")
    else:
        time = TimeSpent(
            minutes=round(latest.report.timings.total_seconds / 60, 1),
            estimate_minutes=info.minutes,
            method="reference-run",
            detail="machine time of the headless reference run, not a learner's",
        )
    return LabProgress(
        lab=info.id,
        title=info.title,
        level=info.level,
        points=info.points,
        pass_mark=info.pass_mark,
        status="not started",
        grade=_grade(latest) if latest else None,
        failing=_failing(latest, []),
        time=time,
        next_step=info.start_step(),
    )


def drill_progress(reports: list[DrillReport]) -> list[DrillProgress]:
    """One row per drill, in the catalog's teaching order, from the best of its attempts
    (:class:`~mlops_workbench.drills.spec.DrillReport`)."""
    if not reports:
        return []
    by_drill: dict[str, list[DrillReport]] = {}
    for report in reports:
        by_drill.setdefault(report.drill, []).append(report)
    out = []
    for drill, attempts in by_drill.items():
        best = max(attempts, key=lambda r: (r.passed, sum(c.passed for c in r.checks), -r.seconds, -r.hints_used))
        out.append(
            DrillProgress(
                drill=drill,
                attempts=len(attempts),
                passed=any(r.passed for r in attempts),
                checks_passed=sum(c.passed for c in best.checks),
                checks_total=len(best.checks),
                seconds=best.seconds,
                hints_used=best.hints_used,
                last_checked_at=max(r.checked_at for r in attempts),
            )
        )
    from mlops_workbench.drills.catalog import names  # loaded with the reports already

    order = {name: i for i, name in enumerate(names())}
    return sorted(out, key=lambda d: (order.get(d.drill, len(order)), d.drill))


NOTES = {
    "learner": "Your own work: check() results from your notebooks and your gradings. The reference runs of "
    "`make demo` are left out.",
    "reference": "Nothing of yours yet, so the grades are the reference solutions' runs that `make demo` left in "
    "the state folder. Your own check() results and gradings replace them as soon as there are any.",
    "none": "Nothing checked or graded yet.",
}


def assemble(
    wb: Workbench,
    infos: list[LabInfo],
    found: list[Found],
    events: dict[str, list[CheckEvent]],
    drills: list[DrillReport],
    problems: list[str],
    now: datetime | None = None,
) -> Progress:
    """The whole record from what was read (pure: no file is touched)."""
    own = [f for f in found if not f.reference]
    source: Source = "learner" if own or any(events.values()) else "reference" if found else "none"
    if source == "reference":
        labs = [reference_lab(i, [f for f in found if f.report.lab == i.id]) for i in infos]
    else:
        labs = [learner_lab(i, [f for f in own if f.report.lab == i.id], events.get(i.id, [])) for i in infos]
    pending = next((lab for lab in labs if lab.status != "passed"), None)
    stamp = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return Progress(
        generated_at=stamp,
        home=str(wb.home),
        source=source,
        note=NOTES[source],
        labs=labs,
        drills=drill_progress(drills),
        next_lab=pending.lab if pending else None,
        next_step=pending.next_step if pending else "done: every lab passed",
        problems=problems,
    )


def _read_report(path: Path, reference: bool, problems: list[str]) -> Found | None:
    try:
        report = Report.model_validate_json(path.read_text(encoding="utf-8", errors="replace"))
        when(report.graded_at)
    except (OSError, ValueError) as exc:  # pydantic's ValidationError and a bad graded_at are ValueErrors
        problems.append(
            f"{path} is not a grade report ({str(exc).splitlines()[0]}): it was skipped; delete it or "
            "grade the notebook again."
        )
        return None
    return Found(report, path, reference or is_reference(report))


def read_reports(wb: Workbench, grades: Sequence[Path], problems: list[str]) -> list[Found]:
    """Every grade report that may count, each marked as the learner's own or a reference run."""
    paths = wb.layout
    own = [*sorted(paths.results.glob("*.json")), *(p for d in grades for p in sorted(Path(d).glob("*/report.json")))]
    reference = sorted(paths.pipeline.glob("*/results/*.json"))
    found = [_read_report(p, False, problems) for p in own] + [_read_report(p, True, problems) for p in reference]
    return [f for f in found if f is not None]


def read_drills(wb: Workbench, problems: list[str]) -> list[DrillReport]:
    """Every graded drill attempt (the drill machinery is imported only when there are drill reports)."""
    if not wb.layout.drills.root.is_dir():
        return []
    from mlops_workbench.drills.spec import DrillReport

    reports = []
    for path in sorted(wb.layout.drills.reports.glob("*.json")):
        try:
            reports.append(DrillReport.model_validate_json(path.read_text(encoding="utf-8", errors="replace")))
        except (OSError, ValidationError) as exc:
            problems.append(
                f"{path} is not a drill report ({str(exc).splitlines()[0]}): it was skipped; delete it "
                "or run `workbench drill check` again."
            )
    return reports


def default_grades() -> list[Path]:
    """Where ``workbench grade`` writes by default, run from the project folder."""
    return [settings.project_root() / "build" / "grades"]


def build(wb: Workbench, grades: Sequence[Path] | None = None, labs: list[Lab] | None = None) -> Progress:
    """Read everything afresh and return the learner's progress (``grades``: folders ``workbench grade`` wrote to)."""
    labs = labs if labs is not None else Lab.all()
    problems: list[str] = []
    found = read_reports(wb, default_grades() if grades is None else grades, problems)
    events: dict[str, list[CheckEvent]] = {}
    for lab in labs:
        events[lab.id], bad = checklog.read(wb, lab.id)
        problems += bad
    return assemble(wb, [lab_info(wb, lab) for lab in labs], found, events, read_drills(wb, problems), problems)
