"""The model server: payload parsing, a REAL uvicorn process, MLflow parity, faults, reload on alias moves."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import numpy as np
import pytest

from mlops_workbench import data, procs, registry, tracking, train
from mlops_workbench.errors import ServiceError
from mlops_workbench.serving import auth, payloads
from mlops_workbench.serving.client import ModelServerClient
from mlops_workbench.serving.faults import FaultInjector, Faults
from mlops_workbench.serving.payloads import PayloadError
from mlops_workbench.serving.server import start_server
from mlops_workbench.workbench import Workbench

F = data.FEATURES
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3], [5.9, 3.0, 5.1, 1.8]]
RECORDS = [dict(zip(F, r, strict=True)) for r in ROWS]
PAYLOADS = {
    "dataframe_split": {"dataframe_split": {"columns": F, "data": ROWS}},
    "dataframe_split_reordered": {"dataframe_split": {"columns": F[::-1], "data": [r[::-1] for r in ROWS]}},
    "dataframe_records": {"dataframe_records": RECORDS},
    "instances_rows": {"instances": ROWS},
    "instances_records": {"instances": RECORDS},
    "inputs_rows": {"inputs": ROWS},
    "inputs_columns": {"inputs": {f: [r[i] for r in ROWS] for i, f in enumerate(F)}},
}


# ---------------------------------------------------------------- pure parsing and faults


@pytest.mark.parametrize("fmt", sorted(PAYLOADS))
def test_every_invocations_format_parses_to_the_same_matrix(fmt):
    assert np.array_equal(payloads.parse_invocations(PAYLOADS[fmt], F), np.array(ROWS))


@pytest.mark.parametrize(
    "payload, message",
    [
        ({"instances": [[1, 2, 3]]}, "has 3 values but the model expects 4"),
        ({"instances": [["a", 2, 3, 4]]}, "'a' is not a number"),
        ({"instances": [[True, 2, 3, 4]]}, "True is not a number"),
        ({"instances": [[None, 2, 3, 4]]}, "None is not a number"),
        ({"instances": [[float("nan"), 2, 3, 4]]}, "NaN or infinite"),
        ({"instances": []}, "non-empty list"),
        ({"records": [{"sepal_length": 1.0}]}, "misses"),
        ({"records": [{**RECORDS[0], "colour": 1}]}, "unknown fields \\['colour'\\]"),
        ({"rows": ROWS}, "exactly one of the fields 'instances'"),
    ],
)
def test_bad_predict_payloads_name_the_problem(payload, message):
    with pytest.raises(PayloadError, match=message) as info:
        payloads.parse_predict(payload, F)
    assert 400 <= info.value.status < 500


def test_fault_injector_is_seeded_and_counts_crashes():
    first = FaultInjector(Faults(error_rate=0.3, seed=7))
    second = FaultInjector(Faults(error_rate=0.3, seed=7))
    a = [first.decide()[1] for _ in range(200)]
    assert a == [second.decide()[1] for _ in range(200)] and 40 < sum(a) < 80
    crash = FaultInjector(Faults(crash_after=3))
    assert [crash.decide()[2] for _ in range(3)] == [False, False, True]


# ---------------------------------------------------------------- a real server process


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("serve-home")
    yield home
    procs.stop_all(Workbench.from_env(home))


@pytest.fixture(scope="module")
def model_path(home, save_iris_model) -> Path:
    return save_iris_model(home)[0]


@pytest.fixture(scope="module")
def server(home, model_path) -> procs.Service:
    return start_server(Workbench.from_env(home), str(model_path), name="serve-test", allow_faults=True)


@pytest.fixture(scope="module")
def admin(home, server) -> ModelServerClient:
    return ModelServerClient.of(Workbench.from_env(home), server.url)


@pytest.mark.parametrize("fmt", sorted(PAYLOADS))
def test_invocations_match_mlflow_pyfunc_predictions(server, model_path, fmt):
    import mlflow
    import pandas as pd

    expected = mlflow.pyfunc.load_model(str(model_path)).predict(pd.DataFrame(ROWS, columns=F)).tolist()
    response = httpx.post(server.url + "/invocations", json=PAYLOADS[fmt])
    assert response.status_code == 200, response.text
    assert response.json() == {"predictions": expected}


def test_predict_answers_labels_probabilities_and_version(server):
    body = httpx.post(server.url + "/predict", json={"instances": ROWS[:2]}).json()
    assert body["predictions"] == ["setosa", "versicolor"] and body["version"] == "unregistered"
    assert len(body["probabilities"]) == 2 and abs(sum(body["probabilities"][0]) - 1) < 1e-4
    same = httpx.post(server.url + "/predict", json={"records": RECORDS[:2]}).json()
    assert same["predictions"] == body["predictions"]


HUGE = json.dumps({"instances": [ROWS[0]] * 60_000}).encode()
BAD_REQUESTS = [
    ("/predict", b'{"instances": [[1, 2, 3]]}', 400, "expects 4 features"),
    ("/predict", b'{"instances": [["5.1", 3.5, 1.4, 0.2]]}', 400, "is not a number"),
    ("/predict", b'{"instances": [[NaN, 3.5, 1.4, 0.2]]}', 400, "NaN"),
    ("/predict", b'{"instances": [[null, 3.5, 1.4, 0.2]]}', 400, "None is not a number"),
    ("/predict", b'{"records": [{"sepal_length": 5.1}]}', 400, "misses"),
    ("/predict", b'{"instances": [[5.1, 3.5', 400, "not valid JSON"),
    ("/predict", b"", 400, "empty"),
    ("/predict", b"[[5.1, 3.5, 1.4, 0.2]]", 400, "not an object"),
    ("/invocations", b'{"foo": []}', 400, "exactly one of the fields"),
    (
        "/invocations",
        b'{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
        400,
        "expects exactly the columns",
    ),
    ("/invocations", b'{"inputs": {"sepal_length": [1.0]}}', 400, "expects exactly"),
    ("/invocations", HUGE, 413, "more than the limit"),
    ("/predict", b'{"instances": [[1' + b"0" * 400 + b", 3.5, 1.4, 0.2]]}", 400, "beyond the float range"),
    ("/predict", b'{"instances": [[1e13, 3.5, 1.4, 0.2]]}', 400, "beyond the accepted range"),
    (
        "/invocations",
        b'{"dataframe_split": {"columns": [{"a": 1}, "b", "c", "d"], "data": [[1, 2, 3, 4]]}}',
        400,
        "expects exactly the columns",
    ),
    (
        "/invocations",
        b'{"dataframe_split": {"columns": null, "data": [[1, 2, 3, 4]]}}',
        400,
        "expects exactly the columns",
    ),
    ("/predict", b'{"instances": ' + b"[" * 1500 + b"]" * 1500 + b"}", 400, "nested"),
    ("/invocations", b"[" * 100_000 + b"]" * 100_000, 400, "nested"),
    (
        "/predict",
        b'{"instances": [[' + b"[" * 990 + b"]" * 990 + b", 1, 2, 3]]}",
        400,
        "a list of 1 item(s) is not a number",
    ),
    (
        "/invocations",
        b'{"dataframe_split": {"columns": ' + b"[" * 990 + b"]" * 990 + b', "data": [[1, 2, 3, 4]]}}',
        400,
        "is a list of 1 item(s); the model expects",
    ),
]


@pytest.mark.parametrize("path, body, status, message", BAD_REQUESTS, ids=[f"{p}-{m}" for p, _, _, m in BAD_REQUESTS])
def test_bad_requests_get_4xx_with_a_message(server, path, body, status, message):
    response = httpx.post(server.url + path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == status, response.text
    assert message in response.json()["error"]


def test_chunked_huge_body_and_wrong_content_type_are_4xx(server):
    chunks = (HUGE[i : i + 65536] for i in range(0, len(HUGE), 65536))
    assert httpx.post(server.url + "/predict", content=chunks).status_code == 413
    response = httpx.post(server.url + "/predict", content=b"5.1,3.5", headers={"content-type": "text/csv"})
    assert response.status_code == 415 and "application/json" in response.json()["error"]


def test_no_5xx_after_bad_requests_and_metric_names(server):
    metrics = httpx.get(server.url + "/metrics").text
    assert 'workbench_model_requests_total{status="400",version="unregistered"}' in metrics
    assert 'workbench_model_predictions_total{label="setosa",version="unregistered"}' in metrics
    assert 'workbench_model_request_duration_seconds_bucket{le="0.001",version="unregistered"}' in metrics
    assert 'status="5' not in metrics


def test_injected_faults_at_runtime_and_crash(home, server, admin, model_path, wb):
    admin.set_faults(Faults(error_rate=1.0))
    failed = httpx.post(server.url + "/predict", json={"instances": ROWS[:1]})
    assert failed.status_code == 500 and "injected fault" in failed.json()["error"]
    assert httpx.get(server.url + "/health").status_code == 200  # admin paths are never faulted
    admin.set_faults(Faults(latency_ms=300))
    start = time.perf_counter()
    assert httpx.post(server.url + "/predict", json={"instances": ROWS[:1]}).status_code == 200
    assert time.perf_counter() - start >= 0.3
    for bad in ({"error_rate": 2}, {"seed": False}, {"seed": 2**64}, {"crash_after": 2**70}, {"latency_ms": "1"}):
        response = httpx.post(server.url + "/admin/faults", json=bad, headers=auth.headers(auth.read_token(wb)))
        assert response.status_code == 422, (bad, response.text)
        assert "Bad faults" in response.json()["error"]
    deep = b'{"seed": ' + b'{"a": ' * 990 + b"1" + b"}" * 990 + b"}"  # parses, but no repr of it fits the stack
    response = httpx.post(server.url + "/admin/faults", content=deep, headers=auth.headers(auth.read_token(wb)))
    assert response.status_code == 422 and "an object with 1 field(s)" in response.json()["error"], response.text
    assert admin.faults().latency_ms == 300  # refused values changed nothing, and GET still answers
    admin.set_faults(Faults())
    crashing = start_server(wb, str(model_path), name="crash-test", faults=Faults(crash_after=2))
    for _ in range(2):
        assert httpx.post(crashing.url + "/predict", json={"instances": ROWS[:1]}).status_code == 200
    deadline = time.monotonic() + 10
    while procs.get(wb, "crash-test") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert procs.get(wb, "crash-test") is None


# ---------------------------------------------------------------- reload when the alias moves


@pytest.mark.slow
def test_reload_follows_the_alias_without_failed_requests(home, wb):
    import mlflow
    from mlflow import MlflowClient

    from mlops_workbench import tracking

    tracking.up(wb, port=procs.free_port(), timeout=300)  # slow on a loaded 2-core machine
    train_df, _ = data.split(data.load_iris_frame(), test_size=0.2, seed=42)
    mlflow.set_experiment("serve-tests")
    client = MlflowClient()
    for C in (1.0, 10.0):
        with mlflow.start_run():
            info = mlflow.sklearn.log_model(train.train(train_df, {"C": C}), name="model")
        mv = mlflow.register_model(info.model_uri, "served")
        registry.record_digest(wb, "served", mv.version)  # MLflow's own API records no digest: servers would refuse it
    client.set_registered_model_alias("served", "production", "1")
    service = start_server(wb, "models:/served@production", name="reload-test", watch_interval=0.5)
    version = httpx.get(service.url + "/version").json()
    assert version["name"] == "served" and version["version"] == "1" and version["alias"] == "production"

    statuses, seen, stop = [], set(), threading.Event()

    def hammer() -> None:
        with httpx.Client(base_url=service.url) as http:
            while not stop.is_set():
                r = http.post("/predict", json={"instances": ROWS})
                statuses.append(r.status_code)
                seen.add(r.json().get("version"))

    thread = threading.Thread(target=hammer)
    thread.start()
    try:
        client.set_registered_model_alias("served", "production", "2")
        reload = ModelServerClient.of(wb, service.url).reload()
        assert reload["version"] == "2"
        client.set_registered_model_alias("served", "production", "1")  # the watch picks this up alone
        deadline = time.monotonic() + 30
        while httpx.get(service.url + "/version").json()["version"] != "1" and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.3)
    finally:
        stop.set()
        thread.join(30)
    assert httpx.get(service.url + "/version").json()["version"] == "1"
    assert len(statuses) > 10 and set(statuses) == {200}
    assert seen == {"1", "2"}
    metrics = httpx.get(service.url + "/metrics").text
    assert 'workbench_model_requests_total{status="200",version="2"}' in metrics


def test_cli_serve_is_registered_and_rejects_a_missing_model(tmp_path):
    from typer.testing import CliRunner

    from mlops_workbench.cli.main import app

    runner = CliRunner()
    help_text = runner.invoke(app, ["serve", "--help"]).output
    assert "--model-uri" in help_text and "--fault-crash-after" in help_text and "--watch-interval" in help_text
    result = runner.invoke(app, ["serve", "--model-uri", str(tmp_path / "nothing-here"), "--port", "1"])
    assert result.exit_code == 2 and "Cannot load the model" in result.output


@pytest.mark.slow
def test_invocations_match_mlflow_models_serve_for_every_format(home, wb):
    """Same answers as MLflow's own scoring server, for a model logged with a signature (as candidates are)."""
    import os
    import sys

    import mlflow
    from mlflow.models import infer_signature

    train_df, _ = data.split(data.load_iris_frame(), test_size=0.2, seed=42)
    model = train.train(train_df, {"C": 1.0})
    path = home / "model-with-signature"
    X = train_df[F].head(5)
    mlflow.sklearn.save_model(
        model, path, signature=infer_signature(X, model.predict(X)), pip_requirements=tracking.model_requirements()
    )
    ours = start_server(wb, str(path), name="serve-signature")
    port = procs.free_port()
    cmd = [
        str(Path(sys.executable).with_name("mlflow")),
        "models",
        "serve",
        "-m",
        str(path),
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    bin_path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"  # it execs `uvicorn`
    theirs = procs.start(wb, "mlflow-scoring", cmd, port, health_path="/health", timeout=300, env={"PATH": bin_path})
    compared = []
    for fmt, payload in PAYLOADS.items():
        expected = httpx.post(theirs.url + "/invocations", json=payload, timeout=30)
        answer = httpx.post(ours.url + "/invocations", json=payload, timeout=30)
        assert answer.status_code == 200, (fmt, answer.text)
        if expected.status_code != 200:  # MLflow enforces the named schema; we also take rows in feature order
            assert fmt in ("instances_rows", "inputs_rows"), (fmt, expected.text)
            continue
        assert answer.json() == expected.json(), fmt
        compared.append(fmt)
    assert len(compared) == len(PAYLOADS) - 2


def test_a_failed_reload_answers_409_and_keeps_serving(home, model_path, wb):
    """If the model cannot be loaded again, /admin/reload says why and the loaded model keeps answering."""
    import shutil

    copy = home / "model-copy"
    shutil.copytree(model_path, copy)
    service = start_server(wb, str(copy), name="serve-reload-fail")
    admin = ModelServerClient.of(wb, service.url)
    assert admin.reload()["reloaded"] is True
    shutil.rmtree(copy)
    failed = httpx.post(service.url + "/admin/reload", timeout=60, headers=auth.headers(auth.read_token(wb)))
    assert failed.status_code == 409 and "Cannot load the model" in failed.json()["error"]
    with pytest.raises(ServiceError, match="keeps serving the model it had"):
        admin.reload()
    assert httpx.post(service.url + "/predict", json={"instances": ROWS[:1]}).json()["predictions"] == ["setosa"]
    procs.stop(wb, "serve-reload-fail")
