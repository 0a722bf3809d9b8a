"""Checks, guards and the post-mortem truth of the rollout drills: the traffic path keeps serving users, no canary
takes traffic unwatched, nothing is promoted without a measurement, a later rollout decides on data."""

from __future__ import annotations

from mlops_workbench import procs, registry
from mlops_workbench.drills import common, evidence, rollouts
from mlops_workbench.drills.base import SETUP_APPROVER, Check, Drill, DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change
from mlops_workbench.drills.postmortem import rollout_truth
from mlops_workbench.drills.postmortem_spec import PostMortemTruth
from mlops_workbench.labs.checks import fail
from mlops_workbench.rollout import events
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.rollout.backends.local import ROUTER, STABLE
from mlops_workbench.serving.client import ModelServerClient, RouterClient

T = events.EventType


def router_url(ctx: DrillContext) -> str:
    service = procs.get(ctx.wb, ROUTER)
    if service is None or procs.get(ctx.wb, STABLE) is None:
        fail(
            "The router or the stable server is down: users get nothing. Never stop the traffic path to end a "
            "rollout; abort the rollout (`workbench rollout abort --reason ...`) instead."
        )
    return service.url


def guard_users_served(ctx: DrillContext) -> None:
    """Requests through the router are answered 200."""
    url = router_url(ctx)
    statuses = common.send_traffic(url, 10, seed=11)
    if any(s != 200 for s in statuses):
        fail(f"Requests through the router fail ({statuses}): users must be served while you repair the rollout.")


def router_weight(ctx: DrillContext) -> float:
    return RouterClient.of(ctx.wb, router_url(ctx)).weight()


def guard_never_blind(ctx: DrillContext) -> None:
    """Production moved to the candidate only through a rollout that measured it."""
    current = common.production(ctx)
    if current != str(ctx.fact("candidate")):
        return
    for evs in evidence.later_rollouts(ctx, ctx.fact("rollout")).values():
        measured = any(isinstance(e, events.MeasurementEvent) and e.phase == MeasurementPhase.SUCCESSFUL for e in evs)
        if measured and any(isinstance(e, events.DecisionEvent) and e.decision is events.Decision.PROMOTE for e in evs):
            return
    fail(
        f"Production is v{current}, the candidate, but no rollout measured it successfully: a promotion without "
        "measurements is blind. Roll back and let an analysed rollout decide."
    )


def decided_again(source: str | None, fix: str) -> Check:
    """A check: a rollout after the drill's first one decided on conclusive measurements (from ``source``)."""

    def check(ctx: DrillContext) -> None:
        """A rollout of the candidate after the incident reached a decision on real measurements."""
        later = evidence.later_rollouts(ctx, ctx.fact("rollout")).values()
        if not any(evidence.decided_on_data(evs, source) for evs in later):
            fail(
                f"No rollout since the incident decided on real measurements{' from ' + source if source else ''}: "
                f"{fix}"
            )

    return check


def promote_blind(ctx: DrillContext) -> None:
    """A destructive "fix": promote the candidate through the registry with no measurement, and serve it."""
    candidate = str(ctx.fact("candidate"))
    registry.release(
        ctx.wb,
        ctx.model_name,
        candidate,
        approver=SETUP_APPROVER,
        reason="no measurement, but it looked fine",
        staging_reason="ship it",
    )
    stable = procs.get(ctx.wb, STABLE)
    assert stable is not None
    ModelServerClient.of(ctx.wb, stable.url).reload()


def first_rollout_decided(ctx: DrillContext) -> None:
    """The drill's rollout reached a decision after the onset (an abort, or a promotion after its analysis)."""
    rollout = ctx.fact("rollout")
    evs = events.read(ctx.wb, rollout=rollout)
    onset = next((e.t for e in evs if e.type is T.FAULT), None)
    if not any(e.type is T.DECISION and onset is not None and e.t > onset for e in evs):
        fail(
            f"Rollout {rollout} never reached a decision: it still holds its canary. End it as an operator "
            "(`workbench rollout abort --reason ...`, or `workbench rollout resume` under a new controller)."
        )


def no_unwatched_canary(ctx: DrillContext) -> None:
    """No canary takes traffic without a live controller."""
    state = st.load(ctx.wb)
    if state is not None and not state.done and not st.controller_alive(state):
        fail(
            f"Rollout {state.id} is {state.phase} at {state.weight:g}% with no live controller: nobody watches "
            "the canary. Setting the weight by hand is not an ending; abort or resume the rollout."
        )
    if router_weight(ctx) > 0 and (state is None or state.done):
        fail("The router still sends traffic to a canary although no rollout is in progress.")


def pin_weight_zero(ctx: DrillContext) -> None:
    """A destructive "fix": set the router's canary weight to 0 by hand, leaving the rollout as it is."""
    RouterClient.of(ctx.wb, router_url(ctx)).set_weight(0)


def truth(drill: Drill, ctx: DrillContext, *extra: Change) -> PostMortemTruth:
    """What the event log says about the drill's first rollout; ``extra`` are changes the drill itself finds."""
    rollout = ctx.fact("rollout")
    changes = [*evidence.rollout_changes(ctx, rollout), *extra]
    return rollout_truth(events.read(ctx.wb), rollout, str(ctx.fact("candidate")), **drill.known(ctx, changes))


GUARDS = [
    GradedCheck("users-served", guard_users_served, guard=True),
    GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
]
"""The guards of every rollout drill: users served through the router, nothing registered lost."""


def remember(ctx: DrillContext, rollout: str, stable: str, candidate: str) -> None:
    """Save the facts the rollout drills' checks read: the rollout, both versions, the audit log's fingerprint."""
    ctx.save_facts(
        rollout=rollout,
        stable=stable,
        candidate=candidate,
        versions=[stable, candidate],
        **common.audit_fingerprint(ctx.wb),
    )


class RolloutDrill(Drill):
    """A drill on the local rollout runtime: its services, a reset that stops the setup's controller too, and the
    post-mortem truth of its first rollout."""

    def services(self, ctx: DrillContext) -> list[str]:
        return rollouts.services(ctx)

    def reset(self, ctx: DrillContext) -> None:
        rollouts.reset(ctx)
        super().reset(ctx)

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        return truth(self, ctx)
