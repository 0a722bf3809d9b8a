"""``workbench drill validate``: for every drill and every one of its variants, the broken state fails, the
reference fix passes, and tearing everything down after the fix fails; every other destructive "fix" fails too
(on the first variant, or on all of them with ``thorough``).

Every destructive case starts from the state the variant's setup left: a drill without services is put back
from a snapshot when everything a case changed can be undone exactly (:mod:`mlops_workbench.drills.snapshot`),
and prepared again otherwise. A destructive fix that repairs first (:class:`~mlops_workbench.drills.base.AfterRepair`)
starts from a second snapshot, taken right after the reference fix, and only destroys.
"""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from mlops_workbench.drills import catalog, cleanup, grading, snapshot, variants
from mlops_workbench.drills.base import AfterRepair, Drill, DrillContext
from mlops_workbench.workbench import Workbench

Say = Callable[[str], None]


class Case(BaseModel):
    model_config = ConfigDict(extra="forbid")
    case: str
    variant: str
    seed: int
    expected: str
    ok: bool
    failed_checks: list[str]
    seconds: float


class DrillValidation(BaseModel):
    model_config = ConfigDict(extra="forbid")
    drill: str
    ok: bool
    cases: list[Case]


def _case(
    drill: Drill, ctx: DrillContext, name: str, expected: str, act: Callable[[DrillContext], None] | None
) -> Case:
    began = time.time()
    if act is not None:
        act(ctx)
    failed = [o.id for o in grading.outcomes(drill, ctx) if not o.passed]
    return Case(
        case=name,
        variant=ctx.fact("variant")["key"],
        seed=ctx.fact("seed"),
        expected=expected,
        ok=not failed if expected == "pass" else bool(failed),
        failed_checks=failed,
        seconds=round(time.time() - began, 1),
    )


def _fresh(drill: Drill, ctx: DrillContext, seed: int) -> None:
    drill.reset(ctx)
    drill.prepare(ctx, seed)


def _back_to_setup(
    drill: Drill, ctx: DrillContext, seed: int, saved: snapshot.Snapshot | None, copy: Path
) -> snapshot.Snapshot | None:
    """The state the setup of ``seed`` left: from ``saved`` when it can be restored exactly, else prepared again
    (and snapshotted into ``copy``)."""
    if saved is not None and snapshot.bring_back(ctx, saved):
        return saved
    _fresh(drill, ctx, seed)
    return snapshot.take(drill, ctx, copy)


def _say(say: Say, drill: Drill, case: Case) -> None:
    say(
        f"  {'ok ' if case.ok else 'BAD'} {drill.name} ({case.variant}, seed {case.seed}) {case.case}: expected "
        f"{case.expected}, failed checks {', '.join(case.failed_checks) or 'none'} ({case.seconds:.1f}s)"
    )


def validate_drill(wb: Workbench, drill: Drill, say: Say = lambda _m: None, thorough: bool = False) -> DrillValidation:
    """Every variant: broken fails, the reference fix passes, tearing down after it fails. Every other destructive
    fix fails on the first variant (on each with ``thorough``)."""
    ctx = drill.context(wb)
    teardown = drill.destructive_fixes()[drill.teardown]
    others = {name: act for name, act in drill.destructive_fixes().items() if name != drill.teardown}
    cases: list[Case] = []
    scratch = tempfile.TemporaryDirectory(prefix=f"validate-{drill.name}-")
    try:
        for index, seed in enumerate(variants.seeds(drill.variants, drill.name).values()):
            destroying = others if index == 0 or thorough else {}
            _fresh(drill, ctx, seed)
            copy = Path(scratch.name) / str(seed)
            saved = snapshot.take(drill, ctx, copy) if destroying else None
            repaired: snapshot.Snapshot | None = None
            for name, expected, act in (
                ("broken", "fail", None),
                ("reference-fix", "pass", drill.reference_fix),
                (f"teardown:{drill.teardown}", "fail", teardown),
            ):
                cases.append(_case(drill, ctx, name, expected, act))
                _say(say, drill, cases[-1])
                if name == "reference-fix" and any(isinstance(d, AfterRepair) for d in destroying.values()):
                    repaired = snapshot.take(drill, ctx, copy.with_name(f"{seed}-repaired"))
            for name, destroy in destroying.items():
                if isinstance(destroy, AfterRepair) and repaired is not None and snapshot.bring_back(ctx, repaired):
                    act = destroy.destroy  # the state the reference fix left, restored exactly: no second repair
                else:
                    saved, act = _back_to_setup(drill, ctx, seed, saved, copy), destroy
                cases.append(_case(drill, ctx, f"destructive:{name}", "fail", act))
                _say(say, drill, cases[-1])
    finally:
        drill.reset(ctx)
        scratch.cleanup()
    return DrillValidation(drill=drill.name, ok=bool(cases) and all(c.ok for c in cases), cases=cases)


def validate(
    wb: Workbench, names: list[str] | None = None, say: Say = lambda _m: None, thorough: bool = False
) -> list[DrillValidation]:
    """Validate the named drills (default: all) in the state folder of ``wb``.

    Stops every service the validation started (the tracking server the setups need, for one) and keeps those
    that ran before it.
    """
    results = []
    with cleanup.stopping_what_starts(wb):
        for name in names or catalog.names():
            drill = catalog.get(name)
            drill.preflight()
            results.append(validate_drill(wb, drill, say, thorough))
    return results
