"""The policy renders faithfully into Argo manifests; the committed base matches the demo policy;
the web analysis endpoint reuses rollout.analysis on Prometheus-shaped data; missing tools say
what to install; versions live in one place."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from mlops_workbench import tools
from mlops_workbench.cli.main import app
from mlops_workbench.k8s import analysis_app, cluster, promql, render, versions
from mlops_workbench.k8s.errors import FAILURES as K8S_FAILURES
from mlops_workbench.k8s.errors import K8sError, ToolMissing
from mlops_workbench.rollout import policy as pol

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "deploy" / "k8s" / "base"


def test_committed_base_is_the_rendered_demo_policy():
    for name, text in render.texts(pol.builtin("demo"), "demo").items():
        assert (BASE / name).read_text() == text, (
            f"{name} drifted: run `workbench k8s render --policy demo --out deploy/k8s/base`"
        )


def test_fields_keep_argo_meaning():
    policy = pol.builtin("default")
    out = render.render(policy)
    steps = out["strategy"][0]["spec"]["strategy"]["canary"]["steps"]
    assert steps[:6] == [
        {"setWeight": 5},
        {"pause": {"duration": "5m"}},
        {"setWeight": 25},
        {"pause": {"duration": "5m"}},
        {"setWeight": 50},
        {"pause": {"duration": "5m"}},
    ]
    assert [t["templateName"] for t in steps[-1]["analysis"]["templates"]] == [
        "error-rate-gate",
        "latency-p99-gate",
        "prediction-shift-gate",
    ]
    templates = {t["metadata"]["name"]: t["spec"]["metrics"][0] for t in out["templates"]}
    er = templates["error-rate"]
    assert (
        er["interval"],
        er["initialDelay"],
        er["failureLimit"],
        er["consecutiveErrorLimit"],
        er["inconclusiveLimit"],
    ) == ("1m", "1m", 4, 4, 10)
    assert "count" not in er  # count 0: until the last step
    assert (
        er["successCondition"] == "result[0] >= 0 && result[0] <= 0.02" and er["failureCondition"] == "result[0] > 0.02"
    )
    q = er["provider"]["prometheus"]["query"]
    assert "workbench_model_requests_total" in q and 'status=~"5.."' in q and "[1m]" in q and ">= 100" in q
    lat = templates["latency-p99"]["provider"]["prometheus"]["query"]
    assert "workbench_model_request_duration_seconds_bucket" in lat and "* 1.5 + 0.005" in lat
    shift = templates["prediction-shift"]["provider"]["web"]
    assert shift["url"].startswith(render.ANALYSIS_URL + "/measure/prediction-shift?")
    gate = templates["error-rate-gate"]
    assert (
        gate["count"] == 1 and gate["inconclusiveLimit"] == 0 and gate["failureLimit"] == 0 and "interval" not in gate
    )


def test_a_pause_without_a_duration_renders_as_argos_indefinite_pause():
    held = pol.builtin("demo").model_copy(update={"steps": [pol.Step(set_weight=20), pol.Step(pause=pol.Pause())]})
    assert render.steps(held) == [{"setWeight": 20}, {"pause": {}}]


def test_fractional_weight_is_refused():
    data = pol.to_yaml(pol.builtin("demo")).replace("setWeight: 20.0", "setWeight: 20.5")
    assert "20.5" in data
    with pytest.raises(pol.PolicyError, match="whole percent"):
        render.render(pol.parse(yaml.safe_load(data)))


def test_durations():
    assert [promql.duration(s) for s in (2, 60, 300, 0.5, 90)] == ["2s", "1m", "5m", "500ms", "90s"]


def test_cli_render_writes_files(tmp_path):
    result = CliRunner().invoke(app, ["k8s", "render", "--policy", "demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(render.FILES.values())
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps: []\n")
    result = CliRunner().invoke(app, ["k8s", "render", "--policy", str(bad)])
    assert result.exit_code == 2 and "not a valid rollout policy" in result.output


def fake_prometheus(canary_errors: int, canary_labels: dict[str, int], n: int = 200):
    """Prometheus answers shaped like the real API, per query kind."""

    def query(expr: str):
        rows = []
        for h, role in (("c1", "canary"), ("s1", "stable")):
            if "workbench_model_requests_total" in expr:
                errs = canary_errors if role == "canary" else 0
                rows += [
                    {"metric": {promql.HASH_LABEL: h, "status": "200"}, "value": [0, str(n - errs)]},
                    {"metric": {promql.HASH_LABEL: h, "status": "500"}, "value": [0, str(errs)]},
                ]
            elif "bucket" in expr:
                rows += [{"metric": {promql.HASH_LABEL: h, "le": le}, "value": [0, str(n)]} for le in ("0.01", "+Inf")]
            else:
                labels = canary_labels if role == "canary" else {"0": n // 3, "1": n // 3, "2": n - 2 * (n // 3)}
                rows += [
                    {"metric": {promql.HASH_LABEL: h, "label": k}, "value": [0, str(v)]} for k, v in labels.items()
                ]
        return rows

    return query


def test_analysis_endpoint_reuses_rollout_analysis():
    policy = pol.builtin("demo")
    url = "/measure/prediction-shift?canary=c1&stable=s1&namespace=workbench"
    healthy = TestClient(analysis_app.create_app(policy, fake_prometheus(0, {"0": 66, "1": 67, "2": 67})))
    body = healthy.get(url).json()
    assert body["phase"] == "successful" and body["samples"] == {"canary": 200, "stable": 200}
    shifted = TestClient(analysis_app.create_app(policy, fake_prometheus(0, {"0": 200})))
    assert shifted.get(url).json()["phase"] == "failed"
    errors = TestClient(analysis_app.create_app(policy, fake_prometheus(60, {"0": 66})))
    body = errors.get("/measure/error-rate?canary=c1&stable=s1&namespace=workbench").json()
    assert body["phase"] == "failed" and body["value"] == pytest.approx(0.3)
    assert healthy.get("/measure/nope?canary=c1&stable=s1&namespace=w").status_code == 404


def test_analysis_endpoint_without_data_is_an_error_never_a_pass():
    def down(expr):
        raise RuntimeError("connection refused")

    client = TestClient(analysis_app.create_app(pol.builtin("demo"), down))
    r = client.get("/measure/prediction-shift?canary=c1&stable=s1&namespace=workbench")
    assert r.status_code == 503 and r.json()["phase"] == "error"
    empty = TestClient(analysis_app.create_app(pol.builtin("demo"), lambda expr: []))
    assert empty.get("/measure/prediction-shift?canary=c1&stable=s1&namespace=workbench").status_code == 503


def test_missing_tools_say_what_to_install(monkeypatch):
    monkeypatch.setattr(tools, "find", lambda tool: None)
    for tool in ("kind", "helm", "kubectl", "docker"):
        with pytest.raises(ToolMissing, match=f"^{tool} not found: .*install"):
            tools.require(tool)
    with pytest.raises(ToolMissing) as err:
        cluster.up(say=lambda s: None)
    assert isinstance(err.value, K8S_FAILURES) and isinstance(err.value, RuntimeError)
    result = CliRunner().invoke(app, ["cluster", "up"])
    assert result.exit_code == 2 and len(result.output.strip().splitlines()) == 1 and "install" in result.output


def test_versions_are_pinned_in_one_place(tmp_path):
    v = versions.load()
    assert "@sha256:" in v.KIND_NODE_IMAGE and v.HEALTHY_TAG != "latest" and v.FAULTY_TAG != "latest"
    deploy = ROOT / "deploy" / "k8s"
    texts = {p: p.read_text() for p in deploy.rglob("*.yaml") if "node_modules" not in p.parts}
    assert any(v.plugin_url() in t for t in texts.values())
    for image in (v.PROMETHEUS_IMAGE, v.GRAFANA_IMAGE):
        assert any(image in t for t in texts.values()), image
    for path, text in texts.items():
        for found in re.findall(r"image: (\S+)", text):
            assert found in (v.PROMETHEUS_IMAGE, v.GRAFANA_IMAGE, v.healthy_image), (
                f"{path}: {found} is not pinned in versions.env"
            )
    overlay = (deploy / "overlays" / "kind" / "kustomization.yaml").read_text()
    assert f"newTag: {v.HEALTHY_TAG}" in overlay
    workflow = (ROOT / ".github" / "workflows" / "kind-canary.yml").read_text()
    assert "deploy/k8s/versions.env" in workflow
    with pytest.raises(K8sError, match="not a valid version pin"):
        bad = tmp_path / "versions.env"
        bad.write_text("KIND_VERSION=v1\n")
        versions.load(bad)


def test_the_baked_model_loads_and_pins_what_loads_it(tmp_path):
    # the image's build step: an MLflow model folder whose requirements are the installed pins, given explicitly
    # (MLflow's inference would load the model again in another Python process at every build)
    import mlflow.pyfunc

    from mlops_workbench import data, tracking
    from mlops_workbench.k8s.bake import bake

    out = bake(tmp_path / "model", seed=7)
    assert (out / "requirements.txt").read_text().split() == tracking.model_requirements()
    rows = data.load_iris_frame()[list(data.FEATURES)].head(3)
    assert len(mlflow.pyfunc.load_model(str(out)).predict(rows)) == 3
