"""Drill ``metrics-down``: Prometheus died during a canary. The rollout must not promote blind; the learner
restores the metrics source and decides on real measurements."""

from __future__ import annotations

from collections.abc import Callable

from mlops_workbench.drills import rollout_checks, rollouts
from mlops_workbench.drills.base import DrillContext, DrillError, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.incidents import record_truth
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.labs.checks import fail
from mlops_workbench.rollout import prometheus
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.rollout.events import MeasurementEvent

ANALYSIS = {
    "interval": "1s",
    "window": "3s",
    "initialDelay": "3s",
    "consecutiveErrorLimit": 3,
    "inconclusiveLimit": 100000,
}
RETRY_POLICY = rollouts.policy_yaml(
    "15s",
    {
        "interval": "3s",
        "window": "10s",
        "initialDelay": "3s",
        "failureLimit": 1,
        "consecutiveErrorLimit": 3,
        "inconclusiveLimit": 20,
    },
    min_sample=5,
    weight=50,
)
"""The policy of the repeated rollout. Its 15 s pause at 50% holds four measurements (every 3 s after 3 s); one
success and no failure is what promotion needs, so a longer pause would only keep the learner waiting."""
RPS = 20
REPEAT = (
    "bring the metrics source back, send traffic, and roll the candidate out again with the policy in the drill folder."
)
POLICY_FILE = "policy.yaml"
"""The policy the learner rolls the candidate out with again (the first rollout's is the setup's own)."""


class MetricsDown(rollout_checks.RolloutDrill):
    variants = rollouts.WEIGHTS
    spec = DrillSpec(
        name="metrics-down",
        number=6,
        symptom="a rollout that ended without a verdict",
        root_cause=RootCause.METRICS_SOURCE_DOWN,
        symptoms=[RootCause.ROLLOUT_STUCK],
        fixes=[Change.METRICS_RESTARTED, Change.ROLLOUT_REPEATED],
        incident=True,
        minutes=15,
        needs=["prometheus"],
        brief=(
            "During a canary of `{model}` the analysis panels of the rollout dashboard went blank, and the rollout "
            "ended without promoting the candidate or failing it on a measurement. The release still needs a "
            f"verdict based on real measurements; the rollout policy to use is `{POLICY_FILE}` in {{folder}}. Users "
            "must be served throughout. File the post-mortem of the first rollout."
        ),
        hints=[
            "`workbench rollout status` and the `measurement` events in <home>/rollout/events.jsonl: what did the "
            "analysis get instead of numbers?",
            "The analysis reads the metrics through a service of the local runtime that is no longer running. "
            "LocalBackend(model_name=MODEL, metrics='prometheus').up() starts whatever is missing.",
            "Then `workbench load --url <router> --rps 20 --duration 120 &` and `workbench rollout start --candidate "
            f"V --policy <drill folder>/{POLICY_FILE} --metrics prometheus --model MODEL`. Post-mortem: onset is the "
            "drill's `fault` event, restore the weight back to 0, the blast radius the canary's requests between.",
        ],
        answer=(
            "The analysis read errors, not numbers: Prometheus was down. Missing data never promotes: after "
            "consecutiveErrorLimit errors the rollout ended Inconclusive, weight 0, production untouched; that was "
            "right. Restore the source (Prometheus scraping router and servers again), check it answers, then run "
            "the rollout again so the decision rests on measurements. Promoting by hand while blind, or stopping "
            "everything, is never the fix. Root cause: configuration/infrastructure (the metrics pipeline)."
        ),
    )

    def setup(self, ctx: DrillContext, variant: rollouts.CanaryVariant) -> None:
        stable, candidate, router = rollouts.versions(ctx, "prometheus")
        policy = rollouts.policy_yaml("1h", ANALYSIS, weight=variant.weight)
        with rollouts.load(ctx, router, RPS, seed=ctx.fact("seed")):
            proc, state = rollouts.start_controller(ctx, candidate, policy, "prometheus")
            # Prometheus has data (a measurement that is not an error) before it goes down
            rollouts.wait_for(
                ctx, state.id, lambda e: isinstance(e, MeasurementEvent) and e.phase != MeasurementPhase.ERROR
            )
            current = st.load(ctx.wb)
            if current is None or current.done:
                raise DrillError(
                    f"setup went wrong: rollout {state.id} ended before the fault; see "
                    f"{ctx.folder / 'controller.log'} and start the drill again"
                )
            prometheus.down(ctx.wb)
            rollouts.fault(ctx, state.id)
            if proc.wait(timeout=120) is None:
                raise DrillError(
                    f"setup went wrong: rollout {state.id} did not end within 120s of the fault; see "
                    f"{ctx.folder / 'controller.log'} and start the drill again"
                )
        final = st.load(ctx.wb)
        if final is None or final.id != state.id or final.phase == st.RolloutPhase.PROMOTED:
            raise DrillError(f"setup went wrong: the rollout ended {final.phase if final else 'nowhere'}")
        (ctx.folder / POLICY_FILE).write_text(RETRY_POLICY)
        rollout_checks.remember(ctx, state.id, stable, candidate)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("never-promoted-blind", rollout_checks.guard_never_blind),
            GradedCheck("metrics-restored", _metrics_restored),
            GradedCheck("decided-on-data", rollout_checks.decided_again("prometheus", REPEAT)),
            *rollout_checks.GUARDS,
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        rollouts.roll_out_again(ctx, ctx.folder / POLICY_FILE, "prometheus", RPS)
        record_truth(self, ctx)

    def wrong_repairs(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "promote-blind": rollout_checks.promote_blind,
        }


def _metrics_restored(ctx: DrillContext) -> None:
    """Prometheus runs and scrapes the router again."""
    url = prometheus.url(ctx.wb)
    if url is None:
        fail(
            "Prometheus is not running: the analysis has no data source. Start it again (LocalBackend(..., "
            "metrics='prometheus').up())."
        )
    try:
        result = prometheus.query(url, 'up{job="router"}', timeout=5)
    except prometheus.PrometheusError as exc:
        fail(f"Prometheus at {url} does not answer ({type(exc.__cause__ or exc).__name__}).")
    values = [float(r["value"][1]) for r in result]
    if not values or max(values) < 1:
        fail(f'Prometheus at {url} does not scrape the router (up{{job="router"}} = {values}).')


DRILL = MetricsDown()
