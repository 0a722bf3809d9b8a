"""Checks for lab 06: each grades the state one drill left behind, through the drill's own checks.

The drills' checks read the registry, the audit log, the model servers, the learner's CI test (run
against two versions) and the post-mortem records (compared with the logs); never prose.
"""

from __future__ import annotations

from mlops_workbench import drills
from mlops_workbench.drills import grading
from mlops_workbench.labs.checks import Context, check, fail

# Drill checks run real things (pytest against two model versions, the model servers): minutes on a busy machine.


def drill_checks(ctx: Context, name: str, ids: list[str] | None = None, skip: tuple[str, ...] = ()) -> None:
    """Fail with the drill's own messages unless its checks ``ids`` (default: all but ``skip``) pass."""
    drill = drills.get(name)
    dctx = drill.context(ctx.wb)
    if not (dctx.folder / ".facts.json").exists():
        fail(f"The drill '{name}' was never started: run its setup cell (drills.start('{name}')).")
    wanted = [c.id for c in drill.all_checks() if (ids is None or c.id in ids) and c.id not in skip]
    outcomes = grading.outcomes(drill, dctx, only=wanted)
    failed = [f"{o.id}: {o.message}" for o in outcomes if not o.passed]
    if failed:
        fail(f"{name}: " + " | ".join(failed))


@check("bad-model-restored", points=3, cells=["bad-model-fix"], timeout=300)
def bad_model_restored(ctx: Context) -> None:
    """Production is back on the good version by an audited rollback, the server follows, nothing was lost."""
    drill_checks(ctx, "bad-model", skip=("postmortem",))


@check("bad-model-postmortem", points=2, cells=["bad-model-postmortem"], timeout=300)
def bad_model_postmortem(ctx: Context) -> None:
    """The bad-model post-mortem matches the audit log and the server's metrics."""
    drill_checks(ctx, "bad-model", ids=["postmortem"])


@check("signature-restored", points=2, cells=["signature-fix"], timeout=300)
def signature_restored(ctx: Context) -> None:
    """Production takes the clients' payloads again; registry and audit trail intact."""
    drill_checks(
        ctx,
        "signature-mismatch",
        ids=["production-restored", "server-answers", "registry-intact", "audit-trail-intact"],
    )


@check("signature-ci-test", points=2, cells=["signature-test"], timeout=600)
def signature_ci_test(ctx: Context) -> None:
    """The CI test fails on the broken version and passes on the good one."""
    drill_checks(ctx, "signature-mismatch", ids=["ci-test-catches-it"])


@check("signature-postmortem", points=1, cells=["signature-postmortem"], hidden=True, timeout=300)
def signature_postmortem(ctx: Context) -> None:
    """The signature post-mortem matches the logs."""
    drill_checks(ctx, "signature-mismatch", ids=["postmortem"])


@check("schema-ci-green", points=3, cells=["schema-fix"], timeout=600)
def schema_ci_green(ctx: Context) -> None:
    """CI is green again, the tests untouched, every measurement kept."""
    drill_checks(ctx, "schema-break")
