"""Grading a drill: its state checks one by one (a broken check never stops the others) and, for an incident
drill, its post-mortem answer by answer against the truth the drill reads from its own run."""

from __future__ import annotations

from collections.abc import Collection

from mlops_workbench.drills import postmortem
from mlops_workbench.drills.base import POSTMORTEM, Drill, DrillContext, GradedCheck
from mlops_workbench.drills.postmortem_spec import PostMortem, PostMortemGrade
from mlops_workbench.drills.spec import CheckOutcome
from mlops_workbench.labs.checks import CheckFailed


def run(check: GradedCheck, ctx: DrillContext) -> CheckOutcome:
    try:
        check.func(ctx)
        return CheckOutcome(id=check.id, passed=True, guard=check.guard)
    except CheckFailed as exc:
        return CheckOutcome(id=check.id, passed=False, message=str(exc), guard=check.guard)
    except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check, with its cause
        return CheckOutcome(
            id=check.id,
            passed=False,
            guard=check.guard,
            message=f"the check could not read the state ({type(exc).__name__}: {exc})",
        )


def assess(drill: Drill, ctx: DrillContext) -> PostMortemGrade:
    """The learner's post-mortem against the run; a missing or malformed record grades 0 with the reason."""
    try:
        record = ctx.read_record(ctx.postmortem_path, PostMortem)
        truth = drill.truth(ctx)
    except CheckFailed as exc:
        return postmortem.failed(str(exc))
    except Exception as exc:  # noqa: BLE001 - the run could not be read: no answer can be checked
        return postmortem.failed(f"the run could not be read to check it ({type(exc).__name__}: {exc})")
    return postmortem.grade(record, truth)  # type: ignore[arg-type]


def outcomes(drill: Drill, ctx: DrillContext, only: Collection[str] | None = None) -> list[CheckOutcome]:
    """Run every check of ``drill`` (or those whose id is in ``only``); one broken check never stops the others."""
    return evaluate(drill, ctx, only)[0]


def evaluate(
    drill: Drill, ctx: DrillContext, only: Collection[str] | None = None
) -> tuple[list[CheckOutcome], PostMortemGrade | None]:
    """The outcome of every check (or those in ``only``) and, when the post-mortem is among them, its grade; its
    check passes when every answer matches the run."""
    outcomes, grade = [], None
    for check in drill.all_checks():
        if only is not None and check.id not in only:
            continue
        if check.id != POSTMORTEM:
            outcomes.append(run(check, ctx))
            continue
        grade = assess(drill, ctx)
        problems = grade.problems
        outcomes.append(
            CheckOutcome(
                id=POSTMORTEM,
                passed=not problems,
                message="The post-mortem does not match the run: " + "; ".join(problems) if problems else "",
            )
        )
    return outcomes, grade
