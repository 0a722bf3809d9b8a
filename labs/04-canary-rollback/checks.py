"""Checks for lab 04: the policy, the healthy promotion, the automatic rollback, the answer, the cleanup.

They read state on disk: the rollout event log, the registry (MLflow's client
on the sqlite store directly, since the lab stops the server), the registry
audit log and the service records.
"""

import json

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops_workbench import procs, settings
from mlops_workbench.labs.checks import Context, check, fail
from mlops_workbench.rollout import events, timeline
from mlops_workbench.rollout import policy as pol

SLACK_S = 5.0  # scrape and process lag allowed on top of the policy's own bound
SERVICES = ("rollout-stable", "rollout-canary", "rollout-router", "rollout-prometheus", "mlflow")


def _rollouts(ctx: Context) -> dict[str, list[dict]]:
    by_id: dict[str, list[dict]] = {}
    for e in events.read(ctx.home):
        by_id.setdefault(e.get("rollout") or "", []).append(e)
    return by_id


def _of_candidate(ctx: Context, version: str) -> list[list[dict]]:
    return [evs for evs in _rollouts(ctx).values()
            if any(e["type"] == "start" and str(e.get("candidate")) == str(version) for e in evs)]


def _production(ctx: Context, model: str) -> str | None:
    db = settings.layout(ctx.home).mlflow_db
    if not db.exists():
        fail(f"No registry at {db}: run the prerequisites cell (prepare.ensure_versions) first.")
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    try:
        return str(client.get_model_version_by_alias(model, "production").version)
    except MlflowException:
        return None


def _promoted(evs_list: list[list[dict]]) -> bool:
    return any(e["type"] == "decision" and e["decision"] == "promote" for evs in evs_list for e in evs)


def _never_promoted(ctx: Context, version: str) -> str:
    """Why ``version`` never became production, in the words of its rollout's last decision."""
    decisions = [e for evs in _of_candidate(ctx, version) for e in evs if e["type"] == "decision"]
    if not decisions:
        return f"v{version} was never promoted: no rollout of it reached a decision"
    last = decisions[-1]
    reason = str(last.get("reason", ""))
    cause = reason.split(":")[0] if ":" in reason else reason
    verb = {"abort": "aborted", "promote": "promoted"}.get(last["decision"], last["decision"])
    return f"v{version} was never promoted: the healthy rollout {verb} on {cause} ({reason})"


@check("policy-valid", points=2, cells=["write-policy"])
def policy_valid(ctx: Context) -> None:
    """policy.yaml is a valid policy with two weights and the three metric kinds."""
    path = ctx.workspace / "policy.yaml"
    if not path.is_file():
        fail(f"{path} does not exist: write your policy to policy.yaml in the cell 'write-policy'.")
    try:
        policy = pol.load(path)
    except pol.PolicyError as err:
        fail(str(err))
    if len(policy.weights) < 2 or max(policy.weights) > 50:
        fail(f"the steps set weights {policy.weights}: use 20 then 50 (never more than 50% on a canary here).")
    kinds = {m.kind for m in policy.analysis.metrics}
    if kinds != {"errorRate", "latencyP99", "predictionShift"}:
        fail(f"the analysis has metric kinds {sorted(kinds)}: add errorRate, latencyP99 and predictionShift.")
    if policy.detection_bound() > 30:
        fail(f"a fault would take up to {policy.detection_bound():.0f}s to abort: use 2s intervals and failureLimit 1.")


@check("healthy-promoted", points=3, cells=["healthy-rollout"])
def healthy_promoted(ctx: Context) -> None:
    """The healthy candidate was promoted by the controller and production points to it."""
    version, model = str(ctx.var("healthy_version")), ctx.var("model_name")
    runs = _of_candidate(ctx, version)
    if not runs:
        fail(f"no rollout of version {version} ran: run ops.start(policy, versions.candidate, ...) and make sure "
             "the load generator is running.")
    if not _promoted(runs):
        fail(_never_promoted(ctx, version) + ": read the measurements in the dashboard and run the rollout again.")
    if _production(ctx, model) != version:
        fail(f"production of {model} is not version {version}: the promotion did not reach the registry.")


@check("faulty-rolled-back", points=3, cells=["faulty-rollout"])
def faulty_rolled_back(ctx: Context) -> None:
    """The faulty release was rolled back automatically within the policy's bound."""
    version = str(ctx.var("faulty_version"))
    runs = [evs for evs in _of_candidate(ctx, version) if any(e["type"] == "fault" for e in evs)]
    if not runs:
        fail(f"no rollout of version {version} had a fault injected: call ops.inject_fault(...) while it runs.")
    evs = runs[-1]
    inc = timeline.incident(evs)
    if inc["decision"] != "abort":
        fail(f"the faulty rollout ended with {inc['decision']!r}, not an automatic abort: inject the fault while "
             "the canary takes traffic (after ops.wait_for_traffic()).")
    bound = inc["bound_s"] or 0.0
    if inc["time_to_restore_s"] is None or inc["time_to_restore_s"] > bound + SLACK_S:
        fail(f"canary weight went back to 0 {inc['time_to_restore_s']}s after the fault; the policy promises "
             f"{bound:.0f}s (+{SLACK_S:.0f}s lag): tighten interval/failureLimit.")


@check("alias-unchanged", points=2, hidden=True, cells=["faulty-rollout"])
def alias_unchanged(ctx: Context) -> None:
    """The rollback left production on the healthy version; the faulty one was never promoted."""
    model, healthy = ctx.var("model_name"), str(ctx.var("healthy_version"))
    faulty = str(ctx.var("faulty_version"))
    if _production(ctx, model) != healthy:
        if not _promoted(_of_candidate(ctx, healthy)):
            fail(_never_promoted(ctx, healthy) + ", so production never moved to it (the rollback is not to blame).")
        fail(f"production of {model} moved away from {healthy}: a rollback must not touch the aliases.")
    audit = settings.layout(ctx.home).audit_log()
    entries = [json.loads(line) for line in audit.read_text().splitlines() if line.strip()] if audit.exists() else []
    if any(e.get("version") == faulty and e.get("outcome") == "promoted" and e.get("model") == model for e in entries):
        fail(f"version {faulty} was promoted at some point: the faulty release must never reach an alias.")
    if not any(e.get("version") == healthy and e.get("approver") == "rollout-controller" for e in entries):
        fail("the audit log has no promotion by the rollout controller: promote through ops.start, not by hand.")


@check("incident-read", points=1, cells=["incident"])
def incident_read(ctx: Context) -> None:
    """time_to_restore and blast_share match the event log."""
    runs = [evs for evs in _rollouts(ctx).values() if any(e["type"] == "fault" for e in evs)]
    if not runs:
        fail("no incident in the event log yet: run the fault exercise first.")
    inc = timeline.incident(runs[-1])
    got_t, got_b = ctx.var("time_to_restore"), ctx.var("blast_share")
    if got_t is None or abs(float(got_t) - inc["time_to_restore_s"]) > 0.01:
        fail(f"time_to_restore is {got_t}, the log says {inc['time_to_restore_s']}: use incident['time_to_restore_s'].")
    if got_b is None or abs(float(got_b) - inc["blast_radius"]["canary_error_share"]) > 1e-6:
        fail("blast_share does not match: use incident['blast_radius']['canary_error_share'].")


@check("tradeoff-answer", points=2, cells=["tradeoff"])
def tradeoff_answer(ctx: Context) -> None:
    """The answer relates window and minimum sample size to detection speed and false alarms."""
    text = str(ctx.var("tradeoff_answer")).lower()
    missing = [what for what, words in {
        "the window": ("window",), "the minimum sample size": ("sample",),
        "detection speed": ("detect", "faster", "slower", "sooner", "later"),
        "false alarms": ("false", "alarm", "noise", "noisy"),
    }.items() if not any(w in text for w in words)]
    if len(text.split()) < 30 or missing:
        fail("explain in a few sentences (30+ words) how the window and the minimum sample size change detection "
             f"speed and false alarms; not covered yet: {', '.join(missing) or 'enough detail'}.")


@check("nothing-running", points=1, cells=["cleanup"])
def nothing_running(ctx: Context) -> None:
    """No process of the lab is left running."""
    left = [name for name in SERVICES if procs.get(name, ctx.home) is not None]
    if left:
        fail(f"still running: {', '.join(left)}: call ops.down() and tracking.down() in the cell 'cleanup'.")
