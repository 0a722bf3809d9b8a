"""Running a drill: ``start`` (setup, then the clock starts), ``status``, ``hint``, ``check`` (JSON report and
debrief) and ``reset``. The running drill lives in ``<home>/drills/session.json``."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench import settings
from mlops_workbench.drills import catalog
from mlops_workbench.drills.base import DrillError, parse_record
from mlops_workbench.drills.paths import drill_paths
from mlops_workbench.drills.spec import DrillReport, DrillSession, PostMortem
from mlops_workbench.registry.audit import now


def _home(home: Path | None) -> Path:
    return home or settings.home()


def current(home: Path | None = None) -> DrillSession | None:
    path = drill_paths(_home(home)).session
    return DrillSession.model_validate_json(path.read_text()) if path.exists() else None


def _running(home: Path | None) -> DrillSession:
    session = current(home)
    if session is None:
        raise DrillError("No drill is running: start one with `workbench drill start NAME` (see `workbench drill list`).")
    return session


def _save(session: DrillSession, home: Path | None) -> None:
    drill_paths(_home(home)).session.write_text(session.model_dump_json(indent=1))


def start(name: str, home: Path | None = None) -> DrillSession:
    """Reset ``name``, break the system (setup), then start the clock."""
    home = _home(home)
    drill = catalog.get(name)
    drill.preflight()
    running = current(home)
    if running is not None and running.drill != name:  # drills sharing services (the rollout ones) cannot coexist
        previous = catalog.get(running.drill)
        if set(previous.services(previous.context(home))) & set(drill.services(drill.context(home))):
            previous.reset(previous.context(home))
    ctx = drill.context(home)
    drill.reset(ctx)
    began = time.time()
    drill.setup(ctx)
    session = DrillSession(drill=name, started=time.time(), setup_seconds=round(time.time() - began, 2))
    _save(session, home)
    return session


def status(home: Path | None = None) -> dict[str, Any]:
    """The running drill: brief, elapsed seconds, time budget, hints used and where to write records."""
    home = _home(home)
    session = _running(home)
    drill = catalog.get(session.drill)
    ctx = drill.context(home)
    from mlops_workbench import procs

    services = {s: procs.get(s, home).url for s in drill.services(ctx) if procs.get(s, home)}
    out = {"drill": session.drill, "title": drill.spec.title, "elapsed_s": round(time.time() - session.started, 1),
           "budget_s": drill.spec.minutes * 60, "hints_used": session.hints_used, "brief": drill.spec.brief,
           "folder": str(ctx.folder), "services": services, "model": ctx.model_name}
    if drill.spec.incident:
        out["postmortem"] = str(ctx.postmortem_path)
    if drill.answer_model is not None:
        out["answer"] = str(ctx.answer_path)
    return out


def hint(home: Path | None = None) -> tuple[str, int, int]:
    """The next hint (counted in the report); returns (hint, number, total)."""
    session = _running(home)
    hints = catalog.get(session.drill).spec.hints
    number = min(session.hints_used + 1, len(hints))
    session.hints_used = max(session.hints_used, number)
    _save(session, home)
    return hints[number - 1], number, len(hints)


def check(home: Path | None = None) -> DrillReport:
    """Grade the running drill's state; writes the JSON report (``<home>/drills/report.json`` and reports/)."""
    home = _home(home)
    session = _running(home)
    drill = catalog.get(session.drill)
    outcomes = drill.grade(drill.context(home))
    report = DrillReport(drill=session.drill, passed=all(o.passed for o in outcomes),
                         seconds=round(time.time() - session.started, 1), hints_used=session.hints_used,
                         failed=[o for o in outcomes if not o.passed], checks=outcomes, checked_at=now())
    paths = drill_paths(home)
    paths.reports.mkdir(parents=True, exist_ok=True)
    text = report.model_dump_json(indent=1)
    (paths.reports / f"{session.drill}-{int(time.time() * 1000)}.json").write_text(text)
    paths.latest_report.write_text(text)
    return report


def debrief(report: DrillReport) -> str:
    """A few lines for people: verdict, time against the budget, failed checks, and the model answer once passed."""
    drill = catalog.get(report.drill)
    minutes, seconds = divmod(int(report.seconds), 60)
    budget = drill.spec.minutes
    lines = [f"{report.drill}: {'PASSED' if report.passed else 'NOT YET'} after {minutes}m{seconds:02d}s "
             f"(budget {budget}m{', over budget' if report.seconds > budget * 60 else ''}), "
             f"{report.hints_used} hint(s) used"]
    lines += [f"  FAILED {o.id}{' (guard)' if o.guard else ''}: {o.message}" for o in report.failed]
    if report.passed:
        lines += ["", "Model answer:", f"  {drill.spec.answer}"]
    else:
        lines += ["", "Keep going: `workbench drill hint` for a hint, `workbench drill check` again when done."]
    return "\n".join(lines)


def reset(home: Path | None = None, name: str | None = None) -> str | None:
    """Undo the running drill (or ``name``): services stopped, registered model and drill folder removed."""
    home = _home(home)
    session = current(home)
    name = name or (session.drill if session else None)
    if name is None:
        return None
    drill = catalog.get(name)
    drill.reset(drill.context(home))
    if session is not None and session.drill == name:
        drill_paths(home).session.unlink(missing_ok=True)
    return name


def record(name: str, home: Path | None = None, **fields: Any) -> Path:
    """Write the learner's post-mortem (incident drills) or answer (value drills) for drill ``name``."""
    drill = catalog.get(name)
    ctx = drill.context(_home(home))
    model, path = (PostMortem, ctx.postmortem_path) if drill.spec.incident else (drill.answer_model, ctx.answer_path)
    if model is None:
        raise DrillError(f"The drill '{name}' takes no record: its checks read the system's state only.")
    value = parse_record(fields, model, f"record('{name}', ...)", name)  # a bad field writes nothing
    path.write_text(yaml.safe_dump(value.model_dump(), sort_keys=False))
    return path
