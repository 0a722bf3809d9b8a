"""Drill ``metrics-down``: Prometheus died during a canary. The rollout must not promote blind; the learner
restores the metrics source and decides on real measurements."""

from __future__ import annotations

from typing import Callable

import httpx

from mlops_workbench import procs, registry
from mlops_workbench.drills import common, rollouts
from mlops_workbench.drills.bad_model import record_truth
from mlops_workbench.drills.base import SETUP_APPROVER, Drill, DrillContext, DrillError, GradedCheck, delete_model
from mlops_workbench.drills.postmortem import rollout_truth
from mlops_workbench.drills.spec import DrillSpec, PostMortemTruth
from mlops_workbench.labs.checks import fail
from mlops_workbench.rollout import events, ops, prometheus
from mlops_workbench.rollout import policy as pol
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.backends.local import STABLE, LocalBackend
from mlops_workbench.serving.client import ModelServerClient

POLICY = rollouts.policy_yaml("1h", {"interval": "1s", "window": "3s", "initialDelay": "3s",
                                     "consecutiveErrorLimit": 3, "inconclusiveLimit": 100000})
RETRY_POLICY = rollouts.policy_yaml("30s", {"interval": "3s", "window": "10s", "initialDelay": "3s", "failureLimit": 1,
                                            "consecutiveErrorLimit": 3, "inconclusiveLimit": 20},
                                   min_sample=5, weight=50)
RPS = 20


class MetricsDown(Drill):
    spec = DrillSpec(
        name="metrics-down",
        title="Metrics missing during a canary (Prometheus down)",
        category="config",
        incident=True,
        minutes=15,
        needs=["prometheus"],
        brief=(
            "During a canary of `drill-metrics-down` the analysis stopped getting data and the rollout ended "
            "without promoting. Find out why, restore the metrics source, and decide about the candidate on real "
            "measurements (roll it out again under analysis: `retry-policy.yaml` is in the drill folder). Users must "
            "be served throughout. File the post-mortem of the first rollout."
        ),
        hints=[
            "`workbench rollout status` and the `measurement` events in <home>/rollout/events.jsonl: errors "
            "'Prometheus ... did not answer'.",
            "LocalBackend(model_name='drill-metrics-down', metrics='prometheus').up() starts what is missing, "
            "Prometheus included; then `workbench load --url <router> --rps 20 --duration 120 &` and "
            "`workbench rollout start --candidate V --policy <drill folder>/retry-policy.yaml --metrics prometheus "
            "--model drill-metrics-down`.",
            "Post-mortem: onset is the drill's `fault` event; the controller's own decision detected it; restore "
            "is the weight back to 0; blast radius counts the canary's requests in between.",
        ],
        answer=(
            "The analysis read errors, not numbers: Prometheus was down. Missing data never promotes: after "
            "consecutiveErrorLimit errors the rollout ended Inconclusive, weight 0, production untouched; that was "
            "right. Restore the source (Prometheus scraping router and servers again), check it answers, then run "
            "the rollout again so the decision rests on measurements. Promoting by hand while blind, or stopping "
            "everything, is never the fix. Root cause: configuration/infrastructure (the metrics pipeline)."
        ),
    )

    def services(self, ctx: DrillContext) -> list[str]:
        return rollouts.services(ctx)

    def setup(self, ctx: DrillContext) -> None:
        stable, candidate = rollouts.versions(ctx)
        LocalBackend(ctx.home, model_name=ctx.model_name, metrics="prometheus").up()
        with rollouts.load(ctx, procs.get("rollout-router", ctx.home).url, RPS, seed=5):
            proc, state = rollouts.start_controller(ctx, candidate, POLICY, "prometheus")
            # Prometheus has data (a measurement that is not an error) before it goes down
            _wait_for(ctx, state.id, lambda e: e["type"] == "measurement" and e.get("phase") != "error")
            if st.load(ctx.home).done:
                raise DrillError(f"setup went wrong: rollout {state.id} ended before the fault; see "
                                 f"{ctx.folder / 'controller.log'} and start the drill again")
            prometheus.down(ctx.home)
            rollouts.fault(ctx, state.id, "prometheus stopped")
            proc.wait(timeout=120)
        final = st.load(ctx.home)
        if final is None or final.id != state.id or final.phase == st.RolloutPhase.PROMOTED:
            raise DrillError(f"setup went wrong: the rollout ended {final.phase if final else 'nowhere'}")
        (ctx.folder / "retry-policy.yaml").write_text(RETRY_POLICY)
        ctx.save_facts(rollout=state.id, stable=stable, candidate=candidate, versions=[stable, candidate],
                       **common.audit_fingerprint(ctx.home))

    def reset(self, ctx: DrillContext) -> None:
        rollouts.reset(ctx)
        super().reset(ctx)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("never-promoted-blind", _never_blind),
            GradedCheck("metrics-restored", _metrics_restored),
            GradedCheck("decided-on-data", _decided_on_data),
            GradedCheck("users-served", rollouts.guard_users_served, guard=True),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        router = LocalBackend(ctx.home, model_name=ctx.model_name, metrics="prometheus").up()
        with rollouts.load(ctx, router, RPS, seed=6):
            ops.start(pol.load(ctx.folder / "retry-policy.yaml"), ctx.fact("candidate"), home=ctx.home,
                      metrics="prometheus", model_name=ctx.model_name)
        record_truth(self, ctx)

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "stop-every-service": lambda ctx: procs.stop_all(ctx.home) and None,
            "promote-blind": _promote_blind,
            "delete-the-registered-model": delete_model,
        }

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        return rollout_truth(events.read(ctx.home), ctx.fact("rollout"), "config")


def _wait_for(ctx: DrillContext, rollout: str, pred, timeout: float = 60.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(pred(e) for e in events.read(ctx.home, rollout=rollout)):
            return
        time.sleep(0.2)
    raise DrillError(f"rollout {rollout}: the expected event did not come within {timeout:.0f}s")


def _later_rollouts(ctx: DrillContext) -> dict[str, list[dict]]:
    first = ctx.fact("rollout")
    by_id: dict[str, list[dict]] = {}
    seen_first = False
    for e in events.read(ctx.home):
        seen_first = seen_first or e.get("rollout") == first
        if seen_first and e.get("rollout") not in (None, first):
            by_id.setdefault(e["rollout"], []).append(e)
    return by_id


def _never_blind(ctx: DrillContext) -> None:
    """Production moved to the candidate only through a rollout that measured it."""
    current = common.production(ctx)
    if current != str(ctx.fact("candidate")):
        return
    for evs in _later_rollouts(ctx).values():
        measured = any(e["type"] == "measurement" and e.get("phase") == "successful" for e in evs)
        if measured and any(e["type"] == "decision" and e.get("decision") == "promote" for e in evs):
            return
    fail(f"Production is v{current}, the candidate, but no rollout measured it successfully: a promotion while "
         "the metrics are missing is blind. Roll back and let an analysed rollout decide.")


def _metrics_restored(ctx: DrillContext) -> None:
    """Prometheus runs and scrapes the router again."""
    url = prometheus.url(ctx.home)
    if url is None:
        fail("Prometheus is not running: the analysis has no data source. Start it again (LocalBackend(..., "
             "metrics='prometheus').up()).")
    try:
        result = httpx.get(f"{url}/api/v1/query", params={"query": 'up{job="router"}'}, timeout=5).json()
    except httpx.HTTPError as exc:
        fail(f"Prometheus at {url} does not answer ({type(exc).__name__}).")
    values = [float(r["value"][1]) for r in result.get("data", {}).get("result", [])]
    if not values or max(values) < 1:
        fail(f"Prometheus at {url} does not scrape the router (up{{job=\"router\"}} = {values}).")


def _decided_on_data(ctx: DrillContext) -> None:
    """A rollout of the candidate after the incident reached a decision on Prometheus measurements."""
    for evs in _later_rollouts(ctx).values():
        real = [e for e in evs if e["type"] == "measurement" and e.get("source") == "prometheus"
                and e.get("phase") in ("successful", "failed")]
        if real and any(e["type"] == "decision" for e in evs):
            return
    fail("No rollout since the incident decided on real Prometheus measurements: restore Prometheus, send "
         "traffic, and roll the candidate out again with the retry policy.")


def _promote_blind(ctx: DrillContext) -> None:
    candidate = str(ctx.fact("candidate"))
    registry.promote(ctx.model_name, candidate, alias="staging", approver=SETUP_APPROVER, reason="ship it", home=ctx.home)
    registry.promote(ctx.model_name, candidate, alias="production", approver=SETUP_APPROVER, reason="metrics are "
                     "down but it looked fine", home=ctx.home)
    stable = procs.get(STABLE, ctx.home)
    assert stable is not None
    ModelServerClient(stable.url, home=ctx.home).reload()


DRILL = MetricsDown()
