"""The router's shadow upstream: a mirrored copy of each prediction request, answered and thrown away.

While a shadow is set (``PUT /admin/shadow`` with ``{"url": ..., "version": ...}``), the router sends a copy of
each prediction request it has answered to the shadow model server, in the background and over a connection pool
of its own: the client's answer never waits for the shadow and never changes, and a shadow that fails or hangs
fails no request. At most :data:`MAX_IN_FLIGHT` copies wait for an answer at once; more are dropped and counted.
Each copy carries the header ``x-workbench-shadow: <version>`` so the shadow server can tell it from live traffic.

For every copy the router records, labelled ``version="shadow"`` and the shadow's ``model_version``:

* ``workbench_router_shadow_requests_total{result}``: ``agree`` or ``disagree`` (both answered alike: same
  predictions, or not), ``error`` (no answer, a 5xx, or the shadow refused what the primary served), ``unmatched``
  (the primary failed: nothing to compare with);
* ``workbench_router_shadow_errors_total{kind}``: ``no-answer``, ``timeout``, ``status`` or ``body``;
* ``workbench_router_shadow_request_duration_seconds``: the shadow's latency, and under the primary's role
  (``version="stable"`` or ``"canary"``) the primary's latency for the same requests, so both compare like for like;
* ``workbench_router_shadow_dropped_total``: copies not sent because too many were pending.

:func:`compare` is the pure decision per request; :mod:`mlops_workbench.monitoring.shadow` reads the counters back
and judges them.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from typing import Any, Literal, NamedTuple

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram

from mlops_workbench.serving import paths
from mlops_workbench.serving.admin import ShadowTarget, parse_target

SHADOW = "shadow"
"""The ``version`` label of every shadow series."""
MAX_IN_FLIGHT = 64
Outcome = Literal["agree", "disagree", "error", "unmatched"]


class Copy(NamedTuple):
    """The request the router forwarded, to send again to the shadow."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes


class Answer(NamedTuple):
    """The answer the client got: from which role (``stable``/``canary``), its status and body, how long it took."""

    role: str
    status: int
    body: bytes
    seconds: float


def _predictions(body: bytes) -> list[str] | None:
    try:
        found = json.loads(body)["predictions"]
    except (ValueError, KeyError, TypeError):
        return None
    return [str(p) for p in found] if isinstance(found, list) else None


def compare(primary_status: int, primary_body: bytes, shadow_status: int, shadow_body: bytes) -> tuple[Outcome, str]:
    """The outcome of one mirrored request and, for an error, its kind ("" otherwise); status 0 means no answer."""
    if shadow_status == 0:
        return "error", "no-answer"
    if shadow_status >= 500:
        return "error", "status"
    if primary_status == 0 or primary_status >= 500:
        return "unmatched", ""
    if shadow_status != primary_status:
        return ("error", "status") if primary_status == 200 else ("disagree", "")
    if shadow_status != 200:
        return "agree", ""  # both refused the same input
    primary, shadow = _predictions(primary_body), _predictions(shadow_body)
    if primary is None:
        return "unmatched", ""
    if shadow is None:
        return "error", "body"
    return ("agree" if shadow == primary else "disagree"), ""


class Shadow:
    """The shadow upstream of one router: its target, connection pool, pending copies and metrics."""

    def __init__(self, registry: CollectorRegistry, buckets: Sequence[float], timeout: float) -> None:
        self.target: ShadowTarget | None = None
        self.timeout = timeout
        self.session: aiohttp.ClientSession | None = None
        self.pending: set[asyncio.Task[None]] = set()
        labels = ["version", "model_version"]
        self.requests = Counter(
            "workbench_router_shadow_requests",
            "Mirrored requests by how the shadow's answer compares with the primary's",
            [*labels, "result"],
            registry=registry,
        )
        self.errors = Counter(
            "workbench_router_shadow_errors", "Shadow failures by kind", [*labels, "kind"], registry=registry
        )
        self.duration = Histogram(
            "workbench_router_shadow_request_duration_seconds",
            "Latency of mirrored requests: the shadow's, and the primary's for the same requests",
            labels,
            buckets=buckets,
            registry=registry,
        )
        self.dropped = Counter(
            "workbench_router_shadow_dropped", "Copies not sent: too many were pending", labels, registry=registry
        )

    async def open(self) -> None:
        connector = aiohttp.TCPConnector(limit=MAX_IN_FLIGHT, keepalive_timeout=30)
        self.session = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self.timeout))

    async def close(self) -> None:
        for task in list(self.pending):
            task.cancel()
        if self.pending:
            await asyncio.wait(self.pending)
        if self.session:
            await self.session.close()

    def describe(self) -> dict[str, Any]:
        """The answer of the admin API: the shadow upstream now (None when none is set)."""
        return {"shadow": self.target.model_dump() if self.target else None}

    def set(self, data: Any) -> dict[str, Any]:
        self.target = parse_target(data)
        return self.describe()

    def clear(self) -> dict[str, Any]:
        self.target = None
        return self.describe()

    def mirror(self, copy: Copy, primary: Answer) -> None:
        """Send ``copy`` of a request the client got ``primary`` for to the shadow, in the background; returns at
        once."""
        shadow = self.target
        if shadow is None or self.session is None:
            return
        if len(self.pending) >= MAX_IN_FLIGHT:
            self.dropped.labels(SHADOW, shadow.version).inc()
            return
        task = asyncio.get_running_loop().create_task(self._send(shadow, copy, primary))
        self.pending.add(task)
        task.add_done_callback(self.pending.discard)

    async def _send(self, shadow: ShadowTarget, copy: Copy, primary: Answer) -> None:
        assert self.session is not None
        start, answer, got, kind = time.perf_counter(), b"", 0, ""
        headers = [*copy.headers, (paths.SHADOW_HEADER, shadow.version)]
        try:
            async with self.session.request(
                copy.method, shadow.url + copy.target, headers=headers, data=copy.body
            ) as resp:
                answer, got = await resp.read(), resp.status
        except TimeoutError:
            kind = "timeout"
        except (aiohttp.ClientError, OSError, ValueError):
            kind = "no-answer"
        outcome, found = compare(primary.status, primary.body, got, answer)
        self.duration.labels(SHADOW, shadow.version).observe(time.perf_counter() - start)
        self.duration.labels(primary.role, shadow.version).observe(primary.seconds)
        self.requests.labels(SHADOW, shadow.version, outcome).inc()
        if kind or found:
            self.errors.labels(SHADOW, shadow.version, kind or found).inc()
