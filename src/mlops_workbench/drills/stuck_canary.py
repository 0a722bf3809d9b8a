"""Drill ``stuck-canary``: the rollout controller died mid-rollout; the canary is left taking traffic."""

from __future__ import annotations

from collections.abc import Callable

from mlops_workbench.drills import common, rollout_checks, rollouts
from mlops_workbench.drills.base import DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.incidents import record_truth
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.rollout import ops

ANALYSIS = {"interval": "2s", "initialDelay": "1s", "inconclusiveLimit": 100000, "consecutiveErrorLimit": 100000}
TRAFFIC = 60


class StuckCanary(rollout_checks.RolloutDrill):
    variants = rollouts.WEIGHTS
    spec = DrillSpec(
        name="stuck-canary",
        number=2,
        symptom="a rollout that stopped moving",
        root_cause=RootCause.CONTROLLER_DOWN,
        symptoms=[RootCause.ROLLOUT_STUCK],
        fixes=[Change.ROLLOUT_ABORTED],
        incident=True,
        minutes=10,
        brief=(
            "A rollout of `{model}` has shown the same canary weight on the dashboard for a long while, and "
            "`workbench rollout status` still calls it in progress. Bring the rollout to an end that is safe for "
            "users without dropping any of their requests, then file the post-mortem."
        ),
        hints=[
            "`workbench rollout status` shows the phase, the weight and whether anything still drives the rollout.",
            "Nobody analyses the canary's traffic any more. Ending a rollout by hand is an operator action of "
            "`workbench rollout` (it logs a decision); a weight set on the router by hand is not an ending.",
            "`workbench rollout abort --reason ...` (weight 0 first, then the canary stops), or `workbench rollout "
            "resume`. Post-mortem: `workbench rollout timeline`: onset is the drill's `fault` event, restore the "
            "canary's weight back to 0, the blast radius the canary's requests in between.",
        ],
        answer=(
            "Verify with `workbench rollout status`: Progressing, weight 25, controller_alive false. Nobody is "
            "analysing the canary's traffic, so either resume (a new controller continues from the saved state) "
            "or abort (weight 0 at once, canary stopped, aliases untouched). Never kill the router or stable: "
            "that drops every user. Root cause: configuration/operations (the controller ran unsupervised); "
            "prevent it by running the controller under a supervisor that resumes it."
        ),
    )

    def setup(self, ctx: DrillContext, variant: rollouts.CanaryVariant) -> None:
        stable, candidate, router = rollouts.versions(ctx, "direct")
        policy = rollouts.policy_yaml("1h", ANALYSIS, weight=variant.weight)
        proc, state = rollouts.start_controller(ctx, candidate, policy, "direct")
        proc.stop(grace=0)  # the controller dies without a word, as a crash would leave it
        rollouts.fault(ctx, state.id)
        common.send_traffic(router, TRAFFIC, seed=ctx.fact("seed"))
        rollout_checks.remember(ctx, state.id, stable, candidate)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("rollout-decided", rollout_checks.first_rollout_decided),
            GradedCheck("no-unwatched-canary", rollout_checks.no_unwatched_canary),
            *rollout_checks.GUARDS,
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        ops.abort(ctx.wb, reason="controller died at 25%: nobody analyses the canary; abort and roll out again")
        record_truth(self, ctx)

    def wrong_repairs(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "pin-canary-weight-0": rollout_checks.pin_weight_zero,
        }


DRILL = StuckCanary()
