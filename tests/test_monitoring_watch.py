"""The monitor's own drift scorer on a real prediction log, and lab 07's wait for the log to catch up.

Units: the sqlite prediction log of a temporary state folder, written as the recorder writes it; the reference is
the one the lab's project trains (pure, no registry). The scorer inside a real monitor service is tested in
tests/test_monitoring_wiring.py.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pytest
from prometheus_client import generate_latest
from pydantic import ValidationError

from mlops_workbench.errors import Failed, InputError
from mlops_workbench.monitoring import drift, exporter, labkit, scenarios
from mlops_workbench.monitoring.predictions import PredictionLog, PredictionRecord
from mlops_workbench.monitoring.watch import LogScorer, Outcome, Watch

MODEL = "iris"


@pytest.fixture(scope="module")
def reference():
    return labkit.iris_reference()


def records(prefix: str, seed: int, rows: int, shift=None, version: str = "1", ts: float | None = None):
    frame = scenarios.traffic(seed, rows, shift)
    now = time.time() if ts is None else ts
    return [
        PredictionRecord(
            request_id=f"{prefix}-{i}",
            ts=datetime.fromtimestamp(now, UTC),
            model=MODEL,
            version=version,
            endpoint="/predict",
            features={f: float(row[f]) for f in scenarios.FEATURES},
            prediction=str(row["species"]),
            latency_ms=1.0,
        )
        for i, (_, row) in enumerate(frame.iterrows())
    ]


def write(wb, rows) -> None:
    log = PredictionLog(wb)
    try:
        log.write(rows)
    finally:
        log.close()


# --- labkit.logged waits for the recorder ----------------------------------------------------------------------------
def test_logged_waits_for_rows_the_recorder_writes_late(wb):
    sent = records("month-1", 1, 40)
    write(wb, sent[:30])
    late = threading.Timer(0.4, write, args=(wb, sent[30:]))
    late.start()
    try:
        window = labkit.logged(wb, MODEL, "month-1", {r.request_id: "setosa" for r in sent}, timeout=20)
    finally:
        late.join()
    assert sorted(r.request_id for r in window.rows) == sorted(r.request_id for r in sent)
    assert labkit.logged(wb, MODEL, "month-1", 40, timeout=1).frame().shape[0] == 40


def test_logged_names_what_never_arrived(wb):
    sent = records("month-2", 2, 10)
    write(wb, sent[:7])
    started = time.monotonic()
    with pytest.raises(Failed) as err:
        labkit.logged(wb, MODEL, "month-2", [r.request_id for r in sent], timeout=0.5)
    assert time.monotonic() - started < 10
    message = str(err.value)
    assert "7 of the 10" in message and "3 never arrived" in message and "month-2-7" in message
    assert "workbench ps" in message
    with pytest.raises(Failed, match="holds 7 of the 12"):
        labkit.logged(wb, MODEL, "month-2", 12, timeout=0.2)
    with pytest.raises(InputError, match="month-3-"):
        labkit.logged(wb, MODEL, "month-3", ["month-2-0"], timeout=0.2)


# --- the scorer ------------------------------------------------------------------------------------------------------
def test_the_scorer_measures_the_latest_window_of_the_watched_version(wb, reference):
    write(wb, records("month-1", 1, 300))
    write(wb, records("other", 5, 50, scenarios.Shift(feature="petal_length", amount=2.0), version="2"))
    moved = records("month-2", 2, 300, labkit.LATER_MONTH)
    write(wb, moved)
    scorer = LogScorer(wb, Watch(model=MODEL, version="1", last=300), references={"1": reference})

    [scores] = scorer()
    assert (scores.model, scores.version) == (MODEL, "1")
    assert max(scores.features, key=lambda f: scores.features[f]) == labkit.LATER_MONTH.feature
    assert scores.features[labkit.LATER_MONTH.feature] > 0.25
    assert all(v < 0.25 for f, v in scores.features.items() if f != labkit.LATER_MONTH.feature)
    log = PredictionLog(wb)
    window = log.window(MODEL, "1", 0, time.time() + 10)
    log.close()
    window.rows = [r for r in window.rows if r.request_id.startswith("month-2-")]
    assert scores == drift.detect(reference, window).scores(), "the project's drift measure, not a copy"
    status = scorer.status()
    assert status.outcome is Outcome.SCORED and status.rows == 300 and status.version == "1"
    assert labkit.LATER_MONTH.feature in status.reason

    quiet = LogScorer(wb, Watch(model=MODEL, version="1", last=600), references={"1": reference})
    assert quiet()[0].features[labkit.LATER_MONTH.feature] < scores.features[labkit.LATER_MONTH.feature]


def test_a_window_of_seconds_reads_only_recent_predictions(wb, reference):
    now = time.time()
    write(wb, records("old", 3, 200, labkit.LATER_MONTH, ts=now - 3600))
    write(wb, records("new", 4, 200, ts=now - 5))
    scorer = LogScorer(wb, Watch(model=MODEL, version="1", seconds=60), clock=lambda: now, references={"1": reference})
    [scores] = scorer()
    assert scores.features[labkit.LATER_MONTH.feature] < 0.25, "the shifted hour-old month is outside the window"
    assert scorer.status().rows == 200


def test_an_empty_window_exports_no_gauge_and_says_why(wb, reference):
    write(wb, records("month-1", 1, 20, version="1"))
    scorer = LogScorer(wb, Watch(model=MODEL, version="7"), references={"7": reference})
    text = generate_latest(exporter.registry(scorer)).decode()
    assert exporter.DRIFT + "{" not in text and f"{exporter.SCORER_UP} 1.0" in text
    status = scorer.status()
    assert status.outcome is Outcome.EMPTY and "no prediction of iris version 7" in status.reason
    assert "send traffic" in status.reason


def test_a_watch_takes_one_window_and_defaults_to_the_last_300():
    assert Watch(model=MODEL).last == 300 and Watch(model=MODEL).version is None
    assert "production" in Watch(model=MODEL).describe()
    with pytest.raises(ValidationError, match="not both"):
        Watch(model=MODEL, last=10, seconds=5)
    with pytest.raises(ValidationError):
        Watch(model=MODEL, last=0)
    with pytest.raises(ValidationError):
        Watch(model=MODEL, extra=1)
