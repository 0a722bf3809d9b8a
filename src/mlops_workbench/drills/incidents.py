"""Registry incidents (a bad version shipped after good releases): the setup, the reference repair and the checks
the drills of this kind share."""

from __future__ import annotations

from collections.abc import Callable

from mlops_workbench import procs, registry
from mlops_workbench.drills import common, evidence, models
from mlops_workbench.drills.base import Drill, DrillContext
from mlops_workbench.drills.causes import Change
from mlops_workbench.drills.postmortem import from_truth, registry_truth, write
from mlops_workbench.drills.postmortem_spec import PostMortemTruth
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry import audit
from mlops_workbench.registry.gate import GateResult
from mlops_workbench.serving.client import ModelServerClient

Gate = Callable[[DrillContext, str, str], GateResult]
"""(ctx, bad version, production version) -> the gate result the bad release was shipped with."""


def break_production(
    ctx: DrillContext, good: int, fault: models.Fault, reason: str, gate: Gate, traffic: int, seed: int
) -> None:
    """``good`` good releases, then a version with ``fault`` shipped with ``gate``'s result; the model server on
    the production alias answers ``traffic`` requests. Saves the facts the checks and the post-mortem read."""
    shipped = common.good_releases(ctx, good)
    bad = common.log_version(ctx, fault)
    common.ship(ctx, bad, reason, gate_result=gate(ctx, bad, shipped[-1]))
    onset = audit.read(ctx.wb)[-1].ts
    service = common.serve(ctx)
    common.send_traffic(service.url, traffic, seed=seed)
    ctx.save_facts(good=shipped[-1], bad=bad, versions=[*shipped, bad], onset=onset, **common.audit_fingerprint(ctx.wb))


def roll_back(ctx: DrillContext, reason: str) -> None:
    """The reference repair: production back by alias with a reason, the server told to follow."""
    registry.rollback(ctx.wb, ctx.model_name, approver="on-call", reason=reason)
    service = procs.get(ctx.wb, ctx.server)
    assert service is not None
    ModelServerClient.of(ctx.wb, service.url).reload()


def production_restored(ctx: DrillContext) -> None:
    """Production points at the last good version again."""
    current, good = common.production(ctx), str(ctx.fact("good"))
    if current == str(ctx.fact("bad")):
        fail(f"Production still points at v{current}, the version users complain about: move it back by alias.")
    if current != good:
        fail(f"Production points at v{current}, not v{good} (the last version that served users well).")


def incident_truth(drill: Drill, ctx: DrillContext, *extra: Change) -> PostMortemTruth:
    """What the audit log and the server's counter say about the incident; ``extra`` are changes the state shows
    besides the registry's (a CI test written, for one)."""
    bad = str(ctx.fact("bad"))
    service = procs.get(ctx.wb, ctx.server)
    requests = common.served_requests(service.url, bad) if service else None
    changes = [*evidence.registry_changes(ctx, bad), *extra]
    return registry_truth(
        common.registry_entries_since(ctx), ctx.fact("onset"), bad, requests, **drill.known(ctx, changes)
    )


def record_truth(drill: Drill, ctx: DrillContext) -> None:
    """Write the post-mortem the run supports (what a careful learner files)."""
    write(ctx.postmortem_path, from_truth(drill.truth(ctx)))
