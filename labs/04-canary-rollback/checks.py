"""Checks for lab 04: the policy, the learner's error-rate decision, the replay experiment, the learner's rollout
loop, the live rollouts, the incident, the cleanup.

They read state on disk: policy.yaml, error_rate.py and canary.py in the workspace (replayed, tested on planted
windows and run on the simulated runtime here, with no server), the registry (MLflow's client on the sqlite store
directly, since the lab stops the server) and its audit log, and the service records. The hidden check
'loop-live' runs the learner's loop against real servers: hidden healthy, erring, slow and late-failing candidates.
"""

import random

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops_workbench import procs, settings
from mlops_workbench.labs.checks import Context, check, fail, learner_function
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditOutcome
from mlops_workbench.rollout import policy as pol
from mlops_workbench.rollout import replay, sim, trial

MIN_SAMPLE_FLOOR = 20  # below this one error out of a handful is a huge rate
SAMPLE_MARGIN = 1.2  # the expected sample must clear the minimum by this factor, or Poisson noise starves it
FAULT_AT = 4.0  # seconds into the replayed rollout when the fault starts
SLO_DETECT_S = 30  # the brief's SLO: a broken release is out of traffic within 30 s
SLO_MUST_CATCH = (0.1, 0.4)  # ... when it fails this fraction of its requests (hidden replays draw from it)
SLACK_S = trial.SLACK_S
SERVICES = ("rollout-stable", "rollout-canary", "rollout-router", "rollout-prometheus", "mlflow")


def _production(ctx: Context, model: str) -> str | None:
    db = settings.layout(ctx.home).mlflow_db
    if not db.exists():
        fail(f"No registry at {db}: run the prerequisites cell (prepare.ensure_versions) first.")
    client = MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")
    try:
        return str(client.get_model_version_by_alias(model, "production").version)
    except MlflowException:
        return None


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
    """policy.yaml is valid: a real 5% first step, timed pauses, the three metric kinds, a minimum sample, the SLO's
    detection time."""
    policy = _policy(ctx)
    if not policy.weights or policy.weights[0] != 5 or max(policy.weights) > 50:
        fail(
            f"the steps set weights {policy.weights}: start with setWeight: 5 (a real 5% canary), then a larger "
            "step of at most 50, each followed by a pause."
        )
    held = policy.indefinite_pauses
    if held:
        fail(
            f"step(s) {held} pause without a duration: such a pause holds until an operator runs `workbench rollout "
            "continue`, and this lab's rollouts run unattended; give each pause a duration (e.g. duration: 30s)."
        )
    kinds = {m.kind for m in policy.analysis.metrics}
    if kinds != {"errorRate", "latencyP99", "predictionShift"}:
        fail(f"the analysis has metric kinds {sorted(kinds)}: add errorRate, latencyP99 and predictionShift.")
    small = {m.name: m.min_sample_size or policy.analysis.min_sample_size for m in policy.analysis.metrics}
    small = {name: n for name, n in small.items() if n < MIN_SAMPLE_FLOOR}
    if small:
        fail(
            f"minimum sample {small} is below {MIN_SAMPLE_FLOOR}: with a handful of requests one error is a huge rate "
            f"and healthy canaries get aborted; set analysis.minSampleSize to at least {MIN_SAMPLE_FLOOR}."
        )
    if policy.detection_bound() > SLO_DETECT_S:
        fail(
            f"a fault would take up to {policy.detection_bound():.0f}s to abort, beyond the SLO's {SLO_DETECT_S}s: "
            "shorten interval, window or initialDelay, or lower failureLimit "
            "(bound = initialDelay + interval x (failureLimit+1) + window)."
        )


@check("sample-arithmetic", points=1, cells=["write-policy"])
def sample_arithmetic(ctx: Context) -> None:
    """canary_per_window is the expected canary requests of the shortest window at 5%, and it fills every minimum."""
    policy, rps = _policy(ctx), _rps(ctx)
    shortest = min(m.lookback for m in policy.analysis.metrics)
    expected = replay.expected_canary_requests(rps, policy.weights[0] if policy.weights else 0, shortest)
    got = ctx.var("canary_per_window")
    if not isinstance(got, (int, float)) or abs(float(got) - expected) > 1e-6 * max(1.0, expected):
        fail(
            f"canary_per_window is {got!r}; at {rps:g} rps, weight {policy.weights[:1]}% and your shortest window "
            f"{shortest:g}s it is rps x weight/100 x window = {expected:g}: compute it from those three numbers."
        )
    needed = max(m.min_sample_size or policy.analysis.min_sample_size for m in policy.analysis.metrics)
    if expected < needed * SAMPLE_MARGIN:
        fail(
            f"a {shortest:g}s window at 5% holds about {expected:g} canary requests, too close to (or below) the "
            f"minimum sample {needed}: every measurement at 5% would be inconclusive. Lengthen the window, raise rps "
            f"or lower minSampleSize so that rps x weight x window >= {SAMPLE_MARGIN:g} x minSampleSize."
        )


def _decision(ctx: Context):
    return learner_function(ctx, "error_rate.py", "decide", "write-decision")


def _judge(decide, case: tuple) -> str:
    try:
        return decide(*case)
    except Exception as err:  # noqa: BLE001 - the learner's code: any failure is a failed check
        fail(
            f"decide{case} raised {type(err).__name__}: {err}. It must return 'successful', 'failed' or 'inconclusive'."
        )


# (canary errors, canary requests, stable errors, stable requests, max rate, alpha, min sample), wanted, fix
BASIC = [
    ((1, 100, 2, 1000, 0.02, 0.05, 20), "successful", "a canary rate at or below max_rate is 'successful'"),
    (
        (30, 100, 5, 1000, 0.02, 0.05, 20),
        "failed",
        "30% errors against stable's 0.5% must fail: test canary against stable and fail when p < alpha",
    ),
]
PLANTED = [
    (
        (1, 3, 2, 1000, 0.02, 0.05, 20),
        "inconclusive",
        "3 canary requests are below min_sample 20: check canary_requests < min_sample first and return 'inconclusive'",
    ),
    (
        (0, 5, 0, 1000, 0.02, 0.05, 20),
        "inconclusive",
        "5 canary requests with no errors are still below min_sample 20: too few to call it 'successful'",
    ),
    (
        (3, 100, 25, 1000, 0.02, 0.05, 20),
        "inconclusive",
        (
            "3% on the canary against 2.5% on stable is above max_rate but no worse than stable: fail only when the "
            "Fisher exact test against stable gives p < alpha, else return 'inconclusive'"
        ),
    ),
    (
        (10, 400, 100, 1000, 0.02, 0.05, 20),
        "inconclusive",
        (
            "a canary at 2.5% against stable at 10% is better than stable: use a one-sided test "
            "(fisher_exact(..., alternative='greater')), not a two-sided one"
        ),
    ),
    (
        (5, 100, 15, 1000, 0.02, 0.01, 20),
        "inconclusive",
        "with alpha=0.01 a p-value of about 0.03 is not significant: compare p with the alpha argument, not 0.05",
    ),
    (
        (5, 100, 15, 1000, 0.02, 0.05, 20),
        "failed",
        "5/100 against 15/1000 gives p of about 0.03 < alpha 0.05: that must fail",
    ),
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
            fail(
                f"decide(canary {case[0]}/{case[1]}, stable {case[2]}/{case[3]}, max_rate={case[4]}, alpha={case[5]}, "
                f"min_sample={case[6]}) returned {got!r}, expected {wanted!r}: {fix}."
            )


@check("replay-no-false-abort", points=2, cells=["replay"])
def replay_no_false_abort(ctx: Context) -> None:
    """Seeded healthy traffic replayed through the policy is promoted every time."""
    policy = _policy(ctx)
    seeds = [ctx.rng("replay-healthy").randrange(10**6) for _ in range(6)]
    # healthy = latency and prediction noise but no errors: with the replay's default 0.5% background errors on both
    # versions, the reference policy itself aborted 2.4% of healthy replays (72 of 3000), so 6 replays failed a
    # correct policy for 3 grading seeds in 100 (34, 73 and 84 among them)
    for r in replay.replay_many(policy, replay.Traffic(rps=_rps(ctx), error_rate=0.0), seeds):
        if r.outcome != "promote":
            hint = (
                "the minimum sample does not fill within the window at 5%: lengthen the window or lower minSampleSize"
                if "inconclusive" in r.reason
                else "the analysis is too jumpy for healthy noise: raise minSampleSize or failureLimit"
            )
            fail(f"healthy traffic (seed {r.seed}) was aborted at {r.ended_at:g}s: {r.reason}. Fix: {hint}.")


@check("replay-detects-fault", points=2, cells=["replay"])
def replay_detects_fault(ctx: Context) -> None:
    """Seeded faulty traffic (a hidden error rate the SLO must catch) is aborted within the policy's own bound."""
    policy, rng = _policy(ctx), ctx.rng("replay-faulty")
    traffic = replay.Traffic(rps=_rps(ctx), fault_error_rate=round(rng.uniform(*SLO_MUST_CATCH), 2), fault_at=FAULT_AT)
    for r in replay.replay_many(policy, traffic, [rng.randrange(10**6) for _ in range(3)]):
        if r.outcome == "promote":
            fail(
                f"a canary erring {traffic.fault_error_rate:.0%} from {FAULT_AT:g}s on was promoted (seed {r.seed}): "
                "the steps end before the analysis can fail, or the errorRate max is too loose; pause longer or "
                "lower condition.max."
            )
        if not r.detected_in_bound:
            fail(
                f"the fault (seed {r.seed}) was aborted {r.time_to_abort}s after it started ({r.reason}), beyond the "
                f"policy's bound of {r.bound:g}s: the analysis aborted for another reason or too late."
            )


# --- the learner's rollout loop (canary.py: run_canary) -------------------------------------------------------------
# Graded with the grader's own policies, so the loop must read every number from the policy it is given.


def _loop(ctx: Context):
    return learner_function(ctx, "canary.py", "run_canary", "write-loop")


def _grader_policy(
    weights: tuple[float, float],
    pauses: tuple[float, float],
    window: float,
    interval: float,
    min_sample: int = 20,
    metrics: tuple[str, ...] = ("errorRate", "latencyP99"),
    latency: tuple[float, float] = (0.5, 20),
    failure_limit: int = 1,
) -> pol.Policy:
    conditions = {
        "errorRate": {"max": 0.02, "alpha": 0.05},
        "latencyP99": {"maxIncrease": latency[0], "marginMs": latency[1]},
    }
    return pol.parse(
        {
            "name": "grader",
            "steps": [
                {"setWeight": weights[0]},
                {"pause": {"duration": pauses[0]}},
                {"setWeight": weights[1]},
                {"pause": {"duration": pauses[1]}},
            ],
            "analysis": {
                "minSampleSize": min_sample,
                "metrics": [
                    {
                        "name": kind,
                        "kind": kind,
                        "interval": interval,
                        "window": window,
                        "initialDelay": window,
                        "failureLimit": failure_limit,
                        "consecutiveErrorLimit": 2,
                        "inconclusiveLimit": 8,
                        "condition": conditions[kind],
                    }
                    for kind in metrics
                ],
            },
        },
        source="the grader's policy",
    )


def _simulated_case(run, what: str, policy: pol.Policy, scenario: sim.Scenario, healthy: bool) -> None:
    wrong = trial.problem(trial.simulate(run, policy, scenario), what, policy, scenario.rps, healthy)
    if wrong:
        fail(wrong)


@check("loop-written", points=2, cells=["write-loop"])
def loop_written(ctx: Context) -> None:
    """run_canary promotes a healthy simulated canary and rolls back an erring one, weight 0 both times."""
    run, policy = _loop(ctx), _grader_policy((20, 50), (10, 10), 4, 2)
    _simulated_case(run, "a healthy simulated canary", policy, sim.Scenario(rps=60, seed=1), healthy=True)
    _simulated_case(
        run,
        "a simulated canary failing 30% of its requests",
        policy,
        sim.Scenario(rps=60, fault_error_rate=0.3, fault_at=0, seed=2),
        healthy=False,
    )


@check("loop-simulated", points=3, hidden=True, cells=["write-loop"])
def loop_simulated(ctx: Context) -> None:
    """Hidden simulated scenarios: healthy, erring, slow, late-failing, starved of traffic, metrics down, and a
    short burst of errors that the policy's failureLimit tolerates."""
    run, rng = _loop(ctx), ctx.rng("loop-simulated")
    first = rng.choice([5, 10, 20])
    policy = _grader_policy(
        (first, rng.choice([25, 50])),
        (rng.choice([16, 20]), rng.choice([14, 18])),
        rng.choice([6, 8]),
        rng.choice([1, 2]),
        min_sample=rng.choice([15, 20]),
    )
    seed = rng.randrange(10**6)
    cases = [
        # no errors at all: at the default 0.5% a correct loop saw two failed (overlapping) windows and aborted for
        # about one hidden seed in ten, so a right answer could lose the points
        ("a healthy canary", sim.Scenario(rps=120, error_rate=0.0, seed=seed), True),
        (
            "an erring canary",
            sim.Scenario(rps=120, fault_error_rate=round(rng.uniform(0.15, 0.4), 2), fault_at=0, seed=seed + 1),
            False,
        ),
        ("a slow canary", sim.Scenario(rps=120, fault_slow=True, fault_at=0, seed=seed + 2), False),
        (
            "a canary that fails late",
            sim.Scenario(rps=120, fault_error_rate=0.3, seed=seed + 3, fault_at=policy.steps[1].pause.duration + 1),
            False,
        ),
        ("a canary with too little traffic to judge", sim.Scenario(rps=2, seed=seed + 4), False),
        ("a rollout whose metrics backend is down", sim.Scenario(rps=120, metrics_down=True, seed=seed + 5), False),
    ]
    for what, scenario, healthy in cases:
        _simulated_case(run, f"{what} (hidden scenario)", policy, scenario, healthy)
    _simulated_case(run, *_burst(rng), healthy=True)


def _burst(rng: random.Random) -> tuple[str, pol.Policy, sim.Scenario]:
    """A canary that fails every request for one second, then recovers, under a policy that tolerates it.

    Windows of 6 s measured every 2 s (up to 2.25 s with the loop's 0.25 s sleeps): a window holds the burst
    whole at 2 or 3 measurements and touches it at 4 at most, so a loop that honours failureLimit 4 promotes,
    and one that aborts at the first or second failed measurement does not.
    """
    weight = rng.choice([20, 25])
    policy = _grader_policy((weight, 50), (24, 10), window=6, interval=2, failure_limit=4)
    scenario = sim.Scenario(
        rps=120,
        error_rate=0.0,
        fault_error_rate=1.0,
        fault_at=rng.choice([9, 10, 12]),
        fault_for=1,
        seed=rng.randrange(10**6),
    )
    what = "a canary that failed every request for 1 s and then recovered, under failureLimit 4 (hidden scenario)"
    return what, policy, scenario


# --- the same loop against real servers: one stable, one canary, the router, load; faults set on the canary ---------
LIVE_RPS = 60
LIVE_LATENCY = (0.8, 50)
"""The live rollouts' latency condition (maxIncrease, marginMs): room for noise, none for the slow candidates."""
SERVICES = ("rollout-stable", "rollout-canary", "rollout-router", "rollout-prometheus", "mlflow")


def _running(ctx: Context) -> set[str]:
    return {name for name in SERVICES if procs.get(ctx.wb, name) is not None}


@check("loop-live", points=4, hidden=True, cells=["write-loop"], timeout=600)
def loop_live(ctx: Context) -> None:
    """Hidden live rollouts of run_canary: a healthy, an erring, a slow and a late-failing candidate on real servers."""
    from mlops_workbench.rollout import prepare
    from mlops_workbench.rollout.backends.local import LocalBackend
    from mlops_workbench.rollout.load import BackgroundLoad
    from mlops_workbench.serving.faults import Faults

    run, rng = _loop(ctx), ctx.rng("loop-live")
    # real servers on a possibly busy machine: a p99 may double by chance, the slow candidates add 300 ms or more
    policy = _grader_policy((20, 50), (8, 14), 4, 2, latency=LIVE_LATENCY)
    model = str(ctx.var("model_name"))
    before = _running(ctx)
    try:
        versions = prepare.ensure_versions(ctx.wb, model_name=model)
        production = _production(ctx, model)
        backend = LocalBackend(ctx.wb, model_name=model, metrics="direct", seed=ctx.seed)
        backend.up()
        backend.deploy_canary(str(versions.next))
        with BackgroundLoad(backend.router_url, LIVE_RPS, seed=ctx.seed):
            cases = [
                ("a healthy candidate", None, False),
                (
                    "a candidate failing some of its requests",
                    Faults(error_rate=round(rng.uniform(0.15, 0.4), 2), seed=ctx.seed % 1000),
                    False,
                ),
                ("a slow candidate", Faults(latency_ms=rng.choice([300, 400, 500])), False),
                ("a candidate that fails once it takes more traffic", Faults(error_rate=0.3), True),
            ]
            for what, faults, late in cases:
                wrong = trial.problem(
                    trial.live(run, policy, backend, faults, late),
                    f"{what} (hidden live rollout)",
                    policy,
                    LIVE_RPS,
                    healthy=faults is None,
                )
                if wrong:
                    fail(wrong)
        if _production(ctx, model) != production:
            fail(
                "the production alias moved during the hidden rollouts: run_canary must move nothing but the "
                "router's weight; promotion is the promote() it is given."
            )
    finally:
        from mlops_workbench import tracking

        for name in ("rollout-canary", "rollout-router", "rollout-prometheus", "rollout-stable"):
            if name not in before:
                procs.stop(ctx.wb, name)
        if "mlflow" not in before:
            tracking.down(ctx.wb)


# --- the live rollouts of the notebook, the incident, the cleanup ----------------------------------------------------
def _promoted(ctx: Context, model: str, version: str) -> bool:
    """The audit log has a promotion of ``version`` of ``model`` (into any alias)."""
    return any(
        e.model == model and e.version == version and e.outcome is AuditOutcome.PROMOTED for e in audit.read(ctx.wb)
    )


@check("healthy-promoted", points=2, cells=["healthy-rollout"])
def healthy_promoted(ctx: Context) -> None:
    """Your loop promoted the healthy candidate: production points to it, with an audit record."""
    version, model = str(ctx.var("healthy_version")), ctx.var("model_name")
    outcome = ctx.var("healthy_outcome")
    if outcome != "promoted":
        fail(
            f"run_canary returned {outcome!r} for the healthy candidate v{version}: read the measurements it "
            "printed; a healthy rollout that ends without a verdict usually lacks canary requests (is the load "
            "running?) or stops measuring before the last step."
        )
    if _production(ctx, model) != version:
        fail(f"production of {model} is not version {version}: pass promote_to(versions.candidate) as promote.")
    if not _promoted(ctx, model, version):
        fail("the audit log has no promotion of the healthy candidate: promote with promote_to(...), not by hand.")


@check("faulty-rolled-back", points=2, cells=["faulty-rollout"])
def faulty_rolled_back(ctx: Context) -> None:
    """Your loop rolled the faulty release back within the policy's bound; production stayed on the healthy one."""
    model, healthy, faulty = ctx.var("model_name"), str(ctx.var("healthy_version")), str(ctx.var("faulty_version"))
    outcome, onset, restored = ctx.var("faulty_outcome"), ctx.var("onset", None), ctx.var("restored", None)
    if outcome != "aborted":
        fail(
            f"run_canary returned {outcome!r} for the release with an injected fault: it must abort. "
            f"{_why_not_aborted(ctx)}"
        )
    if _promoted(ctx, model, faulty):
        fail(f"version {faulty} was promoted at some point: the faulty release must never reach an alias.")
    if _production(ctx, model) != healthy:
        fail(f"production of {model} moved away from {healthy}: a rollback must not touch the aliases.")
    if not isinstance(onset, dict) or not isinstance(restored, dict):
        fail("`onset` and `restored` are not the records the cell 'faulty-rollout' makes: rerun it as released.")
    bound = _policy(ctx).detection_bound()
    taken = float(restored["t"]) - float(onset["t"])
    if taken > bound + SLACK_S:
        fail(
            f"the canary left the traffic {taken:.1f}s after the fault; the policy promises {bound:.0f}s "
            f"(+{SLACK_S:.0f}s lag): measure every interval during the pauses and abort at once."
        )


def _why_not_aborted(ctx: Context) -> str:
    """Blame the policy when it cannot catch this fault at all, else the loop or the fault's timing."""
    rate = float(ctx.var("fault_error_rate", 0.3))
    policy = _policy(ctx)
    loose = [m for m in policy.analysis.metrics if m.kind == "errorRate" and float(m.condition.max or 0) >= rate]
    if loose:
        return (
            f"The errorRate threshold condition.max = {loose[0].condition.max} is at or above the injected error "
            f"rate {rate:g}, so no measurement can ever fail: lower it."
        )
    caught = replay.replay_many(
        policy, replay.Traffic(rps=_rps(ctx), fault_error_rate=rate, fault_at=FAULT_AT), range(3)
    )
    if any(r.outcome == "promote" for r in caught):
        return (
            "Your policy promotes this fault even in the replay (see 'replay-detects-fault'): lower condition.max "
            "or failureLimit, or pause longer so the analysis can fail before the steps end."
        )
    return "Inject the fault once the canary takes traffic, and let run_canary measure during every pause."


@check("incident-read", points=1, cells=["incident"])
def incident_read(ctx: Context) -> None:
    """time_to_restore and blast_share computed from the onset and restore records."""
    onset, restored = ctx.var("onset", None), ctx.var("restored", None)
    if not isinstance(onset, dict) or not isinstance(restored, dict):
        fail("no incident recorded yet: run the cell 'faulty-rollout' first.")
    want_t = float(restored["t"]) - float(onset["t"])
    requests = sum(float(restored[v]["requests"]) - float(onset[v]["requests"]) for v in ("stable", "canary"))
    want_b = (float(restored["canary"]["errors"]) - float(onset["canary"]["errors"])) / requests if requests else 0.0
    got_t, got_b = ctx.var("time_to_restore", None), ctx.var("blast_share", None)
    if not isinstance(got_t, (int, float)) or abs(float(got_t) - want_t) > 0.01:
        fail(f"time_to_restore is {got_t!r}; it is the time between the two records: restored['t'] - onset['t'].")
    if not isinstance(got_b, (int, float)) or abs(float(got_b) - want_b) > 1e-6:
        fail(
            f"blast_share is {got_b!r}: the canary's errors between the records over every request (stable and "
            "canary) between them."
        )


@check("nothing-running", points=1, cells=["cleanup"])
def nothing_running(ctx: Context) -> None:
    """No process of the lab is left running."""
    left = sorted(_running(ctx))
    if left:
        fail(f"still running: {', '.join(left)}: call backend.down() and tracking.down(lab.wb) in the cell 'cleanup'.")
