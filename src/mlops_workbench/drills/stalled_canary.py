"""Drill ``stalled-canary``: a rollout whose analysis can never conclude (its policy asks for more canary requests
per window than the canary can get), so it sits at its first weight forever, its controller alive and well.
Aborting it stops the symptom only: the repair corrects the policy and rolls the candidate out again, to a
decision taken on real measurements."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import Field

from mlops_workbench.drills import rollout_checks, rollouts
from mlops_workbench.drills.base import DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.evidence import decided_on_data, later_rollouts
from mlops_workbench.drills.incidents import record_truth
from mlops_workbench.drills.postmortem_spec import PostMortemTruth
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.rollout import ops
from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.rollout.events import MeasurementEvent

POLICY_FILE = "policy.yaml"
RPS = 20
ANALYSIS = {
    "interval": "2s",
    "window": "4s",
    "initialDelay": "1s",
    "inconclusiveLimit": 100000,
    "consecutiveErrorLimit": 100000,
}
CORRECTED = rollouts.policy_yaml(
    "12s",
    {"interval": "2s", "window": "6s", "initialDelay": "2s", "failureLimit": 1, "inconclusiveLimit": 20},
    min_sample=5,
    weight=50,
)
"""A policy the canary can satisfy at :data:`RPS`: the reference repair's. Its 12 s pause holds five
measurements (every 2 s after 2 s), each window about 60 canary requests against the 5 it asks for."""


class Unreachable(Variant):
    """The setting that asks for more than the canary gets."""

    weight: float = Field(gt=0, lt=100)
    min_sample: int = Field(ge=1, description="analysis.minSampleSize")
    metric_min_sample: int | None = Field(None, description="the metric's own minSampleSize, which overrides it")

    def policy(self) -> str:
        metric: dict[str, Any] = {**ANALYSIS}
        if self.metric_min_sample is not None:
            metric["minSampleSize"] = self.metric_min_sample
        return rollouts.policy_yaml("1h", metric, min_sample=self.min_sample, weight=self.weight)


class StalledCanary(rollout_checks.RolloutDrill):
    variants = (
        Unreachable(key="analysis-sample-size", weight=25, min_sample=5000),
        Unreachable(key="metric-sample-size", weight=25, min_sample=10, metric_min_sample=2000),
        Unreachable(key="canary-weight", weight=1, min_sample=10),
    )
    spec = DrillSpec(
        name="stalled-canary",
        number=8,
        symptom="a canary that never finishes",
        root_cause=RootCause.ANALYSIS_CONFIG,
        symptoms=[RootCause.ROLLOUT_STUCK],
        fixes=[Change.ROLLOUT_ABORTED, Change.POLICY_CORRECTED, Change.ROLLOUT_REPEATED],
        incident=True,
        minutes=20,
        brief=(
            "A rollout of `{model}` started a while ago and still sits at its first canary weight; its controller "
            f"runs and `workbench rollout status` calls it in progress. The rollout policy is `{POLICY_FILE}` in "
            "{folder}. The release still needs a verdict based on real measurements. Users must be served "
            "throughout. File the post-mortem of the rollout that did not finish."
        ),
        hints=[
            "Read the `measurement` events of the rollout in <home>/rollout/events.jsonl (or `workbench rollout "
            "timeline`): what does each measurement say about the window it judged?",
            "Every measurement is inconclusive: compare the canary requests a window holds (router traffic x canary "
            "weight x window) with what the policy asks for. Ending this rollout is not enough: the next one would "
            "stall the same way.",
            "`workbench rollout abort --reason ...`, correct the weight or the minSampleSize in the policy, then "
            "`workbench load --url <router> --rps 20 --duration 120 &` and `workbench rollout start --candidate V "
            f"--policy <drill folder>/{POLICY_FILE} --metrics direct --model MODEL`.",
        ],
        answer=(
            "Every measurement was inconclusive: the policy asked for more canary requests per window than the "
            "canary could ever get (a huge minSampleSize, at the analysis or the metric level, or a 1% canary). "
            "Missing data never promotes, so the rollout waited. Aborting stops the exposure but leaves the cause: "
            "correct the policy (a sample size the canary's share of traffic fills within a window), roll out "
            "again under traffic and let the measurements decide. Prevent it: check a policy's minimum sample "
            "against the expected traffic before it ships (a dry run on recorded traffic)."
        ),
    )

    def setup(self, ctx: DrillContext, variant: Unreachable) -> None:
        stable, candidate, router = rollouts.versions(ctx, "direct")
        with rollouts.load(ctx, router, RPS, seed=ctx.fact("seed")):
            _, state = rollouts.start_controller(ctx, candidate, variant.policy(), "direct", policy_file=POLICY_FILE)
            rollouts.fault(ctx, state.id)
            rollouts.wait_for(
                ctx,
                state.id,
                lambda e: isinstance(e, MeasurementEvent) and e.phase == MeasurementPhase.INCONCLUSIVE,
                timeout=90,
            )
        rollout_checks.remember(ctx, state.id, stable, candidate)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("rollout-decided", rollout_checks.first_rollout_decided),
            GradedCheck("no-unwatched-canary", rollout_checks.no_unwatched_canary),
            GradedCheck("decided-on-data", rollout_checks.decided_again(None, REPEAT)),
            GradedCheck("never-promoted-blind", rollout_checks.guard_never_blind, guard=True),
            *rollout_checks.GUARDS,
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        _abort(ctx)
        (ctx.folder / POLICY_FILE).write_text(CORRECTED)
        rollouts.roll_out_again(ctx, ctx.folder / POLICY_FILE, "direct", RPS)
        record_truth(self, ctx)

    def wrong_repairs(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "abort-only": _abort,
            "promote-blind": rollout_checks.promote_blind,
        }

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        later = later_rollouts(ctx, ctx.fact("rollout")).values()
        corrected = [Change.POLICY_CORRECTED] if any(decided_on_data(evs) for evs in later) else []
        return rollout_checks.truth(self, ctx, *corrected)


REPEAT = (
    f"correct what the policy asks of the canary ({POLICY_FILE}), send traffic, and roll the candidate out "
    "again with it."
)


def _abort(ctx: DrillContext) -> None:
    ops.abort(ctx.wb, reason="the analysis never concludes: every window is inconclusive", wait_s=30)


DRILL = StalledCanary()
