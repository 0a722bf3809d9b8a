"""Generated hostile input against REAL servers: over a thousand malformed requests, not one 5xx.

Hypothesis builds bodies that are broken in every way a client can break them
(invalid JSON and UTF-8, wrong shapes, NaN and huge numbers, unknown fields,
near-valid MLflow payloads) and sends them to a uvicorn model server (``/predict``,
``/invocations``) and to the weighted router (its admin API, and predictions
proxied through it). Every answer must be a 4xx with a JSON error, and afterwards
both servers must be healthy and still give the right predictions.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlops_workbench import data, procs
from mlops_workbench.serving import auth
from mlops_workbench.serving.faults import Faults
from mlops_workbench.serving.server import start_server
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow

F = data.FEATURES
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]
FIELDS = ["dataframe_split", "dataframe_records", "instances", "inputs", "records", "columns", "data", "canary"]
NUMBERS = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(),
    st.integers(min_value=10**300, max_value=10**400),
    st.sampled_from([0, -1, 1e308, -1e308, 5e-324]),
)
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, st.text(max_size=12))
JSON = st.recursive(
    SCALARS,
    lambda inner: (
        st.lists(inner, max_size=6) | st.dictionaries(st.sampled_from(FIELDS) | st.text(max_size=8), inner, max_size=5)
    ),
    max_leaves=25,
)
ROW = st.lists(st.one_of(NUMBERS, SCALARS), min_size=0, max_size=6)
NEAR_VALID = st.one_of(
    st.fixed_dictionaries({"instances": st.lists(ROW, max_size=4)}),
    st.fixed_dictionaries({"inputs": st.lists(ROW, max_size=4) | st.dictionaries(st.sampled_from(F + ["x"]), ROW)}),
    st.fixed_dictionaries(
        {
            "dataframe_split": st.fixed_dictionaries(
                {
                    "columns": st.lists(st.sampled_from(F + ["colour", ""]), max_size=6),
                    "data": st.lists(ROW, max_size=4),
                }
            )
        }
    ),
    st.fixed_dictionaries(
        {"dataframe_records": st.lists(st.dictionaries(st.sampled_from(F + ["colour"]), NUMBERS), max_size=4)}
    ),
    st.fixed_dictionaries({"records": st.lists(st.dictionaries(st.sampled_from(F + ["colour"]), SCALARS), max_size=4)}),
)
DEEP = st.integers(min_value=900, max_value=5000).flatmap(
    lambda n: st.sampled_from(
        [
            b"[" * n + b"]" * n,
            b'{"instances": ' + b"[" * n + b"]" * n + b"}",
            b'{"canary": ' + b'{"a": ' * n + b"1" + b"}" * n + b"}",
        ]
    )
)
RAW = st.one_of(
    st.binary(max_size=64),
    DEEP,
    st.sampled_from(
        [
            b"",
            b"{",
            b"[1,2",
            b"\xff\xfe{}",
            b"null",
            b"NaN",
            b'{"instances": [[1e999, 2, 3, 4]]}',
            b'{"instances": [[NaN, 2, 3, 4]]}',
            b'{"canary": Infinity}',
            b'{"canary": 1' + b"0" * 400 + b"}",
            b'{"instances": [[1' + b"0" * 400 + b", 2, 3, 4]]}",
            b'{"seed": 1' + b"0" * 30 + b"}",
            b'{"crash_after": 1' + b"0" * 30 + b"}",
            b'{"seed": false}',
            b'{"error_rate": true}',
            b'{"dataframe_split": {"columns": [{"a": 1}, [], 1, null], "data": [[1, 2, 3, 4]]}}',
            # under orjson's 1024 levels, but deeper than any repr of the value can go
            b'{"canary": ' + b'{"a": ' * 990 + b"1" + b"}" * 990 + b"}",
            b'{"seed": ' + b"[" * 990 + b"]" * 990 + b"}",
            b'{"instances": [[' + b"[" * 990 + b"]" * 990 + b", 1, 2, 3]]}",
        ]
    ),
)
FAULTS = st.one_of(
    st.fixed_dictionaries(
        {},
        optional={
            "error_rate": NUMBERS | SCALARS,
            "latency_ms": NUMBERS | SCALARS,
            "seed": NUMBERS | SCALARS,
            "crash_after": NUMBERS | SCALARS,
        },
    ).map(lambda d: json.dumps(d, allow_nan=True).encode()),
    RAW,
)
CONTENT_TYPES = st.sampled_from(
    ["application/json", "text/csv", "application/octet-stream", "text/plain; charset=utf-8", None]
)


def _body(value: object) -> bytes:
    """JSON text as a sloppy client writes it: NaN and Infinity included (not valid JSON)."""
    return json.dumps(value, allow_nan=True).encode()


BODIES = st.one_of(JSON.map(_body), NEAR_VALID.map(_body), RAW)


class Sender:
    """Sends each generated request and records the ones answered 5xx (with what was sent)."""

    def __init__(self, token: dict[str, str]) -> None:
        self.client = httpx.Client(timeout=30.0)
        self.token = token
        self.sent: dict[str, int] = {}
        self.server_errors: list[str] = []

    def send(self, service: str, method: str, url: str, body: bytes, content_type: str | None) -> httpx.Response:
        headers = {"content-type": content_type} if content_type else {}
        response = self.client.request(method, url, content=body, headers={**headers, **self.token})
        self.sent[service] = self.sent.get(service, 0) + 1
        if response.status_code >= 500:
            self.server_errors.append(f"{method} {url} {body[:120]!r} -> {response.status_code} {response.text[:200]}")
        return response


FUZZ = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@pytest.fixture(scope="module")
def expected(tmp_path_factory, save_iris_model) -> tuple[Path, Path, list]:
    import pandas as pd

    home = tmp_path_factory.mktemp("fuzz-home")
    path, model = save_iris_model(home)
    yield home, path, model.predict(pd.DataFrame(ROWS, columns=F)).tolist()
    procs.stop_all(Workbench.from_env(home))


def test_a_thousand_hostile_requests_get_4xx_and_the_servers_keep_serving(expected):
    fuzz_home, model_path, labels = expected
    server = start_server(Workbench.from_env(fuzz_home), str(model_path), name="fuzz-model", allow_faults=True)
    port = procs.free_port()
    router = procs.start(
        Workbench.from_env(fuzz_home),
        "fuzz-router",
        procs.workbench_cmd(
            "router", "--stable", server.url, "--canary", server.url, "--weight", "50", "--port", str(port)
        ),
        port,
        health_path="/health",
    )
    sender = Sender(auth.headers(auth.read_token(Workbench.from_env(fuzz_home))))

    @FUZZ
    @given(path=st.sampled_from(["/predict", "/invocations"]), body=BODIES, content_type=CONTENT_TYPES)
    def model_server(path: str, body: bytes, content_type: str | None) -> None:
        response = sender.send("model server", "POST", server.url + path, body, content_type)
        if response.status_code >= 400:
            assert response.status_code < 500 and "error" in response.json(), response.text

    @FUZZ
    @given(body=FAULTS, content_type=CONTENT_TYPES)
    def faults(body: bytes, content_type: str | None) -> None:
        response = sender.send("model server", "POST", server.url + "/admin/faults", body, content_type)
        if response.status_code == 200:  # a valid setting: put it back, so predictions stay unfaulted
            sender.client.post(server.url + "/admin/faults", json={}, headers=sender.token).raise_for_status()
        if response.status_code >= 400:
            assert response.status_code < 500 and "error" in response.json(), response.text

    @FUZZ
    @given(method=st.sampled_from(["PUT", "PUT", "PUT", "POST", "DELETE"]), body=BODIES, content_type=CONTENT_TYPES)
    def router_admin(method: str, body: bytes, content_type: str | None) -> None:
        response = sender.send("router", method, router.url + "/admin/weights", body, content_type)
        if response.status_code >= 400:
            assert response.status_code < 500 and "error" in response.json(), response.text

    @FUZZ
    @given(
        path=st.sampled_from(["/predict", "/invocations"]), body=NEAR_VALID.map(_body) | RAW, content_type=CONTENT_TYPES
    )
    def through_router(path: str, body: bytes, content_type: str | None) -> None:
        response = sender.send("router", "POST", router.url + path, body, content_type)
        assert response.status_code < 500, response.text

    model_server()
    faults()
    router_admin()
    through_router()

    assert sender.sent["model server"] >= 1000 and sender.sent["router"] >= 1000, sender.sent
    assert sender.server_errors == []
    assert httpx.get(server.url + "/admin/faults", headers=sender.token).json() == Faults().model_dump()
    for base in (server.url, router.url):
        assert httpx.get(base + "/health", timeout=10).status_code == 200
    sender.client.put(router.url + "/admin/weights", json={"canary": 50}, headers=sender.token).raise_for_status()
    for base in (server.url, router.url):
        answer = httpx.post(base + "/predict", json={"instances": ROWS}, timeout=10)
        assert answer.status_code == 200, answer.text
        assert answer.json()["predictions"] == labels
    assert procs.get(Workbench.from_env(fuzz_home), "fuzz-model") and procs.get(
        Workbench.from_env(fuzz_home), "fuzz-router"
    )
