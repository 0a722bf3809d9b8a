"""Checks for lab 04: the policy, the learner's error-rate decision, the replay experiment, the live rollouts, the cleanup.

They read state on disk: policy.yaml and error_rate.py in the workspace (replayed and
tested on planted windows here, with no server), the rollout event log, the registry (MLflow's client
on the sqlite store directly, since the lab stops the server), the registry
audit log and the service records.
"""

import json

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops_workbench import procs, settings
from mlops_workbench.labs.checks import Context, check, fail, learner_function
from mlops_workbench.rollout import events, replay, timeline
from mlops_workbench.rollout import policy as pol

MIN_SAMPLE_FLOOR = 20  # below this one error out of a handful is a huge rate
SAMPLE_MARGIN = 1.2  # the expected sample must clear the minimum by this factor, or Poisson noise starves it
FAULT_AT = 4.0  # seconds into the replayed rollout when the fault starts
HEALTHY_SEEDS = range(101, 107)
FAULTY_SEEDS = range(201, 204)
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


def _policy(ctx: Context) -> pol.Policy:
    path = ctx.workspace / "policy.yaml"
    if not path.is_file():
        fail(f"{path} does not exist: write your policy to policy.yaml in the cell 'write-policy'.")
    try:
        return pol.load(path)
    except pol.PolicyError as err:
        fail(str(err))


def _rps(ctx: Context) -> float:
    return float(ctx.var("rps", 60))


@check("policy-valid", points=2, cells=["write-policy"])
def policy_valid(ctx: Context) -> None:
    """policy.yaml is valid: a real 5% first step, the three metric kinds, a minimum sample, a bound of 30s or less."""
    policy = _policy(ctx)
    if not policy.weights or policy.weights[0] != 5 or max(policy.weights) > 50:
        fail(f"the steps set weights {policy.weights}: start with setWeight: 5 (a real 5% canary), then a larger "
             "step of at most 50, each followed by a pause.")
    kinds = {m.kind for m in policy.analysis.metrics}
    if kinds != {"errorRate", "latencyP99", "predictionShift"}:
        fail(f"the analysis has metric kinds {sorted(kinds)}: add errorRate, latencyP99 and predictionShift.")
    small = {m.name: m.min_sample_size or policy.analysis.min_sample_size for m in policy.analysis.metrics}
    small = {name: n for name, n in small.items() if n < MIN_SAMPLE_FLOOR}
    if small:
        fail(f"minimum sample {small} is below {MIN_SAMPLE_FLOOR}: with a handful of requests one error is a huge rate "
             f"and healthy canaries get aborted; set analysis.minSampleSize to at least {MIN_SAMPLE_FLOOR}.")
    if policy.detection_bound() > 30:
        fail(f"a fault would take up to {policy.detection_bound():.0f}s to abort: shorten interval, window or "
             "initialDelay, or lower failureLimit (bound = initialDelay + interval x (failureLimit+1) + window).")


@check("sample-arithmetic", points=1, cells=["write-policy"])
def sample_arithmetic(ctx: Context) -> None:
    """canary_per_window is the expected canary requests of the shortest window at 5%, and it fills every minimum."""
    policy, rps = _policy(ctx), _rps(ctx)
    shortest = min(m.lookback for m in policy.analysis.metrics)
    expected = replay.expected_canary_requests(rps, policy.weights[0] if policy.weights else 0, shortest)
    got = ctx.var("canary_per_window")
    if not isinstance(got, (int, float)) or abs(float(got) - expected) > 1e-6 * max(1.0, expected):
        fail(f"canary_per_window is {got!r}; at {rps:g} rps, weight {policy.weights[:1]}% and your shortest window "
             f"{shortest:g}s it is rps x weight/100 x window = {expected:g}: compute it from those three numbers.")
    needed = max(m.min_sample_size or policy.analysis.min_sample_size for m in policy.analysis.metrics)
    if expected < needed * SAMPLE_MARGIN:
        fail(f"a {shortest:g}s window at 5% holds about {expected:g} canary requests, too close to (or below) the "
             f"minimum sample {needed}: every measurement at 5% would be inconclusive. Lengthen the window, raise rps "
             f"or lower minSampleSize so that rps x weight x window >= {SAMPLE_MARGIN:g} x minSampleSize.")


def _decision(ctx: Context):
    return learner_function(ctx, "error_rate.py", "decide", "write-decision")


def _judge(decide, case: tuple) -> str:
    try:
        return decide(*case)
    except Exception as err:
        fail(f"decide{case} raised {type(err).__name__}: {err}. It must return 'successful', 'failed' or 'inconclusive'.")


# (canary errors, canary requests, stable errors, stable requests, max rate, alpha, min sample), wanted, fix
BASIC = [
    ((1, 100, 2, 1000, 0.02, 0.05, 20), "successful", "a canary rate at or below max_rate is 'successful'"),
    ((30, 100, 5, 1000, 0.02, 0.05, 20), "failed",
     "30% errors against stable's 0.5% must fail: test canary against stable and fail when p < alpha"),
]
PLANTED = [
    ((1, 3, 2, 1000, 0.02, 0.05, 20), "inconclusive",
     "3 canary requests are below min_sample 20: check canary_requests < min_sample first and return 'inconclusive'"),
    ((0, 5, 0, 1000, 0.02, 0.05, 20), "inconclusive",
     "5 canary requests with no errors are still below min_sample 20: too few to call it 'successful'"),
    ((3, 100, 25, 1000, 0.02, 0.05, 20), "inconclusive",
     "3% on the canary against 2.5% on stable is above max_rate but no worse than stable: fail only when the "
     "Fisher exact test against stable gives p < alpha, else return 'inconclusive'"),
    ((10, 400, 100, 1000, 0.02, 0.05, 20), "inconclusive",
     "a canary at 2.5% against stable at 10% is better than stable: use a one-sided test "
     "(fisher_exact(..., alternative='greater')), not a two-sided one"),
    ((5, 100, 15, 1000, 0.02, 0.01, 20), "inconclusive",
     "with alpha=0.01 a p-value of about 0.03 is not significant: compare p with the alpha argument, not 0.05"),
    ((5, 100, 15, 1000, 0.02, 0.05, 20), "failed",
     "5/100 against 15/1000 gives p of about 0.03 < alpha 0.05: that must fail"),
]


@check("decision-written", points=1, cells=["write-decision"])
def decision_written(ctx: Context) -> None:
    """The error-rate decision passes a healthy window and fails an obviously broken one."""
    decide = _decision(ctx)
    for case, wanted, fix in BASIC:
        got = _judge(decide, case)
        if got != wanted:
            fail(f"decide{case} returned {got!r}, expected {wanted!r}: {fix}.")


@check("decision-planted", points=3, hidden=True, cells=["write-decision"])
def decision_planted(ctx: Context) -> None:
    """On planted windows: minimum sample, one-sided Fisher test against stable, the given alpha."""
    decide = _decision(ctx)
    for case, wanted, fix in PLANTED:
        got = _judge(decide, case)
        if got != wanted:
            fail(f"decide(canary {case[0]}/{case[1]}, stable {case[2]}/{case[3]}, max_rate={case[4]}, alpha={case[5]}, "
                 f"min_sample={case[6]}) returned {got!r}, expected {wanted!r}: {fix}.")


@check("replay-no-false-abort", points=2, cells=["replay"])
def replay_no_false_abort(ctx: Context) -> None:
    """Seeded healthy traffic replayed through the policy is promoted every time."""
    policy = _policy(ctx)
    for r in replay.replay_many(policy, replay.Traffic(rps=_rps(ctx)), HEALTHY_SEEDS):
        if r.outcome != "promote":
            hint = ("the minimum sample does not fill within the window at 5%: lengthen the window or lower "
                    "minSampleSize" if "inconclusive" in r.reason else "the analysis is too jumpy for healthy noise: "
                    "raise minSampleSize or failureLimit")
            fail(f"healthy traffic (seed {r.seed}) was aborted at {r.ended_at:g}s: {r.reason}. Fix: {hint}.")


@check("replay-detects-fault", points=2, cells=["replay"])
def replay_detects_fault(ctx: Context) -> None:
    """Seeded faulty traffic replayed through the policy is aborted within the policy's own bound."""
    policy = _policy(ctx)
    traffic = replay.Traffic(rps=_rps(ctx), fault_error_rate=float(ctx.var("fault_error_rate", 0.3)), fault_at=FAULT_AT)
    for r in replay.replay_many(policy, traffic, FAULTY_SEEDS):
        if r.outcome == "promote":
            fail(f"a canary erring {traffic.fault_error_rate:.0%} from {FAULT_AT:g}s on was promoted (seed {r.seed}): "
                 "the steps end before the analysis can fail, or the errorRate max is too loose; pause longer or "
                 "lower condition.max.")
        if not r.detected_in_bound:
            fail(f"the fault (seed {r.seed}) was aborted {r.time_to_abort}s after it started ({r.reason}), beyond the "
                 f"policy's bound of {r.bound:g}s: the analysis aborted for another reason or too late.")


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
        fail(f"the faulty rollout ended with {inc['decision']!r}, not an automatic abort: {_why_not_aborted(ctx, evs)}")
    bound = inc["bound_s"] or 0.0
    if inc["time_to_restore_s"] is None or inc["time_to_restore_s"] > bound + SLACK_S:
        fail(f"canary weight went back to 0 {inc['time_to_restore_s']}s after the fault; the policy promises "
             f"{bound:.0f}s (+{SLACK_S:.0f}s lag): tighten interval/failureLimit.")


def _why_not_aborted(ctx: Context, evs: list[dict]) -> str:
    """Blame the policy when it cannot catch this fault at all, else the fault's timing."""
    rate = float(ctx.var("fault_error_rate", 0.3))
    policy = _policy(ctx)
    loose = [m for m in policy.analysis.metrics if m.kind == "errorRate" and float(m.condition.max or 0) >= rate]
    if loose:
        return (f"the errorRate threshold condition.max = {loose[0].condition.max} is at or above the injected error "
                f"rate {rate:g}, so no measurement can ever fail: lower it (e.g. 0.02).")
    caught = replay.replay_many(policy, replay.Traffic(rps=_rps(ctx), fault_error_rate=rate, fault_at=FAULT_AT),
                                FAULTY_SEEDS)
    if any(r.outcome == "promote" for r in caught):
        return ("your policy promotes this fault even in the replay (see the check 'replay-detects-fault'): lower "
                "condition.max or failureLimit, or pause longer so the analysis can fail before the steps end.")
    return "inject the fault while the canary takes traffic (after ops.wait_for_traffic()), not after the rollout ended."


@check("decision-used", points=1, hidden=True, cells=["faulty-rollout"])
def decision_used(ctx: Context) -> None:
    """The controller judged the faulty rollout's error rate with the learner's own decision."""
    version = str(ctx.var("faulty_version"))
    runs = [evs for evs in _of_candidate(ctx, version) if any(e["type"] == "fault" for e in evs)]
    measured = [e for evs in runs[-1:] for e in evs if e["type"] == "measurement" and e.get("kind") == "errorRate"]
    if not measured:
        fail("the faulty rollout has no error-rate measurement: run the cell 'faulty-rollout'.")
    if not any("custom decision error_rate.decide" in str(e.get("message")) for e in measured):
        fail("the controller judged the error rate with the built-in test, not yours: install it with "
             "analysis.use_error_rate_decision(decide) (the cell after 'write-decision') before the rollouts.")


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


@check("nothing-running", points=1, cells=["cleanup"])
def nothing_running(ctx: Context) -> None:
    """No process of the lab is left running."""
    left = [name for name in SERVICES if procs.get(name, ctx.home) is not None]
    if left:
        fail(f"still running: {', '.join(left)}: call ops.down() and tracking.down() in the cell 'cleanup'.")
