"""The weighted router and both metrics paths (PromQL and direct scrape), with real processes.

The upstreams here are tiny stand-in model servers (real uvicorn processes) so the
router is tested on its own; the end-to-end tests use real ``workbench serve``.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx
import pytest

from mlops_workbench import procs
from mlops_workbench.rollout import load, prometheus
from mlops_workbench.rollout.metrics import DirectSource, PrometheusSource
from mlops_workbench.serving import auth
from mlops_workbench.serving.client import RouterClient
from mlops_workbench.workbench import Workbench

UPSTREAM = """
import json, sys
import uvicorn
role, port = sys.argv[1], int(sys.argv[2])
count = {"n": 0}
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    while (await receive()).get("more_body"):
        pass
    if scope["path"] == "/metrics":
        body = ("# TYPE workbench_model_predictions_total counter\\n"
                f'workbench_model_predictions_total{{version="1",label="{role}"}} {count["n"]}\\n').encode()
    else:
        if scope["path"] == "/predict":
            count["n"] += 1
        body = json.dumps({"predictions": [role], "version": role}).encode()
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": body})
uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning")
"""


@pytest.fixture
def stack(tmp_path: Path):
    home = tmp_path / "home"
    script = tmp_path / "upstream.py"
    script.write_text(UPSTREAM)
    ports = {role: procs.free_port() for role in ("stable", "canary", "router")}
    try:
        for role in ("stable", "canary"):
            procs.start(
                Workbench.from_env(home), role, [sys.executable, str(script), role, str(ports[role])], ports[role]
            )
        cmd = procs.workbench_cmd(
            "router",
            "--stable",
            f"http://127.0.0.1:{ports['stable']}",
            "--canary",
            f"http://127.0.0.1:{ports['canary']}",
            "--weight",
            "25",
            "--port",
            str(ports["router"]),
            "--seed",
            "3",
        )
        procs.start(Workbench.from_env(home), "router", cmd, ports["router"])
        yield home, {k: f"http://127.0.0.1:{v}" for k, v in ports.items()}
    finally:
        procs.stop_all(Workbench.from_env(home))
    assert not procs.running(Workbench.from_env(home))


@pytest.mark.slow
def test_weighted_split_admin_and_metrics(stack) -> None:
    home, urls = stack
    result = load.run(urls["router"], rps=60, duration=3, seed=1)
    summary = result.summary()
    share = summary["canary"]["requests"] / summary["all"]["requests"]
    assert 0.12 < share < 0.40, summary
    assert summary["all"]["errors"] == 0
    assert {o.prediction for o in result.outcomes if o.upstream == "canary"} == {"canary"}
    admin = RouterClient.of(Workbench.from_env(home), urls["router"])
    assert admin.weight() == 25
    assert admin.set_weight(0) == 0
    with pytest.raises(ValueError, match="from 0 to 100"):
        admin.set_weight(150)
    token = auth.headers(auth.read_token(Workbench.from_env(home)))
    bad = httpx.put(urls["router"] + "/admin/weights", content=b"{}", timeout=5, headers=token)
    assert bad.status_code == 400 and "canary" in bad.json()["error"]
    after = load.run(urls["router"], rps=40, duration=1, seed=2).summary()
    assert "canary" not in after
    text = httpx.get(urls["router"] + "/metrics", timeout=5).text
    assert 'workbench_router_requests_total{status="200",version="canary"}' in text
    assert 'workbench_router_request_duration_seconds_bucket{le="0.001",version="stable"}' in text


@pytest.mark.slow
def test_canary_down_fails_over_to_stable_and_counts_it(stack) -> None:
    home, urls = stack
    procs.stop(Workbench.from_env(home), "canary")
    RouterClient.of(Workbench.from_env(home), urls["router"]).set_weight(50)
    summary = load.run(urls["router"], rps=40, duration=2, seed=4).summary()
    assert summary["all"]["errors"] == 0 and set(summary) == {"all", "stable"}
    snap = DirectSource(urls["router"]).snapshot()
    assert snap.failures.get("canary", 0) > 10
    assert snap.requests.get(("stable", "200")) == summary["all"]["requests"]


@pytest.mark.slow
@pytest.mark.skipif(not prometheus.available(), reason="no prometheus binary (the direct path is tested anyway)")
def test_promql_and_direct_scrape_read_the_same_counts(stack) -> None:
    home, urls = stack
    addr = {k: v.removeprefix("http://") for k, v in urls.items()}
    prom_url = prometheus.up(
        Workbench.from_env(home),
        addr["router"],
        {"stable": addr["stable"], "canary": addr["canary"]},
        scrape_interval="500ms",
    )
    direct = DirectSource(urls["router"], {"stable": urls["stable"], "canary": urls["canary"]})
    prom = PrometheusSource(prom_url)
    time.sleep(2)  # a few scrapes of the idle counters
    start = time.time()
    direct.prime()
    result = load.run(urls["router"], rps=50, duration=2, seed=5)
    time.sleep(2.5)  # let Prometheus scrape the final counts
    end = time.time()
    a, b = direct.window(start, end), prom.window(start, end)
    n = len(result.outcomes)
    for win in (a, b):
        assert sum(win.requests.values()) == n, win.requests
        assert win.predictions["canary"]["canary"] == pytest.approx(result.summary()["canary"]["requests"])
    assert a.requests == b.requests
    assert a.buckets["stable"][float("inf")] == b.buckets["stable"][float("inf")]
    prometheus.down(Workbench.from_env(home))
    with pytest.raises(Exception, match="did not answer"):
        prom.window(start, end)
