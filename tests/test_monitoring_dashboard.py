"""Lab 07's monitoring dashboard: the view read from the monitor, alerting, webhook and prediction log, and its HTML.

The parsing is tested on what the real pieces produce (the exporter's registry, a model server's metrics, the
webhook's records); one test runs the real monitor service, posts a notification to its webhook and stops it.
The browser test is tests/test_browser_monitor.py.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import generate_latest
from test_monitoring_webhook import SENT, resolved

from mlops_workbench import procs
from mlops_workbench.monitoring import alertmanager, dashboard, exporter, overview, service, webhook
from mlops_workbench.monitoring.exporter import DriftScores
from mlops_workbench.monitoring.overview import AlertSource, AlertState
from mlops_workbench.monitoring.predictions import PredictionLog, PredictionRecord
from mlops_workbench.serving import auth
from mlops_workbench.serving.hotpath import Metrics


def scores() -> list[DriftScores]:
    return [
        DriftScores(model="iris", version="3", features={"petal_length": 0.61, "sepal_width": 0.01}, prediction=0.05),
        DriftScores(model="other", version="1", features={"petal_length": 0.9}),
    ]


def test_gauges_are_read_from_the_exporters_metrics_for_one_model():
    text = generate_latest(exporter.registry(scores)).decode()
    found, up = overview.gauges(text, "iris", threshold=0.2)
    assert up is True
    assert [(g.feature, g.version, g.score, g.above) for g in found] == [
        ("petal_length", "3", 0.61, True),
        (overview.PREDICTIONS, "3", 0.05, False),
        ("sepal_width", "3", 0.01, False),
    ]

    def broken() -> list[DriftScores]:
        raise RuntimeError("reference missing")

    assert overview.gauges(generate_latest(exporter.registry(broken)).decode(), "iris", 0.2) == ([], False)
    assert overview.gauges("", "iris", 0.2) == ([], None)


def test_alerts_from_the_fallback_prometheus_alertmanager_and_the_webhook():
    lines, errors = overview.fallback_alerts(
        {"alerting": "fallback", "firing": ["FeatureDriftHigh"], "pending": ["ErrorRateHigh"], "errors": {"X": "bad"}}
    )
    assert [(a.name, a.state, a.source) for a in lines] == [
        ("FeatureDriftHigh", AlertState.FIRING, AlertSource.FALLBACK),
        ("ErrorRateHigh", AlertState.PENDING, AlertSource.FALLBACK),
    ]
    assert errors == ["rule X cannot be evaluated: bad"]
    assert overview.fallback_alerts({"alerting": "alertmanager"}) == ([], [])

    series = [
        {"metric": {"__name__": "ALERTS", "alertname": "FeatureDriftHigh", "alertstate": "pending", "feature": "x"}},
        {"metric": {"__name__": "ALERTS", "alertname": "LatencyP99High", "alertstate": "firing", "version": "2"}},
    ]
    assert [(a.name, a.state, a.detail) for a in overview.prometheus_alerts(series)] == [
        ("FeatureDriftHigh", AlertState.PENDING, "feature=x"),
        ("LatencyP99High", AlertState.FIRING, "version=2"),
    ]

    held = {
        "labels": {"alertname": "FeatureDriftHigh", "model": "iris"},
        "annotations": {},
        "fingerprint": "f1",
        "startsAt": "2026-12-04T21:44:23Z",
        "endsAt": "2026-12-04T21:54:23Z",
        "updatedAt": "2026-12-04T21:44:23Z",
        "receivers": [{"name": "workbench"}],
        "status": {"state": "active", "silencedBy": [], "inhibitedBy": []},
    }
    silenced = {**held, "fingerprint": "f2", "status": {"state": "suppressed", "silencedBy": ["s"], "inhibitedBy": []}}
    active = [alertmanager.ActiveAlert.model_validate(a) for a in (held, silenced)]
    assert [(a.name, a.source, a.detail) for a in overview.alertmanager_alerts(active)] == [
        ("FeatureDriftHigh", AlertSource.ALERTMANAGER, "model=iris")
    ]

    def record(payload: dict) -> webhook.AlertRecord:
        n = webhook.Notification.model_validate(payload)
        return webhook.AlertRecord(
            received="t", group_key=n.group_key, status=n.status, firing=n.firing, action="none", notification=n
        )

    firing = overview.webhook_alerts([record(SENT)])
    assert [(a.name, a.state, a.source, a.detail) for a in firing] == [
        ("FeatureDriftHigh", AlertState.FIRING, AlertSource.WEBHOOK, "model=iris, version=3, feature=petal_length")
    ]
    assert overview.webhook_alerts([record(SENT), record(resolved(SENT))]) == [], "a resolved group fires no more"


def test_traffic_counts_requests_latency_and_accuracy_of_labelled_rows():
    start = datetime(2026, 12, 5, tzinfo=UTC)

    def row(i: int, request: str, latency: float, label: str | None) -> PredictionRecord:
        return PredictionRecord(
            request_id=request,
            row=i,
            ts=start + timedelta(seconds=i),
            model="iris",
            version="3",
            endpoint="/predict",
            features={"a": 1.0},
            prediction="setosa",
            latency_ms=latency,
            label=label,
        )

    records = [row(0, "r1", 2.0, "setosa"), row(1, "r1", 2.0, "virginica"), row(2, "r2", 4.0, None)]
    t = overview.traffic(records, 300)
    assert (t.rows, t.requests, t.mean_latency_ms, t.labelled, t.accuracy) == (3, 2, 3.0, 2, 0.5)
    assert overview.traffic(records[2:], 300).accuracy is None
    empty = overview.traffic([], 300)
    assert (empty.rows, empty.mean_latency_ms, empty.accuracy) == (0, None, None)


def test_server_counts_read_a_model_servers_request_counter():
    metrics = Metrics()
    for status in (200, 200, 200, 500):
        metrics.observe("3", status, 0.002)
    metrics.observe("4", 200, 0.002)
    counts = overview.server_counts(generate_latest(metrics.registry).decode(), "stable")
    assert [(c.version, c.requests, c.errors, c.error_share) for c in counts] == [
        ("3", 4.0, 1.0, 0.25),
        ("4", 1.0, 0.0, 0.0),
    ]


def test_the_html_names_the_drifting_feature_the_alerts_and_a_monitor_that_is_down(wb):
    view = overview.observe(wb, "iris")
    assert view.monitor is None and view.alerting == "down" and view.received == 0
    assert not wb.layout.predictions.exists(), "reading the dashboard creates no prediction log"
    down = dashboard.view_html(view)
    assert "monitor not running: <code>workbench monitor up</code>" in down
    assert "no drift gauge for iris" in down and "no alert pending or firing" in down
    found, _ = overview.gauges(generate_latest(exporter.registry(scores)).decode(), "iris", 0.2)
    alert = overview.AlertLine(name="FeatureDriftHigh", state=AlertState.PENDING, source=AlertSource.FALLBACK)
    live = view.model_copy(update={"monitor": "http://127.0.0.1:1", "alerting": "fallback", "reason": "no `am`"})
    shown = dashboard.view_html(live.model_copy(update={"gauges": found, "alerts": [alert], "received": 1}))
    assert "monitor not running" not in shown and "no <code>am</code>" in shown
    assert "<td>petal_length</td><td>v3</td><td>0.610</td>" in shown and "above 0.2" in shown
    assert "<td>FeatureDriftHigh</td>" in shown and "pending" in shown and "1 notification received" in shown


SCORER = """
from mlops_workbench.monitoring.exporter import DriftScores

def high():
    return [DriftScores(model="iris", version="3", features={"petal_length": 0.6, "sepal_width": 0.01})]
"""


@pytest.mark.slow
def test_a_real_monitor_feeds_the_dashboard_and_a_posted_notification_shows(wb, tmp_path, monkeypatch):
    (tmp_path / "dash_scorer.py").write_text(SCORER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")])))
    monitor = service.start(wb, scorer="dash_scorer:high")
    log = PredictionLog(wb)
    log.write(
        [
            PredictionRecord(
                request_id="r1",
                ts=datetime.now(UTC),
                model="iris",
                version="3",
                endpoint="/predict",
                features={"petal_length": 1.4},
                prediction="setosa",
                latency_ms=1.5,
            )
        ]
    )
    log.close()
    board = dashboard.Dashboard(wb, "iris")
    view = board.refresh()
    assert view.monitor == monitor.url and view.problems == []
    assert [(g.feature, g.above) for g in view.gauges] == [("petal_length", True), ("sepal_width", False)]
    assert view.traffic.rows == 1 and "0.600" in board.board.value
    answer = procs.http().post(monitor.url + webhook.PATH, json=SENT, headers=auth.headers(auth.read_token(wb)))
    assert answer.status_code == 200, answer.text
    view = board.refresh()
    assert view.received == 1 and [(a.name, a.source) for a in view.alerts] == [("FeatureDriftHigh", "webhook")]
    assert "1 notification received" in board.board.value
    assert procs.stop(wb, service.SERVICE)
    assert board.refresh().monitor is None and "monitor not running" in board.board.value
