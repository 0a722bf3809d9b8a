"""The prediction log: the sqlite store, the label feed, the model server's recorder, and a real server logging."""

from __future__ import annotations

import logging
import multiprocessing
import sqlite3
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from mlops_workbench import data, procs, registry, tracking
from mlops_workbench.errors import InputError
from mlops_workbench.monitoring import drift, reference, scenarios
from mlops_workbench.monitoring.labels import LabelFeed
from mlops_workbench.monitoring.predictions import LabelRecord, PredictionLog, PredictionRecord, moment
from mlops_workbench.monitoring.recorder import PredictionRecorder
from mlops_workbench.serving import paths
from mlops_workbench.serving.payloads import request_id
from mlops_workbench.workbench import Workbench

F = data.FEATURES
ROW = dict(zip(F, [5.1, 3.5, 1.4, 0.2], strict=True))


def record(request: str, ts: float, version: str = "1", row: int = 0, model: str = "iris") -> PredictionRecord:
    return PredictionRecord(
        request_id=request,
        row=row,
        ts=moment(ts),
        model=model,
        version=version,
        endpoint=paths.PREDICT,
        features=ROW,
        prediction="setosa",
        probabilities={"setosa": 0.9, "versicolor": 0.07, "virginica": 0.03},
        latency_ms=0.4,
    )


@pytest.fixture
def store(tmp_path, wb) -> PredictionLog:
    log = PredictionLog(wb, tmp_path / "monitoring" / "predictions.db")
    yield log
    log.close()


# ---------------------------------------------------------------- the store


def test_records_come_back_as_written_by_version_window_and_last_n(store, wb):
    store.write([record(f"r{i}", 1000 + i, version="1" if i < 6 else "2") for i in range(10)])
    assert store.count() == 10 and store.count(model="iris", version=2) == 4 and store.count(model="other") == 0
    first = store.query(last=1)[0]
    assert first == record("r9", 1009, version="2") and first.confidence == 0.9
    assert [r.request_id for r in store.query(version="1", start=1002, end=1005)] == ["r2", "r3", "r4"]
    assert [r.request_id for r in store.query(last=3)] == ["r7", "r8", "r9"]  # the newest three, oldest first
    window = store.window("iris", "2", start=moment(1000), end=moment(2000))
    assert window.version == "2" and [r.request_id for r in window.rows] == ["r6", "r7", "r8", "r9"]
    assert len(store.window("iris", None, 1000, 2000).rows) == 10 and store.window("iris", "3", 0, 1).rows == []
    assert window.frame()[F].iloc[0].to_dict() == ROW
    assert PredictionLog(wb, store.path).query(last=1)[0].request_id == "r9"  # another connection sees the rows
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_prune_drops_old_predictions_with_their_labels_and_keeps_the_rest(store):
    store.write([record("old", 100, row=0), record("old", 100, row=1), record("edge", 200), record("new", 300)])
    labelled = [LabelRecord(request_id=r, row=0, label="setosa", ts=moment(400)) for r in ("old", "edge", "new")]
    assert store.add_labels(labelled) == 3
    assert store.prune(moment(200)) == 2, "strictly before the cutoff: 'edge' at the cutoff stays"
    assert [(r.request_id, r.label) for r in store.query()] == [("edge", "setosa"), ("new", "setosa")]
    with sqlite3.connect(store.path) as db:
        assert sorted(r for (r,) in db.execute("SELECT request_id FROM labels")) == ["edge", "new"]
    assert store.prune(moment(200)) == 0
    store.write([record("old", 100)])  # a request id may come back: it gets no stale label
    assert store.query(request_ids=["old"])[0].label is None


def test_the_prune_command_keeps_the_last_days(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from mlops_workbench.cli.main import app

    home = tmp_path / "home"
    monkeypatch.setenv("COLUMNS", "200")
    result = CliRunner().invoke(app, ["monitor", "prune", "--keep-days", "7", "--home", str(home)])
    assert result.exit_code == 0 and "no prediction log" in result.output, result.output
    assert not (home / "monitoring").exists(), "pruning creates no log"
    log = PredictionLog(Workbench.from_env(home))
    log.write([record("month-old", time.time() - 30 * 86400), record("today", time.time())])
    log.close()
    result = CliRunner().invoke(app, ["monitor", "prune", "--keep-days", "7", "--home", str(home)])
    assert result.exit_code == 0 and "removed 1 predictions logged before" in result.output, result.output
    assert [r.request_id for r in PredictionLog(Workbench.from_env(home)).query()] == ["today"]


def test_bad_queries_name_the_fix(store):
    with pytest.raises(InputError, match="at least 1"):
        store.query(last=0)
    with pytest.raises(InputError, match="before it starts"):
        store.window("iris", "1", start=2000, end=1000)


def test_labels_join_by_request_id_and_row_and_the_first_label_stays(store):
    store.write([record("batch", 10, row=0), record("batch", 10, row=1), record("single", 11)])
    assert store.add_labels([LabelRecord(request_id="batch", row=1, label="virginica", ts=moment(20))]) == 1
    assert store.add_labels([LabelRecord(request_id="batch", row=1, label="setosa", ts=moment(30))]) == 0
    labels = {(r.request_id, r.row): r.label for r in store.query()}
    assert labels == {("batch", 0): None, ("batch", 1): "virginica", ("single", 0): None}
    assert [r.request_id for r in store.query(labelled=True)] == ["batch"]
    assert [(r.request_id, r.row) for r in store.query(labelled=False)] == [("batch", 0), ("single", 0)]
    assert len(store.query(request_ids=["single", "nope"])) == 1


def _append(path: str, worker: int, rows: int) -> int:
    log = PredictionLog(Workbench.from_env(Path(path).parent), Path(path), timeout=30)
    for i in range(rows):  # one transaction per row: the most contention
        log.write([record(f"w{worker}-{i}", time.time())])
    log.close()
    return rows


def test_several_processes_append_to_one_log_at_once(store):
    store.write([record("first", 1)])  # the file exists, in WAL mode, before the writers race
    with ProcessPoolExecutor(3, mp_context=multiprocessing.get_context("fork")) as pool:
        written = list(pool.map(_append, [str(store.path)] * 3, range(3), [150] * 3))
    assert written == [150] * 3 and store.count() == 451
    assert len({r.request_id for r in store.query()}) == 451


def test_request_ids_are_the_clients_when_valid_else_new():
    assert request_id(b"month-2:17") == "month-2:17" and request_id("abc") == "abc"
    for bad in (None, b"", b"has space", "x" * 65, "semi;colon", "é"):
        made = request_id(bad)
        assert len(made) == 32 and made != bad and int(made, 16) >= 0


# ---------------------------------------------------------------- the label feed


def test_the_label_feed_labels_a_seeded_fraction_once_it_is_due(store):
    store.write([record(f"r{i}", 1000 + i) for i in range(200)])
    truth = {f"r{i}": "setosa" if i % 2 else "virginica" for i in range(200)} | {"unsent": "setosa"}
    feed = LabelFeed(fraction=0.4, delay=50, seed=3)
    assert feed.deliver(store, truth, now=1000 + 49.9) == 0  # nothing is 50 s old yet
    early = feed.deliver(store, truth, now=1000 + 149)
    later = feed.deliver(store, truth, now=1000 + 10_000)
    labelled = store.query(labelled=True)
    assert early == len([r for r in labelled if r.ts <= moment(1099)]) and early + later == len(labelled)
    assert 60 < len(labelled) < 100 and all(r.label == truth[r.request_id] for r in labelled)
    assert {r.request_id for r in labelled} == {f"r{i}" for i in range(200) if feed.chosen(f"r{i}")}
    assert feed.deliver(store, truth, now=1000 + 10_000) == 0  # delivered once
    again = LabelFeed(fraction=0.4, delay=0, seed=3).due(store.query(labelled=False), truth, now=10**6)
    assert again == []  # the same seed chooses the same ids: the rest are never labelled
    other = LabelFeed(fraction=0.4, seed=4)
    assert {i for i in range(200) if other.chosen(f"r{i}")} != {i for i in range(200) if feed.chosen(f"r{i}")}


def test_batch_requests_take_one_label_per_row():
    rows = [record("batch", 10, row=0), record("batch", 10, row=1), record("batch", 10, row=2)]
    labels = LabelFeed(fraction=1.0).due(rows, {"batch": ["setosa", "virginica"]}, now=10)
    assert [(x.row, x.label) for x in labels] == [(0, "setosa"), (1, "virginica")]  # no truth for row 2
    assert [x.row for x in LabelFeed(fraction=1.0).due(rows, {"batch": "setosa"}, now=10)] == [0]
    with pytest.raises(ValueError):
        LabelFeed(fraction=0)


# ---------------------------------------------------------------- the model server's recorder (in process)


@pytest.fixture(scope="module")
def model_path(tmp_path_factory, save_iris_model) -> Path:
    return save_iris_model(tmp_path_factory.mktemp("monitored-model"))[0]


def app(model_path: Path, home: Path):
    """The app ``workbench serve`` runs, with the state folder's prediction log."""
    from mlops_workbench.serving.server import create_app

    wb = Workbench.from_env(home)
    recorder = PredictionRecorder(PredictionLog(wb))
    return create_app(wb, str(model_path), name="iris", admin_token="token", recorder=recorder)


def test_every_answer_names_its_request_id_and_mlflow_formats_stay_as_they_were(home, model_path, wb):
    rows = [[5.1, 3.5, 1.4, 0.2], [6.2, 2.9, 4.3, 1.3], [7.7, 3.0, 6.1, 2.3]]
    with TestClient(app(model_path, home)) as client:
        invocation = client.post(paths.INVOCATIONS, json={"dataframe_split": {"columns": F, "data": rows}})
        assert invocation.json() == {"predictions": ["setosa", "versicolor", "virginica"]}  # MLflow's format
        generated = invocation.headers[paths.REQUEST_ID_HEADER]
        named = client.post(paths.PREDICT, json={"instances": rows[:1]}, headers={paths.REQUEST_ID_HEADER: "mine-1"})
        assert named.headers[paths.REQUEST_ID_HEADER] == named.json()["request_id"] == "mine-1"
        assert set(named.json()) == {"predictions", "probabilities", "classes", "version", "request_id"}
        odd = client.post(paths.PREDICT, json={"instances": rows[:1]}, headers={paths.REQUEST_ID_HEADER: "a b"})
        assert odd.json()["request_id"] != "a b" and len(odd.json()["request_id"]) == 32
        refused = client.post(paths.PREDICT, json={"instances": [[1, 2]]}, headers={paths.REQUEST_ID_HEADER: "bad-1"})
        assert refused.status_code == 400 and refused.headers[paths.REQUEST_ID_HEADER] == "bad-1"
    logged = PredictionLog(wb).query()  # closing the app wrote everything queued
    expected = [(generated, 0), (generated, 1), (generated, 2), ("mine-1", 0), (odd.json()["request_id"], 0)]
    assert [(r.request_id, r.row) for r in logged] == expected  # the refused request logged nothing
    batch = logged[:3]
    assert [r.features for r in batch] == [dict(zip(F, row, strict=True)) for row in rows]
    assert [r.prediction for r in batch] == ["setosa", "versicolor", "virginica"]
    assert all(r.endpoint == paths.INVOCATIONS and r.version == "unregistered" and r.model == "iris" for r in batch)
    assert all(r.probabilities and sum(r.probabilities.values()) == pytest.approx(1, abs=1e-4) for r in logged)
    assert logged[3].probabilities == dict(zip(named.json()["classes"], named.json()["probabilities"][0], strict=True))
    assert all(r.latency_ms > 0 for r in logged)


def test_a_broken_log_never_fails_a_request(home, model_path, caplog):
    from mlops_workbench import settings

    settings.layout(home).predictions.mkdir(parents=True)  # a folder where the database should be
    caplog.set_level(logging.WARNING, logger="mlops_workbench.monitoring.recorder")
    with TestClient(app(model_path, home)) as client:
        answers = [client.post(paths.PREDICT, json={"instances": [[5.1, 3.5, 1.4, 0.2]]}) for _ in range(5)]
        server = client.app.state.server
        assert server.recorder.flush(30)
    assert [a.status_code for a in answers] == [200] * 5 and server.recorder.lost == 5
    warnings = [r.getMessage() for r in caplog.records if "prediction log" in r.getMessage()]
    assert len(warnings) == 1 and "row(s) not logged so far" in warnings[0], warnings  # once a minute at most


# ---------------------------------------------------------------- a real model server


@pytest.mark.slow
def test_a_real_model_server_logs_every_prediction_with_its_version_and_features(tmp_path_factory):
    from mlops_workbench.registry import candidates
    from mlops_workbench.serving.client import ModelServerClient
    from mlops_workbench.serving.server import start_server

    home = tmp_path_factory.mktemp("monitored-home")
    try:
        tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)  # slow on a loaded 2-core machine
        run_id = candidates.log_candidate({"C": 1.0}, experiment="monitoring")
        version = registry.register(Workbench.from_env(home), run_id, "monitored").version
        service = start_server(
            Workbench.from_env(home), f"models:/monitored/{version}", name="serve-monitored", model_name="monitored"
        )
        client = ModelServerClient.of(Workbench.from_env(home), service.url)
        frame = scenarios.traffic(11, 25)
        # the workbench measuring the server itself (the strategy panel's accuracy probe): answered, never logged
        probe = client.predict(frame[F].tail(4).to_numpy().tolist(), probe=True)
        assert len(probe["predictions"]) == 4 and probe["request_id"]
        truth = scenarios.replay(client, frame, prefix="live")
        batch = client.send(frame[F].head(3).to_numpy().tolist(), path=paths.INVOCATIONS)
        assert len(truth) == 25 and batch.status == 200 and batch.request_id

        store = PredictionLog(Workbench.from_env(home))
        deadline = time.monotonic() + 30
        while store.count(model="monitored") < 28 and time.monotonic() < deadline:
            time.sleep(0.05)
        logged = store.query(model="monitored", version=version)
        assert len(logged) == 28 and {r.version for r in logged} == {str(version)}
        assert store.query(request_ids=[probe["request_id"]]) == [], "a probe's rows stay out of the prediction log"
        by_id = {(r.request_id, r.row): r for r in logged}
        for i, row in enumerate(frame[F].to_dict("records")):
            assert by_id[(f"live-{i}", 0)].features == row and by_id[(f"live-{i}", 0)].endpoint == paths.PREDICT
        assert [by_id[(batch.request_id, n)].features for n in range(3)] == frame[F].head(3).to_dict("records")

        assert LabelFeed(fraction=1.0).deliver(store, truth) == 25
        window = store.window("monitored", version, start=logged[0].ts, end=time.time() + 1)
        score = drift.accuracy(window)
        assert score.labelled == 25 and score.rows == 28 and score.accuracy > 0.8
        found = drift.detect(reference.load(Workbench.from_env(home), "monitored", version), window)
        assert found.rows == 28 and found.version == str(version)
    finally:
        procs.stop_all(Workbench.from_env(home))
