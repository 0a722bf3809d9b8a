"""Cost per 1,000 predictions of each model version, from what its server really used.

Every model server exposes its process counters on ``/metrics`` (``process_cpu_seconds_total``,
``process_resident_memory_bytes``, ``process_start_time_seconds``) beside its request counter
``workbench_model_requests_total``. Two readings (:func:`sample`) around a window of traffic give the CPU seconds
used, the memory held (resident bytes, averaged over the readings, times the window's length) and the predictions
answered (requests with a 2xx status; one request is one prediction). Priced with params.yaml's ``cost`` section
(:class:`~mlops_workbench.paramspec.CostParams`: a price per CPU-hour and per GiB-hour), that is the cost of the
window, and divided by the predictions, the cost per 1,000 (:func:`cost_of`, pure). :func:`measure` does both
readings around a function that makes the traffic; :func:`record` writes the result on the model version, where
the gate's ``cost_budget`` and the registry panel read it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from prometheus_client.parser import text_string_to_metric_families
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.paramspec import CostParams
from mlops_workbench.registry.gate import COST_CURRENCY_TAG, COST_TAG, LATENCY_TAG
from mlops_workbench.serving.client import ModelServerClient
from mlops_workbench.workbench import Workbench

GIB = 2**30
CPU, RSS, STARTED, REQUESTS = (
    "process_cpu_seconds_total",
    "process_resident_memory_bytes",
    "process_start_time_seconds",
    "workbench_model_requests_total",
)
DURATION = "workbench_model_request_duration_seconds"
"""The server's latency histogram: its ``_sum`` and ``_count`` give the mean latency of a window."""
if TYPE_CHECKING:
    from mlflow import MlflowClient

REPORT_TAG = "cost.report"
"""Version tag: the whole :class:`VersionCost` as JSON (prices, window, CPU, memory, predictions)."""


class ServerSample(BaseModel):
    """One reading of a model server's counters at time ``t`` (seconds since the epoch)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    t: float
    started: float = Field(description="when the server process started (a restart resets its counters)")
    cpu_seconds: float = Field(ge=0)
    rss_bytes: float = Field(ge=0)
    predictions: float = Field(ge=0, description="requests answered with a 2xx status so far")
    latency_seconds: float = Field(0.0, ge=0, description="time spent answering requests so far (histogram sum)")
    latency_count: float = Field(0.0, ge=0, description="requests timed so far (histogram count)")


def parse_sample(text: str, t: float, where: str = "the server") -> ServerSample:
    """A :class:`ServerSample` from a model server's ``/metrics`` text read at ``t``."""
    values: dict[str, float] = {}
    predictions = latency = timed = 0.0
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name in (CPU, RSS, STARTED):
                values[s.name] = s.value
            elif s.name == REQUESTS and s.labels.get("status", "").startswith("2"):
                predictions += s.value
            elif s.name == f"{DURATION}_sum":
                latency += s.value
            elif s.name == f"{DURATION}_count":
                timed += s.value
    missing = [name for name in (CPU, RSS, STARTED) if name not in values]
    if missing:
        raise ServiceError(
            f"{where} exposes no {', '.join(missing)} on /metrics: it is not a workbench model server on Linux, "
            "or an old one; restart it with `workbench serve` (or point the cost at a model server's URL)."
        )
    return ServerSample(
        t=t,
        started=values[STARTED],
        cpu_seconds=values[CPU],
        rss_bytes=values[RSS],
        predictions=predictions,
        latency_seconds=latency,
        latency_count=timed,
    )


def sample(wb: Workbench, url: str) -> ServerSample:
    """Read the counters of the model server at ``url`` now."""
    text = ModelServerClient.of(wb, url).metrics()
    return parse_sample(text, time.time(), f"the model server at {url}")


class VersionCost(BaseModel):
    """What one version cost over a window, and per 1,000 predictions."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    window_seconds: float
    predictions: int
    cpu_seconds: float
    gib_hours: float = Field(description="resident memory held: GiB times hours")
    cpu_cost: float
    memory_cost: float
    cost: float = Field(description="cpu_cost + memory_cost, for the whole window")
    per_1k: float | None = Field(description="cost per 1,000 predictions (None when nothing was predicted)")
    currency: str
    prices: CostParams
    mean_latency_ms: float | None = Field(None, description="mean request latency in the window (None: none timed)")

    def summary(self) -> str:
        each = (
            f"{self.per_1k:.6f} {self.currency} per 1,000 predictions" if self.per_1k is not None else "no predictions"
        )
        return (
            f"v{self.version}: {each} ({self.predictions} predictions in {self.window_seconds:.1f}s, "
            f"{self.cpu_seconds:.2f} CPU-s, {self.gib_hours * 3600:.3f} GiB-s)"
        )


def cost_of(samples: Sequence[ServerSample], prices: CostParams, version: str) -> VersionCost:
    """The cost of the window the ``samples`` (in time order, at least two, one process) span, priced by ``prices``.

    Memory is the time integral of the resident size (trapezoids between readings)."""
    if len(samples) < 2:
        raise InputError(f"Give at least two readings of the server (got {len(samples)}): one before, one after.")
    first, last = samples[0], samples[-1]
    if any(later.t <= earlier.t for earlier, later in zip(samples, samples[1:], strict=False)):
        raise InputError("The readings are not in time order: sort them by their t.")
    if any(s.started != first.started for s in samples):
        raise ServiceError(f"v{version}'s server restarted during the window (its counters reset): measure again.")
    byte_seconds = sum(
        (a.rss_bytes + b.rss_bytes) / 2 * (b.t - a.t) for a, b in zip(samples, samples[1:], strict=False)
    )
    cpu = last.cpu_seconds - first.cpu_seconds
    predictions = int(round(last.predictions - first.predictions))
    gib_hours = byte_seconds / GIB / 3600
    cpu_cost, memory_cost = cpu / 3600 * prices.cpu_hour, gib_hours * prices.gb_hour
    total = cpu_cost + memory_cost
    timed = last.latency_count - first.latency_count
    return VersionCost(
        version=version,
        window_seconds=last.t - first.t,
        predictions=predictions,
        cpu_seconds=cpu,
        gib_hours=gib_hours,
        cpu_cost=cpu_cost,
        memory_cost=memory_cost,
        cost=total,
        per_1k=total / predictions * 1000 if predictions > 0 else None,
        currency=prices.currency,
        prices=prices,
        mean_latency_ms=(last.latency_seconds - first.latency_seconds) / timed * 1000 if timed > 0 else None,
    )


def measure(
    wb: Workbench, servers: Mapping[str, str], during: Callable[[], object], prices: CostParams | None = None
) -> dict[str, VersionCost]:
    """Read every server (``{label: url}``, e.g. ``{"blue": ..., "green": ...}``), run ``during()`` (the traffic),
    read them again; the cost of each, keyed by label, for the version it serves."""
    if not servers:
        raise InputError("Name the servers to measure: measure({'blue': url, 'green': url}, during=...).")
    prices = prices or CostParams.load()
    versions = {label: str(ModelServerClient.of(wb, url).version()["version"]) for label, url in servers.items()}
    before = {label: sample(wb, url) for label, url in servers.items()}
    during()
    after = {label: sample(wb, url) for label, url in servers.items()}
    return {label: cost_of([before[label], after[label]], prices, versions[label]) for label in servers}


def record(client: MlflowClient, name: str, cost: VersionCost) -> None:
    """Write ``cost`` on version ``cost.version`` of ``name`` (``client`` is an ``MlflowClient``): the gate's
    ``cost_budget`` and the registry panel read it there."""
    if cost.per_1k is None:
        raise InputError(f"v{cost.version} answered no predictions in the window: send traffic during the measurement.")
    client.set_model_version_tag(name, cost.version, COST_TAG, repr(cost.per_1k))
    client.set_model_version_tag(name, cost.version, COST_CURRENCY_TAG, cost.currency)
    client.set_model_version_tag(name, cost.version, REPORT_TAG, cost.model_dump_json())
    if cost.mean_latency_ms is not None:
        client.set_model_version_tag(name, cost.version, LATENCY_TAG, repr(cost.mean_latency_ms))
