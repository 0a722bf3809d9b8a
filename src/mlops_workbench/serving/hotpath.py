"""The model server's hot path: ``POST /predict`` and ``POST /invocations`` as plain ASGI.

Prediction requests skip the web framework's routing and request objects (the
model takes ~0.25 ms; the framework would add half as much again). This layer
injects faults, reads and validates the body, predicts, records the
Prometheus metrics and hands every answered request to the prediction log
(a :class:`PredictionSink`: ``workbench serve`` gives it :mod:`mlops_workbench.monitoring.recorder`, which
writes off the request path). Each answer names its request id in the
``x-request-id`` header (the client's own when it sent a valid one); ``/predict`` also has it in the body.
Every other path goes to the FastAPI app behind it.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from typing import TYPE_CHECKING, Any, Protocol

import orjson
from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, disable_created_metrics

from mlops_workbench.serving import paths, payloads
from mlops_workbench.serving.faults import CRASH_EXIT_CODE, FaultInjector
from mlops_workbench.serving.model import LoadedModel
from mlops_workbench.serving.payloads import PayloadError

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

log = logging.getLogger("mlops_workbench.serving.server")
PREDICTION_PATHS = paths.PREDICTION_PATHS
BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_INJECTED = b'{"error": "injected fault: this request failed on purpose (see GET /admin/faults)"}'
_REQUEST_ID = paths.REQUEST_ID_HEADER.encode()
_PROBE = paths.PROBE_HEADER.encode()
Scored = tuple[Any, list[Any], list[list[float]] | None]
"""What a request scored: the input matrix, the predicted labels, the probabilities (None when not computed)."""


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: they double the scrape size and nobody queries them
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)  # process_cpu_seconds_total, process_resident_memory_bytes: the cost
        self.requests = Counter(
            "workbench_model_requests",
            "Prediction requests by model version and HTTP status.",
            ["version", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "workbench_model_request_duration_seconds",
            "Prediction request latency in seconds.",
            ["version"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.predictions = Counter(
            "workbench_model_predictions",
            "Predicted classes by model version.",
            ["version", "label"],
            registry=self.registry,
        )

    def observe(self, version: str, status: int, seconds: float) -> None:
        self.requests.labels(version, str(status)).inc()
        self.duration.labels(version).observe(seconds)

    def count(self, version: str, labels: list[Any]) -> None:
        for label in set(map(str, labels)):
            self.predictions.labels(version, label).inc(sum(1 for x in labels if str(x) == label))


class PredictionSink(Protocol):
    """Where the hot path hands every answered request (it must return at once and never raise)."""

    def record(
        self,
        request_id: str,
        endpoint: str,
        model: LoadedModel,
        matrix: Any,
        labels: list[Any],
        probabilities: list[list[float]] | None,
        latency_ms: float,
    ) -> None: ...

    def close(self) -> None: ...


class Holder(Protocol):
    """What the hot path needs from the server: the current model, the faults, the metrics, the prediction log."""

    model: LoadedModel
    faults: FaultInjector
    metrics: Metrics
    recorder: PredictionSink | None


class PredictionEndpoints:
    """ASGI middleware answering the prediction paths itself and passing everything else on."""

    def __init__(self, app: Any, server: Holder) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] not in PREDICTION_PATHS:
            await self.app(scope, receive, send)
            return
        server = self.server
        start, model = time.perf_counter(), server.model
        request_id = payloads.request_id(_header(scope, _REQUEST_ID))
        named = [(_REQUEST_ID, request_id.encode())]
        delay, fail, crash = server.faults.decide()
        status = 500
        try:
            if delay:
                await asyncio.sleep(delay)
            model = server.model  # a reload during the delay is picked up
            if fail:
                await _respond(send, 500, _INJECTED, named)
            else:
                status, body, scored = await self._answer(scope, receive, model, request_id)
                latency_ms = (time.perf_counter() - start) * 1000
                await _respond(send, status, body, named + ([(b"allow", b"POST")] if status == 405 else []))
                if scored is not None and server.recorder is not None and _header(scope, _PROBE) is None:
                    server.recorder.record(request_id, scope["path"], model, *scored, latency_ms)
        finally:
            server.metrics.observe(model.version, status, time.perf_counter() - start)
            if crash:
                print(f"injected crash after {server.faults.served} prediction requests", flush=True)
                asyncio.get_running_loop().call_later(0.05, os._exit, CRASH_EXIT_CODE)

    async def _answer(
        self, scope: Scope, receive: Receive, model: LoadedModel, request_id: str
    ) -> tuple[int, bytes, Scored | None]:
        proba = None
        try:
            if scope["method"] != "POST":
                raise PayloadError(f"{scope['path']} only accepts POST with a JSON body.", 405)
            payload = payloads.decode_json(await _body(scope, receive))
            if scope["path"] == paths.PREDICT:
                matrix = payloads.parse_predict(payload, model.features)
                labels, proba = model.predict(matrix, probabilities=True)
                answer = {
                    "predictions": labels,
                    "probabilities": proba,
                    "classes": model.classes,
                    "version": model.version,
                    "request_id": request_id,
                }
            else:
                matrix = payloads.parse_invocations(payload, model.features)
                labels, _ = model.predict(matrix)
                answer = {"predictions": labels}
        except PayloadError as exc:
            return exc.status, orjson.dumps({"error": str(exc)}), None
        self.server.metrics.count(model.version, labels)
        return 200, orjson.dumps(answer, option=orjson.OPT_SERIALIZE_NUMPY), (matrix, labels, proba)


def _header(scope: Scope, name: bytes) -> bytes | None:
    for key, value in scope["headers"]:
        if key == name:
            return bytes(value)
    return None


async def _body(scope: Scope, receive: Receive) -> bytes:
    """The request body, refusing bodies above the limit (declared or streamed) and non-JSON content types."""
    headers = dict(scope["headers"])
    payloads.check_content_type(headers.get(b"content-type"))
    declared = headers.get(b"content-length", b"")
    if declared.isdigit() and int(declared) > payloads.MAX_BODY_BYTES:
        raise PayloadError(payloads.too_large_message(int(declared)), 413)
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise PayloadError("The client disconnected before sending the whole body.", 400)
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > payloads.MAX_BODY_BYTES:
            raise PayloadError(payloads.too_large_message(size), 413)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _respond(send: Send, status: int, body: bytes, extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *(extra or [])]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
