"""The servers' protocol and security, on REAL processes: the admin token, what the router forwards,
honest OpenAPI documents and ``Allow`` headers, and Schemathesis (an independent fuzzer) with all its checks.

One module-scoped set of services: a model server without fault injection (``stable``), one with it
(``canary``), and a router in front of both.
"""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import httpx
import psutil
import pytest

from mlops_workbench import procs
from mlops_workbench.errors import InputError
from mlops_workbench.serving import auth
from mlops_workbench.serving.client import ModelServerClient, RouterClient
from mlops_workbench.serving.faults import Faults
from mlops_workbench.serving.server import start_server
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
ROW = [5.1, 3.5, 1.4, 0.2]
SEED = 20261204


@pytest.fixture(scope="module")
def services(tmp_path_factory, save_iris_model) -> dict:
    home = tmp_path_factory.mktemp("security-home")
    model_path, _ = save_iris_model(home)
    try:
        stable = start_server(Workbench.from_env(home), str(model_path), name="sec-stable")
        canary = start_server(Workbench.from_env(home), str(model_path), name="sec-canary", allow_faults=True)
        port = procs.free_port()
        router = procs.start(
            Workbench.from_env(home),
            "sec-router",
            procs.workbench_cmd(
                "router", "--stable", stable.url, "--canary", canary.url, "--weight", "50", "--port", str(port)
            ),
            port,
        )
        yield {
            "home": home,
            "stable": stable.url,
            "canary": canary.url,
            "router": router.url,
            "token": auth.headers(auth.read_token(Workbench.from_env(home))),
        }
    finally:
        procs.stop_all(Workbench.from_env(home))


ADMIN = [
    ("stable", "POST", "/admin/reload"),
    ("stable", "GET", "/admin/faults"),
    ("stable", "POST", "/admin/faults"),
    ("router", "GET", "/admin/weights"),
    ("router", "PUT", "/admin/weights"),
    ("router", "GET", "/admin/shadow"),
    ("router", "PUT", "/admin/shadow"),
    ("router", "DELETE", "/admin/shadow"),
]


@pytest.mark.parametrize("service, method, path", ADMIN, ids=[f"{s}-{m}-{p}" for s, m, p in ADMIN])
def test_admin_calls_without_the_token_get_401_and_change_nothing(services, service, method, path):
    url = services[service] + path
    for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic abc"}):
        response = httpx.request(method, url, json={"canary": 100, "error_rate": 1.0}, headers=headers, timeout=30)
        assert response.status_code == 401, response.text
        assert response.headers["www-authenticate"] == "Bearer"
        assert "admin-token" in response.json()["error"]
    assert RouterClient.of(Workbench.from_env(services["home"]), services["router"]).weight() == 50
    assert RouterClient.of(Workbench.from_env(services["home"]), services["router"]).shadow() is None
    assert ModelServerClient.of(Workbench.from_env(services["home"]), services["stable"]).faults() == Faults()


def test_the_token_file_is_private_and_a_client_of_another_state_folder_is_refused(services, tmp_path):
    token_file = services["home"] / "admin-token"
    assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
    assert len(token_file.read_text()) >= 32
    other = tmp_path / "other-home"
    auth.ensure_token(Workbench.from_env(other))
    with pytest.raises(Exception, match="refused the admin token"):
        RouterClient.of(Workbench.from_env(other), services["router"]).set_weight(100)
    with pytest.raises(InputError, match="No admin token"):
        RouterClient.of(Workbench.from_env(tmp_path / "never-started"), services["router"]).weight()


def test_the_router_never_forwards_admin_paths(services):
    canary = ModelServerClient.of(Workbench.from_env(services["home"]), services["canary"])
    for path in ("/admin/faults", "/admin/reload", "/admin/anything", "/docs", "/openapi.json/../admin/faults"):
        for _ in range(6):  # at weight 50, a forwarded request would reach the canary within a few tries
            response = httpx.post(
                services["router"] + path,
                json={"error_rate": 1.0, "crash_after": 1},
                headers=services["token"],
                timeout=30,
            )
            assert response.status_code in (404, 405), (path, response.text)
    assert canary.faults() == Faults()
    assert httpx.post(services["router"] + "/predict", json={"instances": [ROW]}, timeout=30).status_code == 200


def test_fault_injection_is_refused_unless_the_server_allows_it(services):
    stable = ModelServerClient.of(Workbench.from_env(services["home"]), services["stable"])
    with pytest.raises(InputError, match="--allow-faults"):
        stable.set_faults(Faults(error_rate=1.0))
    assert stable.faults() == Faults()
    canary = ModelServerClient.of(Workbench.from_env(services["home"]), services["canary"])
    try:
        assert canary.set_faults(Faults(latency_ms=5)).latency_ms == 5
    finally:
        canary.set_faults(Faults())


ALLOW = [
    ("stable", "GET", "/admin/reload", "POST"),
    ("stable", "DELETE", "/admin/faults", "GET, POST"),
    ("stable", "GET", "/predict", "POST"),
    ("stable", "PUT", "/invocations", "POST"),
    ("stable", "POST", "/health", "GET"),
    ("router", "TRACE", "/health", "GET"),
    ("router", "TRACE", "/metrics", "GET"),
    ("router", "DELETE", "/admin/weights", "GET, PUT"),
    ("router", "GET", "/predict", "POST"),
    ("router", "POST", "/version", "GET"),
]


@pytest.mark.parametrize("service, method, path, allow", ALLOW, ids=[f"{s}-{m}-{p}" for s, m, p, _ in ALLOW])
def test_a_method_a_path_does_not_serve_gets_405_with_a_complete_allow_header(services, service, method, path, allow):
    response = httpx.request(method, services[service] + path, headers=services["token"], timeout=30)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == allow
    assert response.headers["content-type"].startswith("application/json") and "error" in response.json()


def test_openapi_documents_what_the_servers_really_do(services):
    server = httpx.get(services["stable"] + "/openapi.json", timeout=30).json()
    paths = server["paths"]
    assert {"/predict", "/invocations", "/health", "/version", "/metrics", "/admin/reload", "/admin/faults"} <= set(
        paths
    )
    predict = paths["/predict"]["post"]
    assert {"200", "400", "413", "415"} <= set(predict["responses"])
    assert "application/json" in predict["requestBody"]["content"]
    assert list(paths["/metrics"]["get"]["responses"]["200"]["content"]) == ["text/plain"]
    assert paths["/admin/faults"]["post"]["security"] == [{"AdminToken": []}]
    assert {"401", "403", "422"} <= set(paths["/admin/faults"]["post"]["responses"])
    assert server["components"]["securitySchemes"]["AdminToken"]["scheme"] == "bearer"
    router = httpx.get(services["router"] + "/openapi.json", timeout=30).json()
    assert router["paths"]["/predict"]["post"]["requestBody"] == predict["requestBody"]  # the stable's own schema
    assert {"502", "504"} <= set(router["paths"]["/predict"]["post"]["responses"])
    assert {p for p in router["paths"] if p.startswith("/admin/")} == {"/admin/weights", "/admin/shadow"}
    assert router["paths"]["/admin/shadow"]["put"]["security"] == [{"AdminToken": []}]


def test_every_service_listens_on_loopback_only(services):
    ports = {int(services[name].rsplit(":", 1)[1]) for name in ("stable", "canary", "router")}
    listening = {
        c.laddr.port: c.laddr.ip
        for c in psutil.net_connections("tcp")
        if c.status == psutil.CONN_LISTEN and c.laddr.port in ports
    }
    assert listening == {port: "127.0.0.1" for port in ports}


def test_the_analysis_server_binds_loopback_unless_told():
    import inspect

    from mlops_workbench.cli.k8s import analysis_server

    assert inspect.signature(analysis_server).parameters["host"].default.default == "127.0.0.1"
    manifest = (Path(__file__).parents[1] / "deploy/k8s/base/analysis-server.yaml").read_text()
    assert '"--host", "0.0.0.0"' in manifest  # in the cluster, its Service must reach it


def test_valid_requests_right_after_malformed_ones_all_succeed_through_the_router(services):
    """An uncaught 500 used to make uvicorn drop the keep-alive connection, and the router's next
    request on it failed with 502 (counted against the upstream). Now malformed input never costs a
    valid request anything."""
    bad = [
        b"[" * 2000 + b"]" * 2000,
        b'{"instances": [[1' + b"0" * 400 + b", 2, 3, 4]]}",
        b'{"dataframe_split": {"columns": [{"a": 1}, "b", "c", "d"], "data": [[1, 2, 3, 4]]}}',
    ]
    deep = b'{"canary": ' + b'{"a": ' * 990 + b"1" + b"}" * 990 + b"}"  # under orjson's limit, past Python's repr
    refused = httpx.put(services["router"] + "/admin/weights", content=deep, headers=services["token"], timeout=30)
    assert refused.status_code == 400 and "an object with 1 field(s)" in refused.json()["error"]
    with httpx.Client(base_url=services["router"], timeout=30) as client:
        for i in range(60):
            malformed = client.post(
                "/invocations", content=bad[i % len(bad)], headers={"content-type": "application/json"}
            )
            assert malformed.status_code == 400, malformed.text
            valid = client.post("/predict", json={"instances": [ROW]})
            assert valid.status_code == 200, valid.text
    metrics = httpx.get(services["router"] + "/metrics", timeout=30).text
    assert 'status="5' not in metrics and "upstream_failures_total{" not in metrics


def schemathesis(url: str, out: Path, token: dict, *extra: str, max_examples: int = 250) -> dict:
    """Run the Schemathesis CLI with every check; returns its JSON report with the HAR of what it sent."""
    header = f"Authorization: {token['Authorization']}"
    cmd = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        f"{url}/openapi.json",
        "--checks",
        "all",
        "--mode",
        "all",
        "--seed",
        str(SEED),
        "--max-examples",
        str(max_examples),
        "-H",
        header,
        "--report",
        "json,har",
        "--report-dir",
        str(out),
        "--no-color",
        *extra,
    ]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=out)  # its cache goes there too
    reports = {p.name.split("-")[0]: json.loads(p.read_text()) for p in out.glob("*.json")}
    assert "json" in reports, result.stdout[-3000:] + result.stderr[-3000:]
    return {"run": reports["json"], "sent": len(reports["har"]["log"]["entries"]), "output": result.stdout}


def _findings(report: dict) -> str:
    return report["output"][report["output"].find("FAILURES") :][:6000]


@pytest.mark.parametrize("service", ["stable", "router"])
def test_schemathesis_finds_nothing_with_all_checks(services, service, tmp_path):
    report = schemathesis(services[service], tmp_path, services["token"])
    run = report["run"]
    assert run["failures"] == [] and run["errors"] == [], _findings(report)
    assert run["operations"]["tested"] == run["operations"]["total"] >= 6
    assert report["sent"] >= 1000, report["sent"]
    assert httpx.get(services[service] + "/health", timeout=30).status_code == 200


def test_schemathesis_on_the_fault_api_of_a_server_that_allows_faults(services, tmp_path):
    canary = ModelServerClient.of(Workbench.from_env(services["home"]), services["canary"])
    try:
        report = schemathesis(
            services["canary"], tmp_path, services["token"], "--include-path", "/admin/faults", max_examples=150
        )
        assert report["run"]["failures"] == [] and report["run"]["errors"] == [], _findings(report)
        assert report["sent"] >= 200
    finally:
        canary.set_faults(Faults())
