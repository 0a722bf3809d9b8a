"""Lab 04's rollout-loop exercise: the reference loop passes the simulated checks, each plausible mistake fails
a hidden one with its fix, a submission that calls the package's controller scores 0 for the exercise.

The simulated checks run the learner's run_canary on ``rollout.sim`` (a virtual clock): no server, milliseconds.
The live check ('loop-live', real servers) runs in the lab's grading (``workbench labs validate``).
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_workbench.labs import answers
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.release import learner_notebook
from mlops_workbench.rollout import policy as pol
from mlops_workbench.rollout import sim, trial
from mlops_workbench.workbench import Workbench

LAB = Path(__file__).resolve().parents[1] / "labs" / "04-canary-rollback"
CHECKS = {c.id: c for c in load_checks(LAB / "checks.py")}


def solution(cell_id: str) -> str:
    nb = nbformat.read(LAB / "lab.ipynb", as_version=4)
    return next(c.source for c in nb.cells if c.id == cell_id)


def reference_loop() -> str:
    src = solution("write-loop").split("\n", 1)[1]  # drop the %%writefile line
    return "".join(line for line in src.splitlines(keepends=True) if "SOLUTION" not in line)


def mistake(old: str, new: str) -> str:
    source = reference_loop()
    assert old in source, f"the reference loop no longer contains {old!r}"
    return source.replace(old, new)


def workspace(tmp_path: Path, loop: str, seed: int = 0) -> Context:
    ctx = Context(lab="04-canary-rollback", wb=Workbench.from_env(tmp_path), seed=seed)
    ctx.workspace.mkdir(parents=True)
    (ctx.workspace / "canary.py").write_text(loop)
    return ctx


@pytest.mark.parametrize("seed", [*range(6), 28, 39, 823655])  # the last three once aborted the healthy canary
def test_reference_loop_passes_the_simulated_checks_whatever_the_hidden_seed(tmp_path, seed):
    ctx = workspace(tmp_path, reference_loop(), seed)
    CHECKS["loop-written"].func(ctx)
    CHECKS["loop-simulated"].func(ctx)


NEVER_RESTORES = mistake(
    """        promote()
        router.set_weight(0)""",
    """        promote()""",
).replace(
    """                if reason:
                    router.set_weight(0)""",
    """                if reason:""",
)
NO_MINIMUM_DATA = mistake(
    """        if missing:
            router.set_weight(0)""",
    """        if False:
            router.set_weight(0)""",
).replace("""            if phases.count("inconclusive") > m.inconclusive_limit:""", """            if False:""")
JUDGES_AT_THE_END = mistake(
    """            while True:
                measure_due()
                reason = failing()""",
    """            sleep(step.pause.duration)
            while True:
                measure_due()
                reason = failing()""",
)
NO_FINALLY = mistake(
    """    except BaseException:
        router.set_weight(0)  # whatever went wrong, the canary leaves the traffic
        raise""",
    """    except BaseException:
        raise""",
).replace(
    """            except MetricsUnavailable as err:
                phase, message = "error", str(err)""",
    """            except ZeroDivisionError as err:
                phase, message = "error", str(err)""",
)

IGNORES_FAILURE_LIMIT = mistake(
    """            if phases.count("failed") > m.failure_limit:""",
    """            if phases.count("failed") > 0:""",
)


@pytest.mark.parametrize(
    "loop, check_id, match",
    [
        (NEVER_RESTORES, "loop-written", "weight was left at 5"),
        (NO_MINIMUM_DATA, "loop-simulated", "called promote\\(\\).*missing data never promotes"),
        (JUDGES_AT_THE_END, "loop-simulated", "fails late.*(called promote|measure during the pauses)"),
        (NO_FINALLY, "loop-simulated", "metrics backend is down.*weight was left.*MetricsUnavailable"),
        (IGNORES_FAILURE_LIMIT, "loop-simulated", "failed every request for 1 s.*returned 'aborted'.*failureLimit"),
    ],
)
def test_each_loop_mistake_fails_a_check_with_its_fix(tmp_path, loop, check_id, match):
    ctx = workspace(tmp_path, loop)
    if check_id == "loop-simulated":
        CHECKS["loop-written"].func(ctx)  # the easy public cases still pass
    with pytest.raises(CheckFailed, match=match):
        CHECKS[check_id].func(ctx)


def test_a_loop_that_reads_no_numbers_from_the_policy_fails_the_hidden_policies(tmp_path):
    hardcoded = mistake("for step in policy.steps:", "for step in LAB_STEPS:").replace(
        "def run_canary(",
        "LAB_STEPS = __import__('mlops_workbench.rollout.policy', fromlist=['x']).parse("
        "{'steps': [{'setWeight': 20}, {'pause': {'duration': 10}}, {'setWeight': 50}, {'pause': {'duration': 10}}], "
        "'analysis': {'metrics': [{'name': 'e', 'kind': 'errorRate', 'condition': {'max': 0.02}}]}}).steps\n\n\n"
        "def run_canary(",
        1,
    )
    ctx = workspace(tmp_path, hardcoded, seed=3)
    CHECKS["loop-written"].func(ctx)  # it walks the public policy's steps
    with pytest.raises(CheckFailed):
        CHECKS["loop-simulated"].func(ctx)


def test_the_stub_fails_the_loop_checks(tmp_path):
    ctx = workspace(tmp_path, "def run_canary(*a, **k):\n    raise NotImplementedError('write it')\n")
    for check_id in ("loop-written", "loop-simulated"):
        with pytest.raises(CheckFailed, match="stub"):
            CHECKS[check_id].func(ctx)


def test_a_burst_fault_ends_after_fault_for():
    s = sim.Simulation(sim.Scenario(rps=100, error_rate=0.0, fault_error_rate=1.0, fault_at=2, fault_for=1, seed=5))
    s.router.set_weight(50)

    def canary(start: float, end: float) -> tuple[float, float]:  # (answered, failed) in the window
        snap = s.metrics.window(start, end)
        return snap.requests[("canary", "200")], snap.requests[("canary", "500")]

    s.sleep(8)
    before, burst, after = canary(0, 2), canary(2, 3), canary(3, 8)
    assert before[0] > 0 and before[1] == 0
    assert burst[0] == 0 and burst[1] > 0, "every canary request of the burst fails"
    assert after[0] > 0 and after[1] == 0, "the canary recovers once fault_for has passed"


def test_trial_blames_the_weight_left_on_after_an_exception():
    policy = pol.parse(
        {
            "steps": [{"setWeight": 10}, {"pause": {"duration": 5}}],
            "analysis": {"metrics": [{"name": "e", "kind": "errorRate", "condition": {"max": 0.02}}]},
        }
    )

    def crashes(policy, router, metrics, promote, log, clock, sleep):
        router.set_weight(10)
        raise RuntimeError("boom")

    t = trial.simulate(crashes, policy, sim.Scenario(rps=50, fault_error_rate=0.3, fault_at=0))
    assert t.raised == "RuntimeError: boom" and t.weight == 10
    assert "weight was left at 10.0%" in trial.problem(t, "x", policy, 50, healthy=False)


@pytest.mark.parametrize(
    "cell, code, call",
    [
        (
            "write-loop",
            (
                "%%writefile canary.py\nfrom mlops_workbench.rollout import ops\n\ndef run_canary(policy, *a, **k):\n"
                "    return ops.start(policy, '2')\n"
            ),
            "rollout.ops.start",
        ),
        (
            "write-loop",
            "%%writefile canary.py\nfrom mlops_workbench.rollout.analysis import verdict\n",
            "rollout.analysis.verdict",
        ),
        ("healthy-rollout", "healthy_outcome = ops.start(policy, versions.candidate).phase\n", "rollout.ops.start"),
        (
            "write-policy",
            "policy = pol.load('demo')\nPath('policy.yaml').write_text(pol.to_yaml(policy))\n",
            "rollout.policy.load",
        ),
        (
            "incident",
            "incident = __import__('mlops_workbench.rollout.timeline', fromlist=['x']).incident([])\n",
            "rollout.timeline.incident",
        ),
    ],
)
def test_answer_functions_are_found_in_their_exercise(cell, code, call):
    lab = Lab(LAB)
    nb = nbformat.read(LAB / "lab.ipynb", as_version=4)
    cells = {c.id: (code if c.id == cell else c.source) for c in nb.cells if c.cell_type == "code"}
    cells["prerequisites"] += "\nfrom mlops_workbench.rollout import ops\n"
    found = answers.scan(cells, lab.answer_functions, editable=[cell], expand=True)
    assert [v.short for v in found if v.cell == cell] == [call]
    assert cell in found[0].cells and found[0].instead in found[0].message


def test_the_reference_solution_calls_no_answer_function():
    lab = Lab(LAB)
    nb = nbformat.read(LAB / "lab.ipynb", as_version=4)
    cells = {c.id: c.source for c in nb.cells if c.cell_type == "code"}
    editable = [c.id for c in learner_notebook(lab).cells if c.metadata["workbench"]["editable"]]
    assert "write-loop" in editable and "load-policy" not in editable
    assert answers.scan(cells, lab.answer_functions, editable=editable, expand=True) == []
