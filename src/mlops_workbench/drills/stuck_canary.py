"""Drill ``stuck-canary``: the rollout controller died mid-rollout; the canary is left taking traffic."""

from __future__ import annotations

import os
import signal
from typing import Callable

from mlops_workbench import procs
from mlops_workbench.drills import common, rollouts
from mlops_workbench.drills.bad_model import record_truth
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck, delete_model
from mlops_workbench.drills.postmortem import rollout_truth
from mlops_workbench.drills.spec import DrillSpec, PostMortemTruth
from mlops_workbench.labs.checks import fail
from mlops_workbench.rollout import events, ops
from mlops_workbench.rollout import state as st
from mlops_workbench.serving.client import RouterClient

POLICY = rollouts.policy_yaml("1h", {"interval": "2s", "initialDelay": "1s", "inconclusiveLimit": 100000,
                                     "consecutiveErrorLimit": 100000})
TRAFFIC = 60


class StuckCanary(Drill):
    spec = DrillSpec(
        name="stuck-canary",
        title="A canary stuck mid-rollout after its controller died",
        category="config",
        incident=True,
        minutes=10,
        brief=(
            "A rollout of `drill-stuck-canary` has been sitting at 25% canary for a while and nobody is watching "
            "it: the controller process is gone. Bring the rollout to a safe end (resume it or abort it) without "
            "dropping users' requests, then file the post-mortem."
        ),
        hints=[
            "`workbench rollout status` shows the phase, the weight and whether a controller is alive.",
            "`workbench rollout abort --reason ...` ends an unattended rollout safely (weight 0 first, then the "
            "canary stops); `workbench rollout resume` continues it under a new controller.",
            "Post-mortem: `workbench rollout timeline` or timeline/events: onset is the drill's `fault` event; "
            "restore is the canary's weight back to 0; blast radius is the canary's requests in between.",
        ],
        answer=(
            "Verify with `workbench rollout status`: Progressing, weight 25, controller_alive false. Nobody is "
            "analysing the canary's traffic, so either resume (a new controller continues from the saved state) "
            "or abort (weight 0 at once, canary stopped, aliases untouched). Never kill the router or stable: "
            "that drops every user. Root cause: configuration/operations (the controller ran unsupervised); "
            "prevent it by running the controller under a supervisor that resumes it."
        ),
    )

    def services(self, ctx: DrillContext) -> list[str]:
        return rollouts.services(ctx)

    def setup(self, ctx: DrillContext) -> None:
        stable, candidate = rollouts.versions(ctx)
        proc, state = rollouts.start_controller(ctx, candidate, POLICY, "direct")
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        rollouts.fault(ctx, state.id, "controller killed")
        common.send_traffic(procs.get("rollout-router", ctx.home).url, TRAFFIC, seed=3)
        ctx.save_facts(rollout=state.id, stable=stable, candidate=candidate, versions=[stable, candidate],
                       **common.audit_fingerprint(ctx.home))

    def reset(self, ctx: DrillContext) -> None:
        rollouts.reset(ctx)
        super().reset(ctx)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("rollout-decided", _decided),
            GradedCheck("no-unwatched-canary", _no_unwatched_canary),
            GradedCheck("users-served", rollouts.guard_users_served, guard=True),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        ops.abort(ctx.home, reason="controller died at 25%: nobody analyses the canary; abort and roll out again")
        record_truth(self, ctx)

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "stop-every-service": lambda ctx: procs.stop_all(ctx.home) and None,
            "pin-canary-weight-0": lambda ctx: RouterClient(rollouts.router_url(ctx), home=ctx.home).set_weight(0) and None,
            "delete-the-registered-model": delete_model,
        }

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        return rollout_truth(events.read(ctx.home), ctx.fact("rollout"), "config")


def _decided(ctx: DrillContext) -> None:
    """The stuck rollout reached a decision (abort, or promote after a resumed analysis)."""
    rollout = ctx.fact("rollout")
    evs = events.read(ctx.home, rollout=rollout)
    onset = next((e["t"] for e in evs if e["type"] == "fault"), None)
    if not any(e["type"] == "decision" and onset is not None and e["t"] > onset for e in evs):
        fail(f"Rollout {rollout} never reached a decision after its controller died: resume it "
             "(`workbench rollout resume`) or abort it (`workbench rollout abort --reason ...`).")


def _no_unwatched_canary(ctx: DrillContext) -> None:
    """No canary takes traffic without a live controller."""
    state = st.load(ctx.home)
    if state is not None and not state.done and not st.controller_alive(state):
        fail(f"Rollout {state.id} is {state.phase} at {state.weight:g}% with no live controller: nobody watches "
             "the canary. Setting the weight by hand is not an ending; abort or resume the rollout.")
    if rollouts.router_weight(ctx) > 0 and (state is None or state.done):
        fail("The router still sends traffic to a canary although no rollout is in progress.")


DRILL = StuckCanary()
