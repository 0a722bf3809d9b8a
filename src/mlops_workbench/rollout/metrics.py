"""Where the analysis reads counters: Prometheus (PromQL over its HTTP API) or /metrics scraped directly.

Both sources return the same :class:`Snapshot` of cumulative counters per version
(``stable``/``canary``): router requests by status, router upstream failures,
router latency histogram buckets, and model-server predictions by class. A
measurement window is the difference of two snapshots (:func:`diff`), so the
numbers are exact request counts, not extrapolated rates, on either path.
"""

from __future__ import annotations

import math
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any, Protocol

from prometheus_client.parser import text_string_to_metric_families

from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.rollout import prometheus
from mlops_workbench.serving.client import ModelServerClient, RouterClient

ROLES = ("stable", "canary")
Q_REQUESTS = "sum by (version, status) (workbench_router_requests_total)"
Q_FAILURES = "sum by (version) (workbench_router_upstream_failures_total)"
Q_BUCKETS = "sum by (version, le) (workbench_router_request_duration_seconds_bucket)"
Q_PREDICTIONS = "sum by (role, label) (workbench_model_predictions_total)"
QUERIES = {"requests": Q_REQUESTS, "failures": Q_FAILURES, "buckets": Q_BUCKETS, "predictions": Q_PREDICTIONS}


class MetricsUnavailable(ServiceError):
    """The metrics backend cannot be read right now (the measurement is an error, never a pass)."""


@dataclass
class Snapshot:
    """Cumulative counters at time ``t`` (or, after :func:`diff`, increases over a window)."""

    t: float
    requests: dict[tuple[str, str], float] = field(default_factory=dict)  # (version, status) -> count
    failures: dict[str, float] = field(default_factory=dict)  # version -> upstream failures
    buckets: dict[str, dict[float, float]] = field(default_factory=dict)  # version -> le -> cumulative count
    predictions: dict[str, dict[str, float]] = field(default_factory=dict)  # role -> label -> count
    source: str = ""
    start: float | None = None


def _delta(new: float, old: float) -> float:
    return new if new < old else new - old  # a counter that went down was reset (process restarted)


def diff(new: Snapshot, old: Snapshot) -> Snapshot:
    """Increase of every counter from ``old`` to ``new`` (counter resets handled like PromQL's increase)."""
    out = Snapshot(t=new.t, start=old.t, source=new.source)
    out.requests = {k: _delta(v, old.requests.get(k, 0.0)) for k, v in new.requests.items()}
    out.failures = {k: _delta(v, old.failures.get(k, 0.0)) for k, v in new.failures.items()}
    for version, les in new.buckets.items():
        prev = old.buckets.get(version, {})
        out.buckets[version] = {le: _delta(v, prev.get(le, 0.0)) for le, v in les.items()}
    for role, labels in new.predictions.items():
        before = old.predictions.get(role, {})
        out.predictions[role] = {lab: _delta(v, before.get(lab, 0.0)) for lab, v in labels.items()}
    return out


class MetricsSource(Protocol):
    """What the analysis needs: the counter increases over ``[start, end]``."""

    name: str

    def window(self, start: float, end: float) -> Snapshot:
        """Counter increases between ``start`` and ``end``; raises :class:`MetricsUnavailable`."""

    def prime(self) -> None:
        """Take a baseline reading now (a no-op where history is kept by the backend)."""


class PrometheusSource:
    """Reads the counters with PromQL instant queries at both ends of the window."""

    name = "prometheus"

    def __init__(self, url: str, timeout: float = 3.0) -> None:
        self.url = url.rstrip("/")
        self.timeout = timeout

    def query(self, promql: str, at: float | None = None) -> list[dict[str, Any]]:
        """Run one instant query; returns Prometheus' ``result`` vector."""
        try:
            return prometheus.query(self.url, promql, at, timeout=self.timeout)
        except prometheus.PrometheusError as err:
            raise MetricsUnavailable(str(err)) from err

    def snapshot(self, at: float | None = None) -> Snapshot:
        at = time.time() if at is None else at
        snap = Snapshot(t=at, source=self.name)
        for row in self.query(Q_REQUESTS, at):
            m = row["metric"]
            snap.requests[(m.get("version", ""), m.get("status", ""))] = float(row["value"][1])
        for row in self.query(Q_FAILURES, at):
            snap.failures[row["metric"].get("version", "")] = float(row["value"][1])
        for row in self.query(Q_BUCKETS, at):
            m = row["metric"]
            snap.buckets.setdefault(m.get("version", ""), {})[float(m["le"])] = float(row["value"][1])
        for row in self.query(Q_PREDICTIONS, at):
            m = row["metric"]
            snap.predictions.setdefault(m.get("role", ""), {})[m.get("label", "")] = float(row["value"][1])
        return snap

    def window(self, start: float, end: float) -> Snapshot:
        return diff(self.snapshot(end), self.snapshot(start))

    def prime(self) -> None:
        self.query("vector(1)")


def parse_router(text: str, snap: Snapshot) -> None:
    """Add the router's counters from a /metrics text to ``snap``."""
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            version = s.labels.get("version", "")
            if s.name == "workbench_router_requests_total":
                key = (version, s.labels.get("status", ""))
                snap.requests[key] = snap.requests.get(key, 0.0) + s.value
            elif s.name == "workbench_router_upstream_failures_total":
                snap.failures[version] = snap.failures.get(version, 0.0) + s.value
            elif s.name == "workbench_router_request_duration_seconds_bucket":
                les = snap.buckets.setdefault(version, {})
                le = float(s.labels["le"])
                les[le] = les.get(le, 0.0) + s.value


def parse_predictions(text: str) -> dict[str, float]:
    """Predicted-class counts (summed over model versions) from a model server's /metrics text."""
    counts: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == "workbench_model_predictions_total":
                counts[s.labels.get("label", "")] += s.value
    return dict(counts)


class DirectSource:
    """Scrapes ``/metrics`` of the router and the model servers itself (no Prometheus needed).

    Keeps its own history of readings; a window is the newest reading minus the
    reading closest to the window start. Call :meth:`prime` when analysis begins.
    """

    name = "direct"

    def __init__(self, router_url: str, models: dict[str, str] | None = None, timeout: float = 2.0) -> None:
        self.router_url = router_url.rstrip("/")
        self.models = {k: v.rstrip("/") for k, v in (models or {}).items()}
        self.timeout = timeout
        self.history: list[Snapshot] = []

    def snapshot(self) -> Snapshot:
        snap = Snapshot(t=time.time(), source=self.name)
        try:
            text = RouterClient(self.router_url).metrics(timeout=self.timeout)
        except (ServiceError, InputError) as err:
            raise MetricsUnavailable(f"router /metrics at {self.router_url} did not answer ({_why(err)})") from err
        parse_router(text, snap)
        for role, url in self.models.items():
            try:
                snap.predictions[role] = parse_predictions(ModelServerClient(url).metrics(timeout=self.timeout))
            except (ServiceError, InputError):
                pass  # a model server that is down has no predictions in this reading
        return snap

    def prime(self) -> None:
        self._record(self.snapshot())

    def _record(self, snap: Snapshot) -> None:
        self.history.append(snap)
        self.history = [s for s in self.history if s.t > snap.t - 900]

    def window(self, start: float, end: float) -> Snapshot:
        new = self.snapshot()
        older = [s for s in self.history if s.t <= start + 0.25]
        base = older[-1] if older else (self.history[0] if self.history else None)
        self._record(new)
        if base is None:
            raise MetricsUnavailable("no baseline reading yet: call prime() when the analysis starts")
        return diff(new, base)


def _why(err: Exception) -> str:
    """The short reason of a failed scrape: the transport error's own words when no answer came."""
    return getattr(err, "detail", None) or str(err)


def histogram_quantile(q: float, buckets: dict[float, float]) -> float | None:
    """The q-quantile from cumulative buckets (le -> count), interpolated like PromQL; None if empty."""
    if not buckets:
        return None
    items = sorted(buckets.items())
    total = items[-1][1]
    if total <= 0:
        return None
    rank = q * total
    prev_le, prev_count = 0.0, 0.0
    for le, count in items:
        if count >= rank:
            if math.isinf(le):
                return prev_le
            if count == prev_count:
                return le
            return prev_le + (le - prev_le) * (rank - prev_count) / (count - prev_count)
        prev_le, prev_count = le, count
    return items[-1][0]
