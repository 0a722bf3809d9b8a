"""An Argo canary strategy read back into a policy (k8s.steps), and lab 05's check that replays the learner's strategy.

The conversion is pure logic on dicts. The check runs for real: lab 05's checks.py on a state folder holding the
strategy the reference solution's cell writes, or a plausible wrong one, replayed at the rate the kind cluster's
load generator sends.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest
import yaml

from mlops_workbench.k8s import lab as k8slab
from mlops_workbench.k8s import promql, render
from mlops_workbench.k8s.steps import StepError, duration, step, to_policy
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.labs.format import Lab
from mlops_workbench.rollout import policy as pol
from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
LAB = Lab(ROOT / "labs" / "05-kind-canary")
DEMO = pol.builtin("demo")


def canary(policy: pol.Policy = DEMO) -> dict:
    return render.strategy_patch(policy)["spec"]["strategy"]["canary"]


def templates(policy: pol.Policy = DEMO) -> dict:
    docs = render.render(policy)["templates"]
    return {t["metadata"]["name"]: t for t in docs}


def convert(c: dict, tmpl: dict | None = None):
    return to_policy(c, tmpl or templates(), k8slab.metric_of(DEMO), DEMO.analysis.min_sample_size)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [(8, 8.0), ("8", 8.0), ("30s", 30.0), ("1m", 60.0), ("1m30s", 90.0), ("500ms", 0.5), ("1h", 3600.0), ("2.5s", 2.5)],
)
def test_argo_durations_become_seconds(text, seconds):
    assert duration(text, "pause.duration") == seconds


@pytest.mark.parametrize("text", ["5 minutes", "", "-1s", "1d", True, None, "s"])
def test_a_bad_duration_names_the_field_and_the_form(text):
    with pytest.raises(StepError, match=r"steps\[1\]: pause.duration is .*write it like 30s"):
        duration(text, "steps[1]: pause.duration")


def test_the_rendered_strategy_is_the_policy_again_with_its_gates_at_the_end():
    run = convert(canary())
    assert run.policy.steps == DEMO.steps
    background = {m.name: m for m in run.policy.analysis.metrics if m.name in run.background}
    assert background == {m.name: m for m in DEMO.analysis.metrics}
    assert run.gates == [f"{m.name}-gate" for m in DEMO.analysis.metrics]
    gate = next(m for m in run.policy.analysis.metrics if m.name == "error-rate-gate")
    assert (gate.count, gate.initial_delay, gate.failure_limit, gate.inconclusive_limit) == (1, 16.0, 0, 0)
    assert (run.steps_end, run.last_weight, run.last_weight_at) == (16.0, 50, 8.0)
    assert run.bound() == DEMO.detection_bound()


def test_argos_indefinite_pause_reads_as_a_pause_without_a_duration():
    assert step(1, {"pause": {}}) == pol.Step(pause=pol.Pause(duration=None))
    assert step(1, {"pause": {"duration": None}}) == pol.Step(pause=pol.Pause(duration=None))
    held = [pol.Step(set_weight=20), pol.Step(pause=pol.Pause()), pol.Step(pause=pol.Pause(duration=8))]
    rendered = render.steps(DEMO.model_copy(update={"steps": held}))
    assert [step(i, s) for i, s in enumerate(rendered)] == held


def test_the_policy_keeps_the_name_it_is_given():
    """The loops over the analysis templates once reused the name of the policy for each template's: the replayed
    policy came back named after the last gate template."""
    run = to_policy(canary(), templates(), k8slab.metric_of(DEMO), DEMO.analysis.min_sample_size, "my-rollout")
    assert run.policy.name == "my-rollout"
    assert convert(canary()).policy.name == "rollout"


def test_template_limits_and_argo_defaults_and_starting_step_map():
    tmpl = templates()
    spec = tmpl["error-rate"]["spec"]["metrics"][0]
    spec.update(interval="1m30s", failureLimit=3, count=5)
    for key in ("initialDelay", "consecutiveErrorLimit", "inconclusiveLimit"):
        spec.pop(key, None)
    c = canary()
    c["analysis"]["startingStep"] = 2
    m = next(m for m in convert(c, tmpl).policy.analysis.metrics if m.name == "error-rate")
    assert (m.interval, m.failure_limit, m.count, m.initial_delay) == (90.0, 3, 5, 8.0)
    assert (m.consecutive_error_limit, m.inconclusive_limit) == (4, 0)  # Argo's defaults


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda c: c["steps"].__setitem__(1, {"pause": {}}),
            r"steps\[1\]: a pause without a duration is indefinite.*give steps\[1\]'s pause a duration",
        ),
        (lambda c: c["steps"].__setitem__(1, {"pause": None}), r"steps\[1\]: pause is None: write pause: \{duration"),
        (lambda c: c["steps"].__setitem__(1, {"pause": {"duration": "soon"}}), r"steps\[1\]: pause.duration is 'soon'"),
        (lambda c: c["steps"].insert(2, {"experiment": {}}), r"steps\[2\]: experiment cannot be replayed"),
        (lambda c: c["steps"].insert(0, c["steps"][-1]), r"steps\[0\]: an analysis step before the last step"),
        (lambda c: c["steps"].__setitem__(0, {"setWeight": 12.5}), r"steps\[0\]: setWeight is 12.5: write a whole"),
        (lambda c: c["steps"].__setitem__(0, {"setWeigth": 20}), r"steps\[0\]: 'setWeigth' is not a canary step"),
        (lambda c: c.update(steps=[]), r"no steps: Argo would send all traffic"),
        (
            lambda c: c["analysis"]["templates"].append({"templateName": "errors"}),
            r"analysis.templates\[3\] runs the template 'errors', which measures no metric",
        ),
        (lambda c: c["analysis"]["args"].pop(0), r"background analysis does not pass the argument 'canary-hash'"),
        (
            lambda c: c["analysis"]["args"][0]["valueFrom"].update(podTemplateHashValue="Stable"),
            r"passes canary-hash from the Stable pods.*use podTemplateHashValue: Latest",
        ),
        (lambda c: (c.pop("analysis"), c["steps"].pop()), r"the canary has no analysis: nothing measures it"),
    ],
)
def test_what_cannot_be_replayed_is_named(edit, message):
    c = copy.deepcopy(canary())
    edit(c)
    with pytest.raises(StepError, match=message):
        convert(c)


# --- the check, on the strategy file only -------------------------------------------------------------------------
CHECK = next(c for c in load_checks(LAB.folder / "checks.py") if c.id == "strategy-replays")


def reference_strategy(manifests: Path, policy: pol.Policy) -> None:
    """Run the reference solution's cell 'write-strategy' (its own code, from the lab notebook)."""
    cell = next(c.source for c in nbformat.read(LAB.source, as_version=4).cells if c.get("id") == "write-strategy")
    exec(
        cell.replace("print(", "str("),
        {
            "policy": policy,
            "manifests": manifests,
            "promql": promql,  # noqa: S102  (the lab's own solution cell)
            "render": render,
            "yaml": yaml,
        },
    )


def graded(tmp_path: Path, policy: pol.Policy, edit=None, seed: int = 4) -> str:
    ctx = Context(lab=LAB.id, wb=Workbench.from_env(tmp_path), seed=seed)
    manifests = ctx.workspace / "manifests"
    manifests.mkdir(parents=True)
    (manifests / "policy.yaml").write_text(pol.to_yaml(policy))
    reference_strategy(manifests, policy)
    if edit:
        patch = yaml.safe_load((manifests / "rollout-strategy.yaml").read_text())
        edit(patch["spec"]["strategy"]["canary"])
        (manifests / "rollout-strategy.yaml").write_text(yaml.safe_dump(patch))
    try:
        CHECK.func(ctx)
    except CheckFailed as err:
        return str(err)
    return "passed"


@pytest.mark.parametrize("source", ["demo", str(ROOT / "benchmarks" / "lab04-policy.yaml")])
def test_the_reference_strategy_passes_for_the_demo_and_lab04_policies(tmp_path, source):
    assert CHECK.visibility == "hidden" and CHECK.points == 2
    for seed in range(3):
        assert graded(tmp_path / str(seed), pol.load(source), seed=seed) == "passed"


def test_five_percent_then_everything_after_one_second_fails_saying_lengthen_the_pauses(tmp_path):
    def edit(c):
        c["steps"] = [{"setWeight": 5}, {"pause": {"duration": "1s"}}, {"setWeight": 100}, c["steps"][-1]]

    message = graded(tmp_path, DEMO, edit)
    assert "a healthy canary was aborted in 20 of 20 replays at 60 rps" in message
    assert "the pauses end at 1s: make the pauses longer than its initialDelay" in message


def test_pauses_too_short_for_the_minimum_sample_fail_with_the_numbers(tmp_path):
    def edit(c):
        c["steps"] = [{"setWeight": 5}, {"pause": {"duration": "4s"}}, c["steps"][-1]]

    message = graded(tmp_path, DEMO, edit)
    assert re.search(
        r"no window of error-rate \(4s\) holds more than about \d+ canary requests, under the minimum "
        r"sample 20: lengthen the pauses \(at 5% the canary needs 7s for 20 requests\)",
        message,
    ), message


def test_a_fault_caught_only_after_the_last_weight_fails(tmp_path):
    message = graded(tmp_path, DEMO, lambda c: c["steps"][1]["pause"].update(duration="3s"))
    assert "was not stopped in time" in message and "the canary must be out before the weight 50% at 3s" in message


def test_no_analysis_fails_saying_what_to_add(tmp_path):
    message = graded(tmp_path, DEMO, lambda c: (c.pop("analysis"), c["steps"].pop()))
    assert message.startswith("your strategy cannot be replayed: the canary has no analysis")
    assert "add spec.strategy.canary.analysis" in message


def test_the_check_reads_only_the_strategy_file_and_names_exercise_1(tmp_path):
    ctx = Context(lab=LAB.id, wb=Workbench.from_env(tmp_path))
    (ctx.workspace / "manifests").mkdir(parents=True)
    (ctx.workspace / "manifests" / "policy.yaml").write_text(pol.to_yaml(DEMO))
    with pytest.raises(CheckFailed, match=r"rollout-strategy.yaml does not exist: write it in Exercise 1"):
        CHECK.func(ctx)
    assert not (ctx.workspace / "manifests" / "analysis-templates.yaml").exists()


def test_the_cluster_sends_lab_04s_rate_which_its_policies_are_sized_for():
    cell = next(
        c.source
        for c in nbformat.read(ROOT / "labs" / "04-canary-rollback" / "lab.ipynb", as_version=4).cells
        if c.get("id") == "parameters"
    )
    assert k8slab.lab_rps() == float(re.search(r"^rps = (\d+)", cell, re.MULTILINE).group(1)) == 60
