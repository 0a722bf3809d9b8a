"""Checks for lab 08: blue-green, the A/B decision, the GitOps revert-and-sync, approvals by a second person, cost
per 1,000 predictions, and the choice of a strategy.

They grade state: the learner's files in the workspace run here on cases made per grading run from ``ctx.seed``
(a router and green environments held in memory for the switch, ``strategies.simulated``, seeded A/A and A/B label streams looked at after
every batch for the decision, the prediction log and its labels for the live A/B test, real deployment repositories in scratch state folders for the revert, seeded release
situations played second by second for the choice), the registry (MLflow's client on the sqlite store directly,
since the lab stops the server), the audit log, and the lab's own deployment repository.
"""

from __future__ import annotations

import functools
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from mlops_workbench import procs
from mlops_workbench.errors import InputError
from mlops_workbench.labs.checks import Context, check, fail, learner_function
from mlops_workbench.labs.learner_code import load_module
from mlops_workbench.registry import audit, gate
from mlops_workbench.registry.audit import AuditAction, AuditOutcome
from mlops_workbench.strategies import scenarios as ab
from mlops_workbench.strategies import simulated as sim
from mlops_workbench.strategies import tradeoff
from mlops_workbench.strategies.abtest import Arm

MODEL = "iris-strategies"  # the notebook's `model_name` parameter
SERVICES = ("rollout-stable", "rollout-canary", "rollout-router", "mlflow")


def _scenarios() -> Any:
    return load_module(Path(__file__).with_name("scenarios.py"), "_workbench_lab08_scenarios")


def _attempt(call: Any) -> BaseException | None:
    try:
        call()
    except Exception as err:  # noqa: BLE001 - the learner's code may raise anything
        return err
    return None


# --- Exercise 1: blue-green -----------------------------------------------------------------------------------------
def _bluegreen(ctx: Context) -> tuple[Any, Any]:
    path = "bluegreen.py"
    return (
        learner_function(ctx, path, "switch", "bluegreen-code"),
        learner_function(ctx, path, "switch_back", "bluegreen-code"),
    )


def _green_case(switch: Any, rng: Any, broken: str, what: str) -> None:
    cases = sim.smoke_cases(rng)
    router, server = sim.SimRouter(0.0), sim.green(rng, broken, cases)
    err = _attempt(functools.partial(switch, router, server, cases))
    if broken:
        if any(w > 0 for w in router.set_weights):
            fail(
                f"{what}: traffic went to a green that fails its smoke test (weights set {router.set_weights}). Send "
                "every smoke case to green first, with green.send(case['rows']), and switch only when every one "
                "answered 200 with the expected class (when the case names one)."
            )
        if not server.sent and broken != "down":
            fail(f"{what}: switch sent no smoke request to green: smoke-test green before deciding.")
        if err is None:
            fail(
                f"{what}: switch refused nothing: raise SwitchRefused('... why ...') so the caller knows green did "
                "not get the traffic."
            )
        if not isinstance(err, InputError):
            fail(
                f"{what}: switch raised {type(err).__name__}: {err}. Refuse with SwitchRefused (from "
                "mlops_workbench.strategies.bluegreen), naming the smoke case that failed."
            )
        return
    if err is not None:
        fail(f"{what}: switch raised {type(err).__name__}: {err} for a healthy green that passes every smoke case.")
    if router.set_weights != [100.0]:
        fail(
            f"{what}: a healthy green got the weights {router.set_weights}: a blue-green switch is one atomic "
            "change, router.set_weight(100), not a ramp (that would be a canary) and not a no-op."
        )
    if len(server.sent) < len(cases):
        fail(f"{what}: switch sent {len(server.sent)} of the {len(cases)} smoke cases: send every one.")


def _back_case(switch_back: Any, start: float, what: str) -> None:
    router = sim.SimRouter(start)
    err = _attempt(functools.partial(switch_back, router))
    if err is not None:
        fail(f"{what}: switch_back raised {type(err).__name__}: {err}.")
    if router.set_weights != [0.0]:
        fail(
            f"{what}: switch_back set the weights {router.set_weights}: all traffic back to blue is one call, "
            "router.set_weight(0)."
        )


@check("bluegreen-written", points=1, cells=["bluegreen-code"])
def bluegreen_written(ctx: Context) -> None:
    """switch puts all traffic on a healthy green at once and refuses a green that answers 500; switch_back works."""
    switch, switch_back = _bluegreen(ctx)
    rng = ctx.rng("bluegreen-basic")
    _green_case(switch, rng, "errors", "a green answering 500 to everything")
    _green_case(switch, rng, "", "a healthy green")
    _back_case(switch_back, 100.0, "after a switch")


@check("bluegreen-hidden", points=3, hidden=True, cells=["bluegreen-code"])
def bluegreen_hidden(ctx: Context) -> None:
    """Hidden greens: healthy ones switched atomically, each kind of broken one refused with no traffic."""
    switch, switch_back = _bluegreen(ctx)
    rng = ctx.rng("bluegreen-hidden")
    what = {
        "errors": "a hidden green answering 500",
        "wrong-class": "a hidden green that gets one smoke flower wrong (not the first case)",
        "down": "a hidden green that does not answer at all",
        "error-on-unchecked": "a hidden green failing the smoke case that expects no particular class",
    }
    for broken in rng.sample(list(sim.BROKEN), len(sim.BROKEN)):
        _green_case(switch, rng, broken, what[broken])
    _green_case(switch, rng, "", "a hidden healthy green")
    _back_case(switch_back, rng.choice([100.0, 50.0]), "a hidden switch back")


@check("bluegreen-live", points=2, cells=["bluegreen-code", "bluegreen-live"])
def bluegreen_live(ctx: Context) -> None:
    """On the real router: the bad green was refused with traffic on blue, the good one got it all, switch back."""
    seen = ctx.var("bluegreen_weights", kind=dict)
    wanted = {"after_refusal": 0.0, "after_switch": 100.0, "after_switch_back": 0.0}
    for key, value in wanted.items():
        if seen.get(key) != value:
            fail(
                f"the router's weight {key.replace('_', ' ')} was {seen.get(key)!r}, expected {value:g}: run the "
                "cell 'bluegreen-live' with your switch (bad green refused, good green switched, then switch back)."
            )
    if seen.get("refused") is not True:
        fail("switching to the bad green did not raise SwitchRefused: your switch must refuse it.")


# --- Exercise 2: the A/B decision ------------------------------------------------------------------------------------
def _decision(ctx: Context) -> Any:
    return learner_function(ctx, "ab_decision.py", "decide", "decision-code")


def _plan(rng: Any) -> dict[str, float]:
    return {"alpha": rng.choice([0.05, 0.1]), "mde": rng.choice([0.04, 0.05, 0.06]), "baseline": rng.uniform(0.8, 0.9)}


def _operating(decide: Any, cases: list[Any], plan: dict[str, float]) -> ab.Operating:
    try:
        return ab.operating(functools.partial(decide, **plan), cases)
    except InputError as err:
        fail(str(err))
    except Exception as err:  # noqa: BLE001 - the learner's code
        fail(f"decide raised {type(err).__name__}: {err} on a seeded label stream (plan {plan}).")


def _needed(plan: dict[str, float]) -> int:
    from mlops_workbench.strategies.abtest import required_sample_size

    return required_sample_size(plan["baseline"], plan["mde"], plan["alpha"]).per_arm


@check("decision-written", points=1, cells=["decision-code"])
def decision_written(ctx: Context) -> None:
    """decide waits on a handful of labels and finds a large difference on a large sample."""
    decide = _decision(ctx)
    plan = {"alpha": 0.05, "mde": 0.05, "baseline": 0.85}
    early = ab.verdict_of(decide(Arm(successes=9, trials=10), Arm(successes=5, trials=10), **plan))
    if early is not ab.Verdict.CONTINUE:
        fail(f"decide returned {early.value!r} after 10 labels per arm: with so few, return 'continue'.")
    late = ab.verdict_of(decide(Arm(successes=1700, trials=2000), Arm(successes=1900, trials=2000), **plan))
    if late is not ab.Verdict.B_BETTER:
        fail(f"decide returned {late.value!r} for 85% against 95% on 2,000 labels per arm: that is 'b_better'.")


@check("decision-peeking-hidden", points=3, hidden=True, cells=["decision-code"])
def decision_peeking_hidden(ctx: Context) -> None:
    """On seeded A/A label streams looked at after every batch, decide declares a winner at most about alpha often."""
    decide, rng = _decision(ctx), ctx.rng("peeking")
    plan = _plan(rng)
    batch = max(20, _needed(plan) // 15)
    cases = ab.null_scenarios(200, rng.randrange(10**6), plan["baseline"], batch, 3 * _needed(plan) // (2 * batch))
    result = _operating(decide, cases, plan)
    limit = plan["alpha"] + ab.noise_margin(plan["alpha"], result.scenarios)
    if result.rate > limit:
        fail(
            f"on {result.scenarios} seeded A/A streams (both versions equally good), looked at after every batch of "
            f"{batch} labels, decide declared a winner {result.rate:.0%} of the time; alpha is {plan['alpha']:g}. "
            "Stopping at the first look with p < alpha is peeking: either refuse any verdict before the sample size "
            "you fixed in advance (and test once there), or use a sequential test valid at every look."
        )


@check("decision-power-hidden", points=2, hidden=True, cells=["decision-code"])
def decision_power_hidden(ctx: Context) -> None:
    """On seeded streams where b is really better by more than the MDE, decide finds it."""
    decide, rng = _decision(ctx), ctx.rng("power")
    plan = _plan(rng)
    batch = max(20, _needed(plan) // 15)
    rate_b = plan["baseline"] + 1.5 * plan["mde"]
    cases = ab.scenarios(40, rng.randrange(10**6), plan["baseline"], rate_b, batch, 3 * _needed(plan) // batch)
    result = _operating(decide, cases, plan)
    found = sum(r.verdict is ab.Verdict.B_BETTER for r in result.runs) / len(result.runs)
    if found < 0.8:
        fail(
            f"b was better by {1.5 * plan['mde']:.3f} (1.5 x the MDE) on 40 seeded streams, and decide found it in "
            f"only {found:.0%}: once the planned sample is reached (or the sequential evidence is strong), return "
            "'b_better' or 'a_better' by the sign of the difference."
        )


def _reported(look: Any, key: str) -> list[int]:
    value = look.get(key) if isinstance(look, dict) else None
    return [int(x) for x in value] if isinstance(value, list | tuple) and len(value) == 2 else []


@check("ab-live", points=2, cells=["decision-code", "ab-live"])
def ab_live(ctx: Context) -> None:
    """The live A/B test: a 50/50 split in the prediction log, the counts looked at each day equal to the log joined
    with its labels, your decide's verdict on them, a stop at the first verdict, and production left alone."""
    from mlops_workbench.monitoring import ablive
    from mlops_workbench.strategies import abcount

    seen = ctx.var("ab_live", kind=dict)
    prefix, a, b, plan = str(seen.get("prefix")), str(seen.get("a")), str(seen.get("b")), dict(seen.get("plan", {}))
    reported, planned = list(seen.get("looks") or []), int(seen.get("days", 0))
    rows = ablive.logged(ctx.wb, prefix)
    if not rows or not reported:
        fail(
            f"the prediction log has no request of the A/B test {prefix!r} or the notebook looked at none: run the "
            "cell 'ab-live' (send each day with ablive.send_day, deliver its labels, count, decide)."
        )
    days = abcount.days_logged(rows, prefix)
    if days != list(range(1, len(reported) + 1)):
        fail(
            f"the log holds traffic of days {days}, but the notebook looked {len(reported)} time(s): look once after "
            "every day, and send no more traffic once decide gave a verdict."
        )
    try:
        whole = abcount.tally(rows, [a, b])
    except InputError as err:
        fail(str(err))
    split = abcount.split_problem(whole, b)
    if split:
        fail(f"{split}: hold the router at 50 (router.set_weight(50)) for the whole test.")
    decide = _decision(ctx)
    verdict = ab.Verdict.CONTINUE
    recomputed = abcount.looks(rows, prefix, [a, b], len(reported))
    for day, (look, counts) in enumerate(zip(reported, recomputed, strict=True), 1):
        arm_a, arm_b = counts[a].arm, counts[b].arm
        truth = {"a": [arm_a.successes, arm_a.trials], "b": [arm_b.successes, arm_b.trials]}
        if _reported(look, "a") != truth["a"] or _reported(look, "b") != truth["b"]:
            fail(
                f"on day {day} the notebook counted a {look.get('a')} and b {look.get('b')} ([right, labelled]), but "
                f"the prediction log joined with its labels gives a {truth['a']} and b {truth['b']}: per version, "
                "count the test's labelled rows and those whose prediction equals the label, every day from day 1."
            )
        try:
            verdict = ab.verdict_of(decide(arm_a, arm_b, **plan))
        except Exception as err:  # noqa: BLE001 - the learner's code
            fail(f"decide raised {type(err).__name__}: {err} on day {day}'s counts a {truth['a']}, b {truth['b']}.")
        if str(look.get("verdict")) != verdict.value:
            fail(f"on day {day} the notebook noted {look.get('verdict')!r}, but decide says {verdict.value!r}.")
        if verdict is not ab.Verdict.CONTINUE and day < len(reported):
            fail(f"decide gave {verdict.value!r} on day {day}, yet the test went on: stop at the first verdict.")
    if verdict is ab.Verdict.CONTINUE and len(reported) < planned:
        fail(f"the test stopped on day {len(reported)} without a verdict, before the {planned} planned days.")
    first, last = rows[0].ts, rows[-1].ts
    moved = [
        e for e in audit.production_moves(audit.read(ctx.wb), MODEL) if first <= datetime.fromisoformat(e.ts) <= last
    ]
    if moved:
        fail(
            f"production moved to v{moved[0].version} during the A/B test: a test measures, it does not release; "
            "a winner ships afterwards, through the approvals of Part 3."
        )
    if seen.get("weight_after") != 0.0:
        fail(f"after the test the router sent {seen.get('weight_after')}% to b: put it back on a (set_weight(0)).")


# --- Exercise 3: GitOps revert and sync -----------------------------------------------------------------------------
def _gitops_problem(case: Any, err: BaseException | None) -> str | None:
    from mlops_workbench import gitops
    from mlops_workbench.gitops.plan import plan

    repo = case.repo
    head = repo.head()
    if err is not None:
        return f"restore raised {type(err).__name__}: {err}"
    repo.git("merge-base", "--is-ancestor", case.bad_commit, head)  # WorkspaceError when history was rewritten
    desired = repo.desired(head)
    if desired != case.good:
        return (
            f"git at HEAD still names {desired.model_dump(exclude_none=True)}, not the state before the bad release: "
            "undo the bad commit in git (repo.git('revert', '--no-edit', bad_commit)), not only in the runtime"
        )
    if case.later and case.later not in repo.git("ls-tree", "--name-only", head).split():
        return "the commit after the bad release was undone too: revert the bad commit only, not HEAD"
    if plan(desired, case.runtime.live()):
        return (
            f"the runtime serves {case.runtime.live().stable} while git at HEAD says stable {desired.stable}: the app is "
            "OutOfSync; call sync() after the revert"
        )
    last = gitops.reconciler.last_synced(case.wb)
    if last != head:
        return "the last sync applied another commit than HEAD: call sync() after your last commit"
    return None


@check("gitops-hidden", points=3, hidden=True, cells=["gitops-code"], timeout=180)
def gitops_hidden(ctx: Context) -> None:
    """Hidden deployment repositories (auto-sync on or off, a commit after the bad one or not): git reverted, the
    runtime synced to it, history kept."""
    from mlops_workbench import gitops
    from mlops_workbench.versioning.workspace import WorkspaceError

    restore = learner_function(ctx, "gitops_restore.py", "restore", "gitops-code")
    scenarios, rng = _scenarios(), ctx.rng("gitops")
    for n in range(3):
        with tempfile.TemporaryDirectory(prefix="lab08-gitops-") as scratch:
            case = scenarios.gitops_case(ctx.wb.at(Path(scratch)), rng)
            sync = functools.partial(gitops.reconcile, case.wb, case.repo, case.runtime)

            def rollback(revision: str, case: Any = case) -> Any:
                return gitops.rollback(case.wb, revision, case.repo, case.runtime)

            err = _attempt(functools.partial(restore, case.repo, case.bad_commit, sync, rollback))
            try:
                wrong = _gitops_problem(case, err)
            except WorkspaceError:
                wrong = "the bad commit is gone from the history: revert it (a new commit), never rewrite history"
            if wrong:
                auto = "on" if case.auto_sync else "off"
                later = ", with a harmless commit after the bad one" if case.later else ""
                fail(f"hidden deployment repository {n + 1} (auto-sync {auto}{later}): {wrong}.")


@check("gitops-live", points=2, cells=["gitops-code", "gitops-live"])
def gitops_live(ctx: Context) -> None:
    """The lab's deployment repository: the bad release reverted in git, and the last sync applied that commit."""
    from mlops_workbench.gitops import DeploymentRepo
    from mlops_workbench.gitops.reconciler import last_synced

    try:
        repo = DeploymentRepo.of(ctx.wb)
    except Exception:  # noqa: BLE001 - any failure: the repository was never made
        fail("there is no deployment repository: run the cells of Part 5 from 'gitops-setup' on.")
    bad = str(ctx.var("bad_version"))
    head = repo.head()
    desired = repo.desired(head)
    if desired.stable == bad:
        fail(f"git at HEAD still deploys the bad version {bad}: revert the bad commit in git with your restore.")
    subjects = repo.git("log", "--format=%s", head).splitlines()
    if not any(s.startswith("Revert") for s in subjects):
        fail("the history has no revert commit: undo the bad release with `git revert`, which keeps the history.")
    if last_synced(ctx.wb) != head:
        fail("the last sync did not apply HEAD: sync after the revert, so the runtime and git agree.")
    seen = ctx.var("gitops_status", kind=dict)
    if seen.get("sync") != "Synced" or seen.get("stable") != desired.stable:
        fail(f"after your restore the app was {seen}: git, the runtime and auto-sync must agree (Synced).")


# --- Exercise 4: approvals by a second person -----------------------------------------------------------------------
def _client(ctx: Context) -> MlflowClient:
    db = ctx.wb.layout.mlflow_db
    if not db.exists():
        fail(f"No registry at {db}: run the cell 'prerequisites' first.")
    return MlflowClient(tracking_uri=f"sqlite:///{db}", registry_uri=f"sqlite:///{db}")


@check("second-approval", points=2, cells=["approvals"])
def second_approval(ctx: Context) -> None:
    """Self-approval was refused and audited; a second person approved; the requester promoted; production moved."""
    version, me = str(ctx.var("candidate_version")), str(ctx.var("registrant"))
    mine = [e for e in audit.read(ctx.wb) if e.model == MODEL and e.version == version]
    approve = [e for e in mine if e.action is AuditAction.APPROVE]
    if not any(e.outcome is AuditOutcome.REFUSED and e.approver == me for e in approve):
        fail(
            f"the audit log has no refused self-approval of v{version}: first try registry.approve as {me!r} "
            "(the registrant) and keep the refusal in `self_refusal`."
        )
    others = [e for e in approve if e.outcome is AuditOutcome.APPROVED and e.approver != me]
    if not others:
        fail(f"nobody but {me!r} approved v{version}: approve it as the reviewer (approver=reviewer).")
    promoted = [e for e in mine if e.action is AuditAction.PROMOTE and e.outcome is AuditOutcome.PROMOTED]
    prod = [e for e in promoted if str(e.alias) == "production"]
    if not prod or prod[-1].approver == prod[-1].requester or prod[-1].requester != me:
        fail(
            f"no production promotion of v{version} requested by {me!r} with someone else's approval: promote with "
            "requester=registrant and params={'second_approval': True}."
        )
    try:
        current = str(_client(ctx).get_model_version_by_alias(MODEL, "production").version)
    except MlflowException:
        current = None
    if current != version:
        fail(f"production of {MODEL} is v{current}, not the approved v{version}.")


# --- Exercise 5: cost per 1,000 predictions -------------------------------------------------------------------------
@check("cost-shown", points=1, cells=["cost"])
def cost_shown(ctx: Context) -> None:
    """Every version of the lab's model has a measured cost per 1,000 predictions and latency."""
    versions = _client(ctx).search_model_versions(f"name='{MODEL}'")
    tags = {v.version: dict(v.tags) for v in versions}
    missing = [v for v, t in tags.items() if None in (gate.measured_cost(t), gate.measured_cost(t, gate.LATENCY_TAG))]
    if not versions or missing:
        fail(
            f"version(s) {missing or 'all'} of {MODEL} have no measured cost: measure each one with cost.measure "
            "while it serves traffic and write it with cost.record."
        )


# --- Exercise 6: the trade-off --------------------------------------------------------------------------------------
def _choose(ctx: Context) -> Any:
    return learner_function(ctx, "choose.py", "choose", "choose-code")


def _played(choose: Any, situation: tradeoff.Situation, truth: tradeoff.Truth, what: str) -> None:
    try:
        picked = choose(situation)
    except Exception as err:  # noqa: BLE001 - the learner's code
        fail(f"{what}: choose raised {type(err).__name__}: {err}.")
    try:
        outcome = tradeoff.play(situation, truth, picked)
    except InputError as err:
        fail(f"{what}: {err}")
    problems = tradeoff.judge(truth, outcome)
    if problems:
        fail(
            f"{what} ({situation.summary}): with {outcome.strategy!r}, {'; and '.join(problems)}. What happened: "
            f"{' | '.join(outcome.events)}."
        )


@check("choose-written", points=1, cells=["choose-code"])
def choose_written(ctx: Context) -> None:
    """On the notebook's three example releases, the strategy chosen leaves production right and users unhurt."""
    choose = _choose(ctx)
    for situation, truth in tradeoff.examples():
        _played(choose, situation, truth, f"example {situation.name}")


@check("choose-hidden", points=3, hidden=True, cells=["choose-code"])
def choose_hidden(ctx: Context) -> None:
    """Three hidden seeded releases: what each chosen strategy did to traffic and to production."""
    choose = _choose(ctx)
    for situation, truth in tradeoff.hidden(ctx.rng("choose")):
        _played(choose, situation, truth, f"hidden release {situation.name}")


@check("nothing-running", points=1, cells=["cleanup"])
def nothing_running(ctx: Context) -> None:
    """No process of the lab is left running."""
    left = sorted(name for name in SERVICES if procs.get(ctx.wb, name) is not None)
    if left:
        fail(f"still running: {', '.join(left)}: call backend.down() and tracking.down() in the cell 'cleanup'.")
