"""The server client's traffic and failure vocabulary, against a tiny stand-in server and a closed port."""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer

import aiohttp
import httpx
import pytest

from mlops_workbench import procs
from mlops_workbench.errors import InputError
from mlops_workbench.serving import paths
from mlops_workbench.serving.client import ModelServerClient, Reply, RouterClient, Unreachable, no_answer


class _StandIn(BaseHTTPRequestHandler):
    """Answers every path with JSON (even /metrics, as a careless stub would) and names an upstream."""

    def _answer(self, status: int, body: dict) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header(paths.UPSTREAM_HEADER, "canary")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:  # noqa: N802 - the handler API's name
        self._answer(200, {"path": self.path})

    def do_POST(self) -> None:  # noqa: N802
        rows = json.loads(self.rfile.read(int(self.headers["content-length"])))["instances"]
        if rows == [[0.0]]:
            self._answer(500, {"error": "injected"})
        else:
            self._answer(200, {"predictions": ["setosa"] * len(rows)})

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def stand_in() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _StandIn)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_traffic_answers_replies_never_errors(stand_in: str) -> None:
    client = RouterClient(stand_in)
    ok = client.send([[5.1, 3.5, 1.4, 0.2]])
    assert (ok.status, ok.upstream, ok.prediction()) == (200, "canary", "setosa")
    failed = client.send([[0.0]])
    assert failed.status == 500 and failed.prediction() is None and failed.json() == {"error": "injected"}
    closed = ModelServerClient(f"http://127.0.0.1:{procs.free_port()}").send([[1.0]], timeout=2)
    assert closed == Reply(0, problem="ConnectError", kind="refused")


def test_async_traffic_answers_a_burst_and_counts_refusals(stand_in: str) -> None:
    async def burst(url: str) -> list[Reply]:
        async with RouterClient(url).async_traffic(max_connections=4) as traffic:
            return await asyncio.gather(*(traffic.send([[5.0, 3.0, 1.5, 0.2]]) for _ in range(12)))

    answered = asyncio.run(burst(stand_in))
    assert {(r.status, r.prediction(), r.upstream) for r in answered} == {(200, "setosa", "canary")}
    refused = asyncio.run(burst(f"http://127.0.0.1:{procs.free_port()}"))
    assert {(r.status, r.kind) for r in refused} == {(0, "refused")} and all(r.problem for r in refused)


def test_async_traffic_sends_only_while_open(stand_in: str) -> None:
    async def outside() -> Reply:
        return await RouterClient(stand_in).async_traffic().send([[5.0, 3.0, 1.5, 0.2]])

    with pytest.raises(InputError, match="async with client.async_traffic"):
        asyncio.run(outside())


def test_metrics_is_text_whatever_the_content_type(stand_in: str) -> None:
    assert json.loads(ModelServerClient(stand_in).metrics()) == {"path": paths.METRICS}


def test_no_answer_is_unreachable_and_says_why() -> None:
    url = f"http://127.0.0.1:{procs.free_port()}"
    with pytest.raises(Unreachable, match=f"did not answer GET {paths.VERSION}.*`workbench ps`") as caught:
        ModelServerClient(url).version(timeout=2)
    assert (caught.value.kind, caught.value.problem) == ("refused", "ConnectError")
    assert no_answer(caught.value) == "refused"
    assert no_answer(httpx.ReadTimeout("slow")) == "timeout"
    assert no_answer(httpx.RemoteProtocolError("cut")) == "broken"
    assert no_answer(TimeoutError()) == "timeout"  # what the load sender's time limit raises
    assert no_answer(aiohttp.ServerDisconnectedError()) == "broken"
    assert no_answer(ValueError("not a transport problem")) is None
