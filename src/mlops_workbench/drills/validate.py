"""``workbench drill validate``: for every drill, the broken state fails, the reference fix passes, and every
destructive "fix" fails (a guard check or another check catches it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from pydantic import BaseModel, ConfigDict

from mlops_workbench import procs, settings
from mlops_workbench.drills import catalog
from mlops_workbench.drills.base import Drill, DrillContext


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case: str
    expected: str
    ok: bool
    failed_checks: list[str]
    seconds: float


class DrillValidation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drill: str
    ok: bool
    cases: list[Case]


def _case(drill: Drill, ctx: DrillContext, name: str, expected: str,
          act: Callable[[DrillContext], None] | None) -> Case:
    began = time.time()
    if act is not None:
        act(ctx)
    outcomes = drill.grade(ctx)
    failed = [o.id for o in outcomes if not o.passed]
    ok = not failed if expected == "pass" else bool(failed)
    return Case(case=name, expected=expected, ok=ok, failed_checks=failed, seconds=round(time.time() - began, 1))


def validate_drill(drill: Drill, home: Path | None = None, say: Callable[[str], None] = lambda _m: None) -> DrillValidation:
    ctx = drill.context(home or settings.home())
    cases: list[Case] = []
    try:
        drill.reset(ctx)
        drill.setup(ctx)
        cases.append(_case(drill, ctx, "broken", "fail", None))
        cases.append(_case(drill, ctx, "reference-fix", "pass", drill.reference_fix))
        for name, destroy in drill.destructive_fixes().items():
            drill.reset(ctx)
            drill.setup(ctx)
            cases.append(_case(drill, ctx, f"destructive:{name}", "fail", destroy))
        for case in cases:
            say(f"  {'ok ' if case.ok else 'BAD'} {drill.name} {case.case}: expected {case.expected}, "
                f"failed checks {case.failed_checks or 'none'} ({case.seconds:.1f}s)")
    finally:
        drill.reset(ctx)
    return DrillValidation(drill=drill.name, ok=bool(cases) and all(c.ok for c in cases), cases=cases)


def validate(names: list[str] | None = None, home: Path | None = None,
             say: Callable[[str], None] = lambda _m: None) -> list[DrillValidation]:
    """Validate the named drills (default: all) in the state folder ``home``.

    Stops every service the validation started (the tracking server the setups need, for one) and keeps those
    that ran before it.
    """
    home = home or settings.home()
    before = [service.name for service in procs.running(home)]
    results = []
    try:
        for name in names or catalog.names():
            drill = catalog.get(name)
            drill.preflight()
            results.append(validate_drill(drill, home, say))
    finally:
        procs.stop_all(home, keep=before)
    return results
