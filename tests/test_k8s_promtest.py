"""Lab 05's PromQL grading: Argo conditions read as PromQL (pure), hidden scenarios that separate healthy from
faulty (pure), and the real promtool deciding the package's reference templates and plausible wrong ones.
"""

from __future__ import annotations

import copy
import random
import shutil

import pytest

from mlops_workbench.k8s import promtest, render, scenarios
from mlops_workbench.k8s.conditions import ConditionError, to_promql
from mlops_workbench.rollout import policy as pol

POLICY = pol.builtin("demo")
METRICS = {render.template_name(m, g): m for m in POLICY.analysis.metrics for g in (False, True)}
needs_promtool = pytest.mark.skipif(
    shutil.which("promtool") is None, reason="promtool missing: install Debian's prometheus package (.ci/run does)"
)


@pytest.mark.parametrize(
    ("condition", "promql"),
    [
        ("result[0] >= 0 && result[0] <= 0.02", "((Q) >= 0.0) and on() ((Q) <= 0.02)"),
        ("0.98 <= result[0]", "(Q) >= 0.98"),
        ("result[0] > 1 || result[0] < -1", "((Q) > 1.0) or on() ((Q) < -1.0)"),
        ("not (result[0] > 1)", "vector(1) unless on() ((Q) > 1.0)"),
        ("result[0] < 1e-3 and result [ 0 ] != 0", "((Q) < 0.001) and on() ((Q) != 0.0)"),
    ],
)
def test_conditions_become_promql_filters(condition, promql):
    assert to_promql(condition, "Q") == promql


@pytest.mark.parametrize(
    ("condition", "message"),
    [
        ("len(result) > 0", "uses 'len'"),
        ("result[0] <=", "ends too early"),
        ("1 < 2", r"must compare result\[0\] with a number"),
        ("(result[0] < 1", "ends too early"),
        ("", "empty"),
        ('result.phase == "successful"', "uses 'result', which the grader does not read"),
    ],
)
def test_conditions_outside_the_subset_are_refused_naming_the_form(condition, message):
    with pytest.raises(ConditionError, match=message):
        to_promql(condition, "Q")


@pytest.mark.parametrize("seed", range(20))
def test_scenarios_leave_a_clear_margin_around_the_latency_bound(seed):
    metric = METRICS["latency-p99"]
    rng = random.Random(seed)
    healthy, slow, sparse = scenarios.scenarios(metric, 20, rng)
    for ok in (healthy, sparse):
        assert ok.canary.p99() <= 0.8 * scenarios.latency_bound(metric, ok.stable.p99())
    assert slow.canary.p99() >= 1.25 * scenarios.latency_bound(metric, slow.stable.p99())
    window = metric.lookback
    assert sparse.canary.rate * window < 20 <= healthy.canary.rate * window
    assert healthy.canary.hash != healthy.stable.hash and healthy.args["canary-hash"] == healthy.canary.hash


def test_the_histogram_quantile_interpolates_inside_the_bucket():
    assert scenarios.histogram_p99([(0.1, 0.0), (0.2, 100.0), (float("inf"), 100.0)]) == pytest.approx(0.199)
    assert scenarios.histogram_p99([(0.1, 50.0), (float("inf"), 100.0)]) == 0.1


def templates(query: str | None = None, success: str | None = None, failure: str | None = "keep") -> list[dict]:
    out = copy.deepcopy(render.render(POLICY)["templates"])
    for t in out:
        spec = t["spec"]["metrics"][0]
        if "prometheus" not in spec["provider"]:
            continue
        if query is not None:
            spec["provider"]["prometheus"]["query"] = query
        if success is not None:
            spec["successCondition"] = success
        if failure != "keep":
            spec.pop("failureCondition") if failure is None else spec.update(failureCondition=failure)
    return out


def problems(tmpls: list[dict], seed: int = 7) -> list[str]:
    return [
        str(v)
        for v in promtest.grade(tmpls, METRICS, POLICY.analysis.min_sample_size, random.Random(seed))
        if v.problem
    ]


@needs_promtool
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_the_reference_templates_decide_every_hidden_canary_right(seed):
    verdicts = promtest.grade(templates(), METRICS, POLICY.analysis.min_sample_size, random.Random(seed))
    assert {(v.template, v.scenario) for v in verdicts} >= {("error-rate", "errors"), ("latency-p99-gate", "slow")}
    assert [str(v) for v in verdicts if v.problem] == []


@needs_promtool
@pytest.mark.parametrize("query", ["vector(0)", "vector(1)", "vector(-1)"])
def test_a_constant_query_fails(query):
    found = problems(templates(query))
    assert any(p.startswith("error-rate:") for p in found) and any(p.startswith("latency-p99-gate:") for p in found)


@needs_promtool
def test_counting_4xx_as_errors_fails_the_healthy_canary():
    q = (
        'sum(increase(workbench_model_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}",'
        'status!="200"}[4s])) / sum(increase(workbench_model_requests_total{'
        'rollouts_pod_template_hash="{{args.canary-hash}}"}[4s]))'
    )
    found = problems([t for t in templates(q) if t["metadata"]["name"] == "error-rate"])
    assert "error-rate: a healthy canary with enough requests was not Successful" in found


@needs_promtool
def test_no_minimum_sample_guard_passes_a_sparse_canary_and_fails():
    q = (
        'sum(increase(workbench_model_requests_total{rollouts_pod_template_hash="{{args.canary-hash}}",'
        'status=~"5.."}[4s]) or on() vector(0)) / sum(increase(workbench_model_requests_total{'
        'rollouts_pod_template_hash="{{args.canary-hash}}"}[4s]))'
    )
    found = problems([t for t in templates(q) if t["metadata"]["name"] == "error-rate"])
    assert found == [
        (
            "error-rate: a canary with fewer requests than minSampleSize was Successful: return a value "
            "that matches neither condition (e.g. -1) below the minimum"
        )
    ]


@needs_promtool
def test_one_value_per_pod_is_named():
    q = 'increase(workbench_model_requests_total{rollouts_pod_template_hash="{{args.stable-hash}}",status="200"}[4s])'
    found = problems([t for t in templates(q) if t["metadata"]["name"] == "error-rate"])
    assert any("more than one sample" in p for p in found)


@needs_promtool
def test_bad_promql_an_unknown_arg_and_no_condition_are_named():
    assert any("not valid PromQL" in p for p in problems(templates("sum(rate(x[4s])")))
    assert any("{{args.pod}}" in p for p in problems(templates('sum(x{pod="{{args.pod}}"})')))
    assert any(
        "neither successCondition nor failureCondition" in p for p in problems(templates(success="", failure=None))
    )


@needs_promtool
def test_a_success_condition_alone_decides_as_argo_does():
    assert problems(templates(failure=None)) == []


def test_a_missing_promtool_names_the_debian_package(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(promtest.tools, "find", lambda tool: None)
    with pytest.raises(promtest.tools.ToolMissing, match=r"prometheus package.*apt-get install prometheus"):
        promtest.promtool()
