"""What lab 07's monitoring dashboard shows about one model, read from the services that know it.

:func:`observe` gathers one :class:`MonitorView`: the drift gauges the monitor service exports (``/metrics``,
through :class:`~mlops_workbench.serving.client.MonitorClient`), the alerts that are pending or firing (the
fallback's own ``/status``, Prometheus's ``ALERTS`` series, Alertmanager's API) and those the webhook has been
notified of (its ``alerts.jsonl``), the prediction log's recent rows (volume, latency, accuracy where labels came)
and the model servers' request counters (5xx share). Nothing it reads being down makes it fail: each thing it
could not read becomes a sentence in ``problems``. The parsing is in pure functions tested without servers;
:mod:`mlops_workbench.monitoring.dashboard` draws the view.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from enum import StrEnum
from typing import Any

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import WorkbenchError
from mlops_workbench.k8s.promql import REQUESTS
from mlops_workbench.monitoring import alertmanager, drift, exporter, stack, webhook
from mlops_workbench.monitoring.predictions import PredictionLog, PredictionRecord, Window, moment
from mlops_workbench.rollout import prometheus
from mlops_workbench.serving.client import ModelServerClient, MonitorClient
from mlops_workbench.workbench import Workbench

DEFAULT_THRESHOLD = 0.2
"""The drift score above which the reference rule ``FeatureDriftHigh`` fires (alert_rules.yaml)."""
PREDICTIONS = "(predictions)"
"""The gauge row of the prediction drift score (it has no feature)."""
SHOWN_LABELS = ("model", "version", "feature")
MONITOR_DOWN = "monitor not running: `workbench monitor up`"


class AlertState(StrEnum):
    PENDING = "pending"  # the condition holds, but not yet for the rule's `for:` duration
    FIRING = "firing"


class AlertSource(StrEnum):
    """Who says the alert is in that state."""

    FALLBACK = "fallback"  # the monitor's own rule evaluation (no Alertmanager binary)
    PROMETHEUS = "prometheus"
    ALERTMANAGER = "alertmanager"
    WEBHOOK = "webhook"  # the workbench received a firing notification and the group has not resolved since


class _View(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Gauge(_View):
    """One drift score the monitor exports, and whether it is above the threshold."""

    version: str
    feature: str
    score: float
    above: bool


class AlertLine(_View):
    name: str
    state: AlertState
    source: AlertSource
    detail: str = Field("", description="the alert's model, version and feature labels, when it has them")


class Traffic(_View):
    """The prediction log's rows of the model in the last ``window_s`` seconds."""

    window_s: float
    rows: int
    requests: int
    mean_latency_ms: float | None
    p95_latency_ms: float | None
    labelled: int
    accuracy: float | None = Field(description="share of the labelled rows predicted right (None: no label yet)")


class ServerCounts(_View):
    """A model server's request counter since it started: all requests and those answered 5xx."""

    role: str
    version: str
    requests: float
    errors: float

    @property
    def error_share(self) -> float | None:
        return self.errors / self.requests if self.requests else None


class MonitorView(_View):
    model: str
    at: str = Field(description="when it was read (UTC, HH:MM:SS)")
    monitor: str | None = Field(description="the monitor service's URL (None: it does not run)")
    alerting: str = Field(description="alertmanager, fallback or down (monitoring.stack.status)")
    reason: str
    threshold: float
    scorer_up: bool | None = Field(description="whether the drift scorer answered on the last scrape")
    gauges: list[Gauge]
    alerts: list[AlertLine]
    received: int = Field(description="notifications the webhook has accepted")
    last_received: str | None
    traffic: Traffic
    servers: list[ServerCounts]
    problems: list[str]


def gauges(text: str, model: str, threshold: float) -> tuple[list[Gauge], bool | None]:
    """The drift gauges of ``model`` in the monitor's ``/metrics`` text (highest score first), and whether its
    scorer answered (None when the text has no such gauge)."""
    found: list[Gauge] = []
    up: bool | None = None
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == exporter.SCORER_UP:
                up = s.value == 1.0
            elif s.name in (exporter.DRIFT, exporter.PREDICTION_DRIFT) and s.labels.get("model") == model:
                feature = s.labels.get("feature", PREDICTIONS) if s.name == exporter.DRIFT else PREDICTIONS
                score = float(s.value)
                found.append(
                    Gauge(version=s.labels.get("version", ""), feature=feature, score=score, above=score > threshold)
                )
    return sorted(found, key=lambda g: (-g.score, g.feature, g.version)), up


def _detail(labels: Mapping[str, str]) -> str:
    return ", ".join(f"{key}={labels[key]}" for key in SHOWN_LABELS if labels.get(key))


def fallback_alerts(status: Mapping[str, Any]) -> tuple[list[AlertLine], list[str]]:
    """The rules the monitor's fallback has firing or pending (its ``/status``), and its rule errors as problems."""
    if status.get("alerting") != "fallback":
        return [], []
    lines = [
        AlertLine(name=str(name), state=state, source=AlertSource.FALLBACK)
        for state, key in ((AlertState.FIRING, "firing"), (AlertState.PENDING, "pending"))
        for name in status.get(key) or []
    ]
    errors = [f"rule {rule} cannot be evaluated: {why}" for rule, why in sorted((status.get("errors") or {}).items())]
    return lines, errors


def prometheus_alerts(result: Iterable[Mapping[str, Any]]) -> list[AlertLine]:
    """The answer to the PromQL ``ALERTS`` (one series per alert, with ``alertname`` and ``alertstate``)."""
    lines = []
    for item in result:
        labels = item.get("metric", {})
        state = labels.get("alertstate")
        if state in (AlertState.PENDING, AlertState.FIRING):
            lines.append(
                AlertLine(
                    name=labels.get("alertname", "?"),
                    state=AlertState(state),
                    source=AlertSource.PROMETHEUS,
                    detail=_detail(labels),
                )
            )
    return lines


def alertmanager_alerts(active: Iterable[alertmanager.ActiveAlert]) -> list[AlertLine]:
    """The alerts Alertmanager holds as active (neither silenced nor inhibited)."""
    return [
        AlertLine(
            name=a.labels.get("alertname", "?"),
            state=AlertState.FIRING,
            source=AlertSource.ALERTMANAGER,
            detail=_detail(a.labels),
        )
        for a in active
        if a.status.state == "active"
    ]


def webhook_alerts(records: Sequence[webhook.AlertRecord]) -> list[AlertLine]:
    """The alerts of every group still firing after the webhook's ``records`` (oldest first), from the latest
    notification of each group."""
    firing = webhook.firing_groups(records)
    latest = {r.group_key: r for r in records}
    return [
        AlertLine(
            name=alert.labels.get("alertname", "?"),
            state=AlertState.FIRING,
            source=AlertSource.WEBHOOK,
            detail=_detail(alert.labels),
        )
        for key in sorted(firing)
        for alert in latest[key].notification.alerts
        if alert.status == "firing"
    ]


def traffic(records: Sequence[PredictionRecord], window_s: float) -> Traffic:
    """Volume, latency (per request) and accuracy (labelled rows) of ``records``."""
    import numpy as np

    latencies = list({r.request_id: r.latency_ms for r in records}.values())
    labelled, accuracy = 0, None
    if records:
        window = Window(
            model=records[0].model, version=None, start=records[0].ts, end=records[-1].ts, rows=list(records)
        )
        try:
            found = drift.accuracy(window)
            labelled, accuracy = found.labelled, found.accuracy
        except drift.NoLabelsError:
            pass
    return Traffic(
        window_s=window_s,
        rows=len(records),
        requests=len(latencies),
        mean_latency_ms=float(np.mean(latencies)) if latencies else None,
        p95_latency_ms=float(np.percentile(latencies, 95)) if latencies else None,
        labelled=labelled,
        accuracy=accuracy,
    )


def server_counts(text: str, role: str) -> list[ServerCounts]:
    """A model server's request counter (``/metrics`` text), per version: requests and 5xx answers."""
    totals: dict[str, list[float]] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == REQUESTS:
                counts = totals.setdefault(s.labels.get("version", ""), [0.0, 0.0])
                counts[0] += s.value
                counts[1] += s.value if s.labels.get("status", "").startswith("5") else 0.0
    return [ServerCounts(role=role, version=v, requests=n, errors=e) for v, (n, e) in sorted(totals.items())]


def observe(wb: Workbench, model: str, *, window_s: float = 300.0, threshold: float = DEFAULT_THRESHOLD) -> MonitorView:
    """Read everything the dashboard shows about ``model`` now; what is down or unreadable becomes a problem."""
    now = time.time()
    state = stack.status(wb)
    problems: list[str] = []
    found: list[Gauge] = []
    up: bool | None = None
    alerts: list[AlertLine] = []
    if state.monitor:
        client = MonitorClient.of(wb, state.monitor)
        try:
            found, up = gauges(client.metrics(), model, threshold)
            if state.alerting == "fallback":  # the monitor's /status, as stack.status read it just now
                lines, errors = fallback_alerts(state.answer)
                alerts, problems = alerts + lines, problems + errors
        except WorkbenchError as exc:
            problems.append(f"the monitor at {state.monitor} did not answer: {exc}")
    try:
        if state.prometheus:
            alerts += prometheus_alerts(prometheus.query(state.prometheus, "ALERTS"))
        if state.alertmanager:
            alerts += alertmanager_alerts(alertmanager.alerts(state.alertmanager))
    except WorkbenchError as exc:
        problems.append(str(exc))
    try:
        records = webhook.read(wb.layout.alerts_received)
    except ValueError as exc:
        records = []
        problems.append(f"the webhook's record {wb.layout.alerts_received} cannot be read: {exc}")
    alerts += webhook_alerts(records)
    recent = _recent(wb, model, now - window_s)
    return MonitorView(
        model=model,
        at=moment(now).strftime("%H:%M:%S"),
        monitor=state.monitor,
        alerting=state.alerting,
        reason=state.reason,
        threshold=threshold,
        scorer_up=up,
        gauges=found,
        alerts=alerts,
        received=len(records),
        last_received=records[-1].received if records else None,
        traffic=traffic(recent, window_s),
        servers=_servers(wb, model, problems),
        problems=problems,
    )


def _recent(wb: Workbench, model: str, since: float) -> list[PredictionRecord]:
    if not wb.layout.predictions.exists():  # reading must not create the log
        return []
    log = PredictionLog(wb)
    try:
        return log.query(model=model, start=since)
    finally:
        log.close()


def _servers(wb: Workbench, model: str, problems: list[str]) -> list[ServerCounts]:
    """The request counters of the local rollout's model servers that serve ``model``."""
    counts: list[ServerCounts] = []
    for role, address in sorted(stack.serving_targets(wb)[1].items()):
        server = ModelServerClient.of(wb, f"http://{address}")
        try:
            if server.version()["name"] == model:
                counts += server_counts(server.metrics(), role)
        except WorkbenchError as exc:
            problems.append(f"the {role} model server at {address} did not answer: {exc}")
    return counts
