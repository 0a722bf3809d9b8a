"""Lab 04's state-graded checks on planted work: policies, error-rate decisions and the replay experiment.

No server runs here: the checks read policy.yaml and error_rate.py from a workspace and
replay synthetic traffic through the real analysis (``rollout.replay``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import yaml
from test_rollout_replay import (
    policy_doc,  # the same planted policies as the replay's own tests
)

from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.rollout import policy as pol
from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
LAB = ROOT / "labs" / "04-canary-rollback"
CHECKS = {c.id: c for c in load_checks(LAB / "checks.py")}


def solution_source(cell_id: str) -> str:
    """The reference solution of one cell, as the instructor wrote it."""
    nb = nbformat.read(LAB / "lab.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.id == cell_id)


def workspace(tmp_path: Path, doc: dict | None = None, decision: str | None = None) -> Context:
    ctx = Context(
        lab="04-canary-rollback",
        wb=Workbench.from_env(tmp_path),
        variables={"rps": 80, "fault_error_rate": 0.3, "canary_per_window": 80 * 0.05 * 8},
    )
    ctx.workspace.mkdir(parents=True)
    if doc is not None:
        (ctx.workspace / "policy.yaml").write_text(yaml.safe_dump(doc))
    if decision is not None:
        (ctx.workspace / "error_rate.py").write_text(decision)
    return ctx


def reference_decision() -> str:
    src = solution_source("write-decision").split("\n", 1)[1]  # drop the %%writefile line
    return "".join(
        line
        for line in src.splitlines(keepends=True)
        if "# BEGIN SOLUTION" not in line and "# END SOLUTION" not in line
    )


def reference_policy() -> dict:
    return yaml.safe_load((ROOT / "benchmarks" / "lab04-policy.yaml").read_text())


@pytest.mark.parametrize("seed", [*range(8), 73])  # 73 once aborted a healthy replay (0.5% background errors)
def test_reference_policy_and_decision_pass_every_pure_check_whatever_the_hidden_seed(tmp_path, seed):
    ctx = workspace(tmp_path, reference_policy(), reference_decision())
    ctx.seed, ctx.variables["canary_per_window"] = seed, 80 * 0.05 * 10
    for check_id in (
        "policy-valid",
        "sample-arithmetic",
        "decision-written",
        "decision-planted",
        "replay-no-false-abort",
        "replay-detects-fault",
    ):
        CHECKS[check_id].func(ctx)


@pytest.mark.parametrize("seed", [34, 73, 84])
def test_healthy_replays_never_abort_the_reference_policy_at_the_labs_rps(tmp_path, seed):
    """Grading seeds whose healthy replays aborted the reference policy at the lab's 60 rps, when healthy traffic
    still had the replay's default 0.5% background errors."""
    ctx = workspace(tmp_path, reference_policy())
    ctx.seed, ctx.variables["rps"] = seed, 60
    CHECKS["replay-no-false-abort"].func(ctx)


def indefinite_pause() -> dict:
    doc = policy_doc()
    doc["steps"][1] = {"pause": {}}  # Argo's manual gate: valid policy, but nobody continues it in this lab
    return doc


@pytest.mark.parametrize(
    "doc, match",
    [
        (policy_doc(first=20), "setWeight: 5"),
        (policy_doc(min_sample=3), "minSampleSize to at least 20"),
        (policy_doc(window="30s"), "shorten interval, window"),
        (indefinite_pause(), r"step\(s\) \[1\] pause without a duration.*duration: 30s"),
    ],
)
def test_policy_mistakes_are_named(tmp_path, doc, match):
    with pytest.raises(CheckFailed, match=match):
        CHECKS["policy-valid"].func(workspace(tmp_path, doc))


def test_policy_without_a_minimum_sample_is_caught_by_the_replay(tmp_path):
    doc = policy_doc()
    del doc["analysis"]["minSampleSize"]  # the default (100) never fills at 5%
    with pytest.raises(CheckFailed, match="minimum sample does not fill"):
        CHECKS["replay-no-false-abort"].func(workspace(tmp_path, doc))


def test_sample_arithmetic_wants_the_numbers_and_a_margin(tmp_path):
    ctx = workspace(tmp_path, policy_doc(window="4s"))
    with pytest.raises(CheckFailed, match="rps x weight/100 x window = 16"):
        CHECKS["sample-arithmetic"].func(ctx)
    ctx.variables["canary_per_window"] = 16.0
    with pytest.raises(CheckFailed, match="Lengthen the window"):
        CHECKS["sample-arithmetic"].func(ctx)


NO_MINIMUM = """
from scipy import stats
def decide(ce, cn, se, sn, max_rate, alpha, min_sample):
    if cn == 0 or ce / cn <= max_rate:
        return "successful"
    p = stats.fisher_exact([[ce, cn - ce], [se, sn - se]], alternative="greater").pvalue
    return "failed" if p < alpha else "inconclusive"
"""
NO_TEST = """
def decide(ce, cn, se, sn, max_rate, alpha, min_sample):
    if cn < min_sample:
        return "inconclusive"
    return "successful" if ce / cn <= max_rate else "failed"
"""
TWO_SIDED = NO_MINIMUM.replace("if cn == 0 or", 'if cn < min_sample:\n        return "inconclusive"\n    if').replace(
    ', alternative="greater"', ""
)
FIXED_ALPHA = TWO_SIDED.replace("[se, sn - se]])", '[se, sn - se]], alternative="greater")').replace(
    "p < alpha", "p < 0.05"
)


@pytest.mark.parametrize(
    "source, match",
    [
        (NO_MINIMUM, "below min_sample 20"),
        (NO_TEST, "Fisher exact test against stable"),
        (TWO_SIDED, "one-sided test"),
        (FIXED_ALPHA, "compare p with the alpha argument"),
    ],
)
def test_planted_windows_catch_each_decision_mistake(tmp_path, source, match):
    ctx = workspace(tmp_path, decision=source)
    CHECKS["decision-written"].func(ctx)  # each of them looks right on the easy cases
    with pytest.raises(CheckFailed, match=match):
        CHECKS["decision-planted"].func(ctx)


def test_the_stub_fails_the_decision_checks(tmp_path):
    ctx = workspace(tmp_path, decision="def decide(*a):\n    raise NotImplementedError('write it')\n")
    for check_id in ("decision-written", "decision-planted"):
        with pytest.raises(CheckFailed, match="stub"):
            CHECKS[check_id].func(ctx)


def test_a_loose_threshold_is_blamed_not_the_timing(tmp_path):
    ctx = workspace(tmp_path, policy_doc(max_rate=0.5))
    with pytest.raises(CheckFailed, match="lower condition.max"):
        CHECKS["replay-detects-fault"].func(ctx)
    ctx.variables.update(faulty_version="3", healthy_version="2", model_name="m", faulty_outcome="promoted")
    with pytest.raises(CheckFailed, match=r"condition.max = 0.5 is at or above the injected error rate"):
        CHECKS["faulty-rolled-back"].func(ctx)


def test_the_notebook_solution_policy_passes_the_replays_at_the_notebook_rps(tmp_path, monkeypatch):
    ctx = workspace(tmp_path)
    monkeypatch.chdir(ctx.workspace)
    code = "".join(
        line
        for line in solution_source("write-policy").splitlines(keepends=True)
        if "SOLUTION" not in line and not line.startswith(("policy =", "print("))
    )
    namespace = {"rps": 60, "Path": Path}
    exec(code, namespace)
    ctx.variables.update(rps=60, canary_per_window=namespace["canary_per_window"])
    for check_id in ("policy-valid", "sample-arithmetic", "replay-no-false-abort", "replay-detects-fault"):
        CHECKS[check_id].func(ctx)
    # the soak benchmark rolls out its copy of this solution (kept out of the package): the two must not drift apart
    assert pol.load(ctx.workspace / "policy.yaml") == pol.load(ROOT / "benchmarks" / "lab04-policy.yaml")
    assert "lab04" not in pol.builtin_names(), "the package learners get must not hold the lab's solution policy"
