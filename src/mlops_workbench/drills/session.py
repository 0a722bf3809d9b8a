"""Running a drill: ``start`` (setup, then the clock starts), ``status``, ``hint`` (each costs points), ``check``
(scored JSON report) and ``reset``. The running drill lives in ``<home>/drills/session.json``.

A passing check ends the drill: the clock stops and every service the drill started goes with it; those that ran
before it are kept.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench.drills import catalog, cleanup, grading, scoring, variants
from mlops_workbench.drills.base import POSTMORTEM, Drill, DrillError
from mlops_workbench.drills.debrief import debrief
from mlops_workbench.drills.records import parse_record
from mlops_workbench.drills.spec import DrillReport, DrillSession, PostMortem
from mlops_workbench.registry.audit import now
from mlops_workbench.workbench import Workbench

__all__ = ["check", "current", "debrief", "hint", "record", "reset", "start", "status"]


def current(wb: Workbench) -> DrillSession | None:
    path = wb.layout.drills.session
    return DrillSession.model_validate_json(path.read_text()) if path.exists() else None


def _running(wb: Workbench) -> DrillSession:
    session = current(wb)
    if session is None:
        raise DrillError(
            "No drill is running: start one with `workbench drill start NAME` (see `workbench drill list`)."
        )
    return session


def _save(wb: Workbench, session: DrillSession) -> None:
    path = wb.layout.drills.session
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(session.model_dump_json(indent=1))


def _make_room(wb: Workbench, drill: Drill, running: DrillSession | None) -> None:
    """Reset the running drill when it shares services with ``drill`` (the rollout drills cannot coexist)."""
    if running is None or running.drill == drill.name:
        return
    previous = catalog.get(running.drill)
    if set(previous.services(previous.context(wb))) & set(drill.services(drill.context(wb))):
        previous.reset(previous.context(wb))


def start(
    wb: Workbench, name: str, blind: bool = False, seed: int | None = None, interview: str | None = None
) -> DrillSession:
    """Reset ``name``, break the system the way ``seed`` draws (a fresh seed when None), then start the clock.
    ``blind`` hides the drill's name from :func:`status` (a drill picked at random); ``interview`` names the
    interview the drill is part of."""
    seed = variants.new_seed() if seed is None else seed
    drill = catalog.get(name)
    drill.preflight()
    running = current(wb)
    _make_room(wb, drill, running)
    before = running.services_before if running is not None else cleanup.running(wb)
    ctx = drill.context(wb)
    drill.reset(ctx)
    began = time.time()
    try:
        variant = drill.prepare(ctx, seed)
    except BaseException:
        drill.reset(ctx)
        cleanup.stop_started(wb, before)
        raise
    session = DrillSession(
        drill=name,
        started=time.time(),
        setup_seconds=round(time.time() - began, 2),
        services_before=before,
        blind=blind,
        seed=seed,
        variant=variant.key,
        interview=interview,
    )
    _save(wb, session)
    return session


def status(wb: Workbench) -> dict[str, Any]:
    """The running drill: title, brief, elapsed seconds against par, hints taken and where to write records."""
    from mlops_workbench import procs

    session = _running(wb)
    drill = catalog.get(session.drill)
    ctx = drill.context(wb)
    services = {s: service.url for s in drill.services(ctx) if (service := procs.get(wb, s))}
    out = {
        "drill": ctx.handle if session.blind else session.drill,
        "title": drill.spec.title(session.started),
        "elapsed_s": round((session.finished or time.time()) - session.started, 1),
        "par_s": drill.spec.minutes * 60,
        "seed": session.seed,
        "hints_used": session.hints_used,
        "hints_cost": scoring.hints_cost(session.hints_used),
        "finished": session.finished is not None,
        "brief": drill.brief(ctx),
        "folder": str(ctx.folder),
        "services": services,
        "model": ctx.model_name,
    }
    if drill.spec.incident:
        out["postmortem"] = str(ctx.postmortem_path)
    if drill.answer_model is not None:
        out["answer"] = str(ctx.answer_path)
    return out


def hint(wb: Workbench) -> tuple[str, int, int, float]:
    """The next hint; returns (hint, number, total, its cost in points). Asking again after the last one repeats
    it at no further cost."""
    session = _running(wb)
    hints = catalog.get(session.drill).spec.hints
    number = min(session.hints_used + 1, len(hints))
    cost = scoring.hint_cost(number) if number > session.hints_used else 0.0
    session.hints_used = max(session.hints_used, number)
    _save(wb, session)
    return hints[number - 1], number, len(hints), cost


def grade(wb: Workbench, drill: Drill, seconds: float, hints_used: int) -> DrillReport:
    """Grade ``drill``'s state in ``wb`` and score it (no file written)."""
    ctx = drill.context(wb)
    facts = ctx.facts()
    outcomes, postmortem = grading.evaluate(drill, ctx)
    state = [o for o in outcomes if o.id != POSTMORTEM]
    par = drill.spec.minutes * 60.0
    passed = all(o.passed for o in outcomes)
    return DrillReport(
        drill=drill.name,
        title=drill.spec.title(),
        seed=facts.get("seed"),
        variant=(facts.get("variant") or {}).get("key") if passed else None,
        passed=passed,
        seconds=round(seconds, 1),
        par_seconds=par,
        hints_used=hints_used,
        failed=[o for o in outcomes if not o.passed],
        checks=outcomes,
        checked_at=now(),
        score=scoring.score(state, seconds, par, hints_used, None if postmortem is None else postmortem.share),
        postmortem=postmortem,
    )


def _write(wb: Workbench, report: DrillReport) -> None:
    paths = wb.layout.drills
    paths.reports.mkdir(parents=True, exist_ok=True)
    text = report.model_dump_json(indent=1)
    (paths.reports / f"{report.drill}-{int(time.time() * 1000)}.json").write_text(text)
    paths.latest_report.write_text(text)


def check(wb: Workbench) -> DrillReport:
    """Grade the running drill's state; writes the JSON report (``<home>/drills/report.json`` and reports/).

    A passing check ends the drill: the clock stops and every service the drill started is stopped (those that
    ran before it are kept). Checking a finished drill again shows its report without grading anew.
    """
    session = _running(wb)
    paths = wb.layout.drills
    if session.finished is not None and paths.latest_report.exists():
        return DrillReport.model_validate_json(paths.latest_report.read_text())
    report = grade(wb, catalog.get(session.drill), time.time() - session.started, session.hints_used)
    _write(wb, report)
    if report.passed:
        session.finished = time.time()
        _save(wb, session)
        cleanup.stop_started(wb, session.services_before)
    return report


def reset(wb: Workbench, name: str | None = None, every: bool = False) -> list[str]:
    """Undo the running drill (or ``name``, or with ``every`` each drill that left a folder): services stopped,
    registered model and drill folder removed. Also stops what the drill started around it (the tracking server
    its setup needed) unless it ran before. Returns the names reset."""
    session = current(wb)
    if every:
        names = [
            n
            for n in catalog.names()
            if wb.layout.drills.folder(catalog.get(n).spec.handle).exists()
            or (session is not None and session.drill == n)
        ]
    else:
        names = [n for n in [name or (session.drill if session else None)] if n is not None]
    if not names:
        return []
    with cleanup.stopping_what_starts(wb) as kept:  # a reset may start the tracking server to delete a model
        for each in names:
            drill = catalog.get(each)
            drill.reset(drill.context(wb))
        if every:  # an interview whose drills are gone cannot go on
            wb.layout.drills.interview.unlink(missing_ok=True)
        if session is not None and session.drill in names:
            wb.layout.drills.session.unlink(missing_ok=True)
            kept[:] = [s for s in kept if s in session.services_before]  # what the drill started goes too
    return names


def record(wb: Workbench, name: str, **fields: Any) -> Path:
    """Write the learner's post-mortem (incident drills) or answer (value drills) for drill ``name``."""
    drill = catalog.get(name)
    ctx = drill.context(wb)
    model, path = (PostMortem, ctx.postmortem_path) if drill.spec.incident else (drill.answer_model, ctx.answer_path)
    if model is None:
        raise DrillError(f"The drill '{name}' takes no record: its checks read the system's state only.")
    value = parse_record(fields, model, f"record('{name}', ...)", name)  # a bad field writes nothing
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(value.model_dump(mode="json"), sort_keys=False))
    return path
