"""Lab 08's hidden scenarios: the reference solutions pass them on several seeds, and each plausible wrong
learner procedure fails the hidden check that should catch it, with a message that names the fix.

The scenarios run the learner's files on a router and greens held in memory (blue-green), seeded label streams
(the A/B decision), real deployment repositories (git) in scratch state folders with an in-memory runtime
(GitOps), and seeded release situations played by ``strategies.tradeoff`` (the choice): no server, seconds.
The live A/B check runs here on a prediction log the test writes; the other live checks (real servers, the lab's
registry and deployment repository) run in ``workbench labs validate``.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.workbench import Workbench

LAB = Path(__file__).resolve().parents[1] / "labs" / "08-strategies-governance"
CHECKS = {c.id: c for c in load_checks(LAB / "checks.py")}
FILES = {
    "bluegreen-code": "bluegreen.py",
    "decision-code": "ab_decision.py",
    "gitops-code": "gitops_restore.py",
    "choose-code": "choose.py",
}
HIDDEN = (
    "bluegreen-written",
    "bluegreen-hidden",
    "decision-written",
    "decision-peeking-hidden",
    "decision-power-hidden",
    "gitops-hidden",
    "choose-written",
    "choose-hidden",
)


def reference(cell: str) -> str:
    """The reference solution of a %%writefile cell, as the learner would write it."""
    nb = nbformat.read(LAB / "lab.ipynb", as_version=4)
    src = next(c.source for c in nb.cells if c.id == cell).split("\n", 1)[1]
    return "".join(line for line in src.splitlines(keepends=True) if "SOLUTION" not in line)


def mistake(cell: str, old: str, new: str) -> str:
    source = reference(cell)
    assert old in source, f"the reference {cell} no longer contains {old!r}"
    return source.replace(old, new)


def graded(tmp_path: Path, seed: int, **replaced: str) -> Context:
    """A workspace holding the reference files, with ``replaced`` (cell id with '_' for '-') swapped in."""
    ctx = Context(lab="08-strategies-governance", wb=Workbench.from_env(tmp_path), seed=seed)
    ctx.workspace.mkdir(parents=True, exist_ok=True)
    for cell, file in FILES.items():
        (ctx.workspace / file).write_text(replaced.get(cell.replace("-", "_"), reference(cell)))
    return ctx


def failure(check_id: str, ctx: Context) -> str:
    with pytest.raises(CheckFailed) as caught:
        CHECKS[check_id].func(ctx)
    return str(caught.value)


@pytest.mark.parametrize("seed", [0, 1, 2, 20240917])
def test_the_reference_passes_every_scenario_check_whatever_the_seed(tmp_path, seed):
    ctx = graded(tmp_path, seed)
    for check in HIDDEN:
        CHECKS[check].func(ctx)


def test_hidden_scenarios_follow_the_seed(tmp_path):
    assert graded(tmp_path, 5).rng("gitops").random() == graded(tmp_path, 5).rng("gitops").random()
    assert graded(tmp_path, 5).rng("gitops").random() != graded(tmp_path, 6).rng("gitops").random()


# --- blue-green ------------------------------------------------------------------------------------------------------
NO_SMOKE = """
from mlops_workbench.strategies.bluegreen import SwitchRefused


def switch(router, green, cases):
    return router.set_weight(100)


def switch_back(router):
    return router.set_weight(0)
"""
RAMP = mistake(
    "bluegreen-code",
    "    return router.set_weight(100)\n",
    "    for weight in (10, 50, 100):\n        router.set_weight(weight)\n    return 100\n",
)
FIRST_CASE_ONLY = mistake(
    "bluegreen-code", "for number, case in enumerate(cases):", "for number, case in enumerate(cases[:1]):"
)
IGNORES_UNCHECKED = mistake(
    "bluegreen-code", "if reply.status != 200:", "if reply.status != 200 and expected is not None:"
)
WRONG_ERROR = mistake("bluegreen-code", "raise SwitchRefused(", "raise RuntimeError(")


@pytest.mark.parametrize(
    "code, check, words",
    [
        (NO_SMOKE, "bluegreen-written", "traffic went to a green that fails its smoke test"),
        (RAMP, "bluegreen-written", "one atomic change"),
        (FIRST_CASE_ONLY, "bluegreen-hidden", "fails its smoke test"),
        (IGNORES_UNCHECKED, "bluegreen-hidden", "fails its smoke test"),
        (WRONG_ERROR, "bluegreen-written", "Refuse with SwitchRefused"),
    ],
    ids=[
        "no smoke test",
        "a ramp is no switch",
        "smokes the first case only",
        "ignores cases without a class",
        "wrong error",
    ],
)
def test_wrong_switches_fail_with_their_fix(tmp_path, code, check, words):
    for seed in range(3):
        assert words in failure(check, graded(tmp_path, seed, bluegreen_code=code))


def test_a_switch_back_that_ramps_fails(tmp_path):
    code = mistake(
        "bluegreen-code", "    return router.set_weight(0)\n", "    router.set_weight(50)\n    router.set_weight(0)\n"
    )
    assert "one call, router.set_weight(0)" in failure("bluegreen-written", graded(tmp_path, 0, bluegreen_code=code))


# --- the A/B decision -------------------------------------------------------------------------------------------------
PEEKING = mistake(
    "decision-code",
    '    if min(a.trials, b.trials) < planned:\n        return "continue"',
    '    if min(a.trials, b.trials) < 30:\n        return "continue"',
).replace('        return "no_difference"', '        return "continue"')
SEQUENTIAL = '''
import math


def decide(a, b, alpha=0.05, mde=0.05, baseline=0.85):
    """The mixture SPRT, written by hand: valid at every look."""
    if min(a.trials, b.trials) < 100:
        return "continue"
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    v = pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials)
    d = b.successes / b.trials - a.successes / a.trials
    t2 = mde**2
    log_lr = 0.5 * math.log(v / (v + t2)) + t2 * d**2 / (2 * v * (v + t2)) if v > 0 else 0.0
    if log_lr >= math.log(1 / alpha):
        return "b_better" if d > 0 else "a_better"
    return "continue"
'''
NEVER_DECIDES = 'def decide(a, b, alpha=0.05, mde=0.05, baseline=0.85):\n    return "continue"\n'


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_decision_that_peeks_is_caught_by_its_false_positive_rate(tmp_path, seed):
    ctx = graded(tmp_path, seed, decision_code=PEEKING)
    CHECKS["decision-written"].func(ctx)  # it looks fine on the public cases
    assert "Stopping at the first look with p < alpha is peeking" in failure("decision-peeking-hidden", ctx)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_sequential_test_passes_and_one_that_never_decides_fails_on_power(tmp_path, seed):
    ctx = graded(tmp_path, seed, decision_code=SEQUENTIAL)
    for check in ("decision-written", "decision-peeking-hidden", "decision-power-hidden"):
        CHECKS[check].func(ctx)
    never = graded(tmp_path, seed, decision_code=NEVER_DECIDES)
    CHECKS["decision-peeking-hidden"].func(never)  # never wrong, never useful
    assert "decide found it in only 0%" in failure("decision-power-hidden", never)


# --- GitOps -----------------------------------------------------------------------------------------------------------
ROLLBACK_ONLY = """
def restore(repo, bad_commit, sync, rollback):
    return rollback(repo.git("rev-parse", bad_commit + "~1").strip())
"""
AUTO_OFF_AND_ROLLBACK = """
from mlops_workbench.gitops.spec import APP, AppConfig, app_text


def restore(repo, bad_commit, sync, rollback):
    repo.commit("Turn auto-sync off", {APP: app_text(AppConfig(autoSync=False))})
    return rollback(repo.git("rev-parse", bad_commit + "~1").strip())
"""
NO_SYNC = mistake("gitops-code", "    return sync()\n", "")
REVERTS_HEAD = mistake("gitops-code", '"--no-edit", bad_commit)', '"--no-edit", "HEAD")')
RESETS = mistake(
    "gitops-code", 'repo.git("revert", "--no-edit", bad_commit)', 'repo.git("reset", "--hard", bad_commit + "~1")'
)


@pytest.mark.parametrize(
    "code, words",
    [
        (ROLLBACK_ONLY, ""),
        (AUTO_OFF_AND_ROLLBACK, "git at HEAD still names"),
        (NO_SYNC, "OutOfSync; call sync() after the revert"),
        (REVERTS_HEAD, ""),
        (RESETS, "never rewrite history"),
    ],
    ids=[
        "argocd app rollback alone",
        "auto-sync off then rollback",
        "revert without a sync",
        "reverts HEAD",
        "git reset",
    ],
)
def test_wrong_restores_fail_the_hidden_repositories(tmp_path, code, words):
    for seed in range(4):
        message = failure("gitops-hidden", graded(tmp_path / str(seed), seed, gitops_code=code))
        assert "hidden deployment repository" in message and words in message


def test_a_rollback_alone_is_refused_under_auto_sync_and_out_of_sync_without_it(tmp_path):
    seen = {failure("gitops-hidden", graded(tmp_path / str(s), s, gitops_code=ROLLBACK_ONLY)) for s in range(6)}
    assert any("rollback cannot be initiated when auto-sync is enabled" in m for m in seen), seen
    assert any("git at HEAD still names" in m for m in seen), seen


def test_reverting_head_instead_of_the_bad_commit_is_caught_when_a_commit_follows_it(tmp_path):
    seen = [failure("gitops-hidden", graded(tmp_path / str(s), s, gitops_code=REVERTS_HEAD)) for s in range(4)]
    assert all("harmless commit after the bad one" in m for m in seen), seen


# --- the trade-off ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("always", ["blue-green", "canary", "ab"])
def test_one_strategy_for_every_release_fails_the_hidden_releases(tmp_path, always):
    code = f"def choose(situation):\n    return {always!r}\n"
    for seed in range(3):
        message = failure("choose-hidden", graded(tmp_path, seed, choose_code=code))
        assert f"with {always!r}" in message and ("production ended on" in message or "requests failed" in message)


def test_a_choice_that_ignores_the_schema_change_fails_with_what_happened(tmp_path):
    code = mistake("choose-code", "if situation.schema_change:", "if False:")
    message = failure("choose-hidden", graded(tmp_path, 0, choose_code=code))
    assert "canary aborted" in message and "the candidate should serve" in message


def test_an_unknown_strategy_is_a_clear_failure(tmp_path):
    message = failure("choose-written", graded(tmp_path, 0, choose_code="def choose(situation):\n    return 'yolo'\n"))
    assert "Unknown strategy 'yolo': choose one of 'blue-green', 'canary', 'ab'" in message


# --- the lab's own deployment repository (check 'gitops-live'), on an in-memory runtime --------------------------------
def lab_repository(tmp_path: Path, finish: str) -> Context:
    """The lab's deployment repository after the bad release, finished the way ``finish`` says; the variables
    the notebook exports with it."""
    from mlops_workbench import gitops
    from mlops_workbench.gitops.spec import DESIRED, DesiredState, desired_text
    from mlops_workbench.labs.learner_code import load_module

    scenarios = load_module(LAB / "scenarios.py", "_lab08_scenarios_test")
    runtime = scenarios.MemoryRuntime({"1", "2", "3"})
    wb = Workbench.from_env(tmp_path)
    repo = gitops.init_repo(wb, stable="2", model="iris", auto_sync=finish != "rollback")
    gitops.reconcile(wb, repo, runtime)
    bad = repo.commit("Release version 3", {DESIRED: desired_text(DesiredState(model="iris", stable="3"))})
    gitops.reconcile(wb, repo, runtime)
    if finish == "revert":
        repo.git("revert", "--no-edit", bad)
        gitops.reconcile(wb, repo, runtime)
    elif finish == "rollback":
        gitops.rollback(wb, f"{bad}~1", repo, runtime)
    elif finish == "revert-no-sync":
        repo.git("revert", "--no-edit", bad)
    status = gitops.status(wb, repo, runtime)
    live = runtime.live()
    exported = {
        "sync": status.sync,
        "stable": live.stable.version if live.stable else None,
        "auto_sync": status.auto_sync,
    }
    return Context(
        lab="08-strategies-governance",
        wb=wb,
        variables={"bad_version": "3", "gitops_status": exported},
    )


def test_the_lab_repository_passes_after_a_revert_and_a_sync(tmp_path):
    CHECKS["gitops-live"].func(lab_repository(tmp_path, "revert"))


@pytest.mark.parametrize(
    "finish, words",
    [
        ("rollback", "git at HEAD still deploys the bad version 3"),
        ("revert-no-sync", "the last sync did not apply HEAD"),
        ("nothing", "git at HEAD still deploys the bad version 3"),
    ],
)
def test_the_lab_repository_fails_when_git_and_the_runtime_disagree(tmp_path, finish, words):
    assert words in failure("gitops-live", lab_repository(tmp_path, finish))


# --- the live A/B test (check 'ab-live'), on a prediction log written here ---------------------------------------------
PLAN = {"alpha": 0.05, "mde": 0.1, "baseline": 0.85}


def live_test(tmp_path: Path, *, share_b=0.5, go_on=False, days=8, miscount=False, extra_version=False) -> Context:
    """A prediction log holding a seeded live A/B test of versions 1 (a) and 2 (b), 80% of it labelled, looked at
    after each day with the reference decide; the variables the notebook exports with it."""
    import random
    from datetime import UTC, datetime, timedelta

    from mlops_workbench.labs.learner_code import load_function
    from mlops_workbench.monitoring.predictions import LabelRecord, PredictionLog, PredictionRecord
    from mlops_workbench.strategies import abcount

    ctx = graded(tmp_path, 0)
    decide = load_function(ctx.workspace / "ab_decision.py", "decide")
    rng, log, prefix = random.Random(28), PredictionLog(ctx.wb), "ab-test0001"
    start = datetime.now(UTC) - timedelta(minutes=10)
    looks: list[dict] = []
    for day in range(1, days + 1):
        records, labels = [], []
        for i in range(60):
            version = "2" if rng.random() < share_b else "1"
            if extra_version and day == 1 and i == 0:
                version = "3"
            truth = rng.choice(["setosa", "versicolor", "virginica"])
            said = truth if rng.random() < 0.95 else "virginica"
            rid, ts = abcount.request_id(prefix, day, i), start + timedelta(seconds=day * 60 + i)
            records.append(
                PredictionRecord(
                    request_id=rid,
                    ts=ts,
                    model="iris-strategies",
                    version=version,
                    endpoint="/predict",
                    features={"sepal_length": 5.0},
                    prediction=said,
                    latency_ms=1.0,
                )
            )
            if rng.random() < 0.8:
                labels.append(LabelRecord(request_id=rid, label=truth, ts=ts))
        log.write(records)
        log.add_labels(labels)
        if extra_version:
            break
        counts = abcount.looks(ablive_rows(ctx, prefix), prefix, ["1", "2"], day)[-1]
        a, b = counts["1"].arm, counts["2"].arm
        verdict = decide(a, b, **PLAN)
        wrong = 1 if miscount else 0
        looks.append(
            {"day": day, "a": [a.successes, a.trials + wrong], "b": [b.successes, b.trials], "verdict": verdict}
        )
        if verdict != "continue" and not go_on:
            break
    log.close()
    ctx.variables["ab_live"] = {
        "prefix": prefix,
        "a": "1",
        "b": "2",
        "plan": PLAN,
        "days": 8,
        "looks": looks or [{}],
        "weight_after": 0.0,
    }
    return ctx


def ablive_rows(ctx: Context, prefix: str) -> list:
    from mlops_workbench.monitoring import ablive

    return ablive.logged(ctx.wb, prefix)


def test_a_live_test_counted_from_the_log_passes(tmp_path):
    ctx = live_test(tmp_path)
    looks = ctx.variables["ab_live"]["looks"]
    assert looks[-1]["verdict"] != "continue" and len(looks) < 8, "the seeded test should conclude early"
    CHECKS["ab-live"].func(ctx)


@pytest.mark.parametrize(
    "kind, words",
    [
        ({"share_b": 0.2}, "version 2 answered"),
        ({"miscount": True}, "the prediction log joined with its labels gives"),
        ({"go_on": True}, "yet the test went on"),
        ({"days": 2}, "stopped on day 2 without a verdict"),
        ({"extra_version": True}, "not one of the arms 1, 2"),
    ],
    ids=["skewed split", "miscounted", "went on after the verdict", "stopped early", "a third version served"],
)
def test_a_live_test_fails_on_wrong_states(tmp_path, kind, words):
    assert words in failure("ab-live", live_test(tmp_path, **kind))


def test_a_live_test_fails_when_production_moved_or_traffic_stayed_split(tmp_path):
    from datetime import UTC, datetime, timedelta

    from mlops_workbench.registry import audit
    from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome

    ctx = live_test(tmp_path)
    ctx.variables["ab_live"]["weight_after"] = 50.0
    assert "put it back on a" in failure("ab-live", ctx)
    ctx.variables["ab_live"]["weight_after"] = 0.0
    during = (datetime.now(UTC) - timedelta(minutes=10) + timedelta(seconds=150)).isoformat()
    entry = AuditEntry(
        ts=during,
        action=AuditAction.PROMOTE,
        model="iris-strategies",
        version="2",
        alias="production",
        outcome=AuditOutcome.PROMOTED,
    )
    audit.append(ctx.wb, entry)
    assert "production moved to v2 during the A/B test" in failure("ab-live", ctx)


def test_a_live_test_with_no_traffic_names_the_cell(tmp_path):
    ctx = graded(tmp_path, 0)
    ctx.variables["ab_live"] = {"prefix": "ab-none", "a": "1", "b": "2", "plan": PLAN, "days": 8, "looks": []}
    assert "run the cell 'ab-live'" in failure("ab-live", ctx)
