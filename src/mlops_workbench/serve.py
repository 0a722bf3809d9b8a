"""The model server: a FastAPI app under uvicorn serving one registered model.

Endpoints: ``POST /predict`` (``instances`` or ``records``, answers labels,
probabilities and version), ``POST /invocations`` (MLflow's scoring protocol,
answers ``{"predictions": [...]}`` like ``mlflow models serve``), ``GET /health``,
``GET /version``, ``GET /metrics`` (Prometheus), ``POST /admin/reload`` (follow
the alias to the version it points to now), ``GET|POST /admin/faults``.

The model is loaded once; reloads load the new version on a worker thread and
swap it in with one assignment, so requests in flight finish on the old model
and none is dropped. Bad input gets a 4xx with a message, never a 5xx.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import threading
import time
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    disable_created_metrics,
    generate_latest,
)

from mlops_workbench import payloads, procs, served_model, settings
from mlops_workbench.faults import CRASH_EXIT_CODE, FaultInjector, Faults
from mlops_workbench.payloads import PayloadError

log = logging.getLogger("mlops_workbench.serve")
PREDICTION_PATHS = ("/predict", "/invocations")
BUCKETS = (0.001, 0.0025, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
URI_ENV, NAME_ENV, WATCH_ENV = "WORKBENCH_MODEL_URI", "WORKBENCH_MODEL_NAME", "WORKBENCH_WATCH_INTERVAL"


class Metrics:
    """The server's Prometheus metrics, in a registry of its own (one per app)."""

    def __init__(self) -> None:
        disable_created_metrics()  # no *_created series: they double the scrape size and nobody queries them
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "workbench_model_requests", "Prediction requests by model version and HTTP status.",
            ["version", "status"], registry=self.registry,
        )
        self.duration = Histogram(
            "workbench_model_request_duration_seconds", "Prediction request latency in seconds.",
            ["version"], buckets=BUCKETS, registry=self.registry,
        )
        self.predictions = Counter(
            "workbench_model_predictions", "Predicted classes by model version.",
            ["version", "label"], registry=self.registry,
        )

    def observe(self, version: str, status: int, seconds: float) -> None:
        self.requests.labels(version, str(status)).inc()
        self.duration.labels(version).observe(seconds)

    def count(self, version: str, labels: list[Any]) -> None:
        for label in set(map(str, labels)):
            self.predictions.labels(version, label).inc(sum(1 for x in labels if str(x) == label))


class ModelServer:
    """State shared by the endpoints: the current model, the faults, the metrics."""

    def __init__(self, model_uri: str, name: str = "iris", faults: Faults | None = None) -> None:
        self.uri, self.name = model_uri, name
        self.model = served_model.load(served_model.resolve(model_uri, name))
        self.faults = FaultInjector(faults)
        self.metrics = Metrics()
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()

    def reload(self) -> dict[str, Any]:
        """Load the version the URI points to now if it changed; swap it in atomically."""
        with self._reload_lock:
            before = self.model
            ref = served_model.resolve(self.uri, self.name)
            if ref.version == before.version and ref.version != served_model.UNREGISTERED:
                return {"reloaded": False, "version": before.version, "previous_version": before.version}
            self.model = served_model.load(ref)  # one assignment: requests see the old or the new model
            log.warning("reloaded %s: version %s -> %s", self.uri, before.version, ref.version)
            return {"reloaded": True, "version": ref.version, "previous_version": before.version}

    def watch(self, interval: float) -> threading.Thread:
        """Reload in the background every ``interval`` seconds (errors are logged, the model keeps serving)."""

        def loop() -> None:
            while not self._stop.wait(interval):
                try:
                    self.reload()
                except Exception as exc:  # tracking server down: keep the current model
                    log.warning("watch: cannot reload %s: %s", self.uri, exc)

        thread = threading.Thread(target=loop, name="model-watch", daemon=True)
        thread.start()
        return thread

    def stop(self) -> None:
        self._stop.set()

    def describe(self) -> dict[str, Any]:
        ref = self.model.ref
        return {"name": ref.name, "version": ref.version, "alias": ref.alias, "run_id": ref.run_id, "model_uri": self.uri}


class PredictionMiddleware:
    """Pure ASGI middleware on prediction paths: inject faults, time requests, count statuses."""

    def __init__(self, app: Any, server: ModelServer) -> None:
        self.app, self.server = app, server

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in PREDICTION_PATHS:
            await self.app(scope, receive, send)
            return
        start, version, status = time.perf_counter(), self.server.model.version, 500
        delay, fail, crash = self.server.faults.decide()

        async def send_status(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            if delay:
                await asyncio.sleep(delay)
            if fail:
                body = b'{"error": "injected fault: this request failed on purpose (see GET /admin/faults)"}'
                await Response(body, 500, media_type="application/json")(scope, receive, send)
            else:
                await self.app(scope, receive, send_status)
                version = scope.get("workbench.version", version)
        finally:
            self.server.metrics.observe(version, status, time.perf_counter() - start)
            if crash:
                print(f"injected crash after {self.server.faults.served} prediction requests", flush=True)
                asyncio.get_running_loop().call_later(0.05, os._exit, CRASH_EXIT_CODE)


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json")


async def _read_json(request: Request) -> dict[str, Any]:
    ctype = request.headers.get("content-type", "application/json").split(";")[0].strip().lower()
    if ctype not in ("application/json", ""):
        raise PayloadError(f"Content type '{ctype}' is not supported: send JSON with Content-Type: application/json.", 415)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > payloads.MAX_BODY_BYTES:
        raise PayloadError(payloads.too_large_message(int(declared)), 413)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > payloads.MAX_BODY_BYTES:
            raise PayloadError(payloads.too_large_message(size), 413)
        chunks.append(chunk)
    return payloads.decode_json(b"".join(chunks))


def create_app(
    model_uri: str | None = None,
    name: str | None = None,
    faults: Faults | None = None,
    watch_interval: float | None = None,
) -> FastAPI:
    """The model server app; arguments default to ``WORKBENCH_MODEL_URI`` etc. (for ``uvicorn --factory``)."""
    model_uri = model_uri or os.environ.get(URI_ENV, "models:/iris@production")
    name = name or os.environ.get(NAME_ENV, "iris")
    if watch_interval is None and os.environ.get(WATCH_ENV):
        watch_interval = float(os.environ[WATCH_ENV])
    server = ModelServer(model_uri, name, faults)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if watch_interval:
            server.watch(watch_interval)
        yield
        server.stop()

    app = FastAPI(title="mlops-workbench model server", lifespan=lifespan)
    app.state.server = server
    app.add_middleware(PredictionMiddleware, server=server)

    @app.exception_handler(PayloadError)
    async def bad_request(_: Request, exc: PayloadError) -> Response:
        return _json({"error": str(exc)}, exc.status)

    @app.post("/predict")
    async def predict(request: Request) -> Response:
        payload = await _read_json(request)
        model = server.model
        labels, proba = model.predict(payloads.parse_predict(payload, model.features), probabilities=True)
        request.scope["workbench.version"] = model.version
        server.metrics.count(model.version, labels)
        return _json({"predictions": labels, "probabilities": proba, "classes": model.classes, "version": model.version})

    @app.post("/invocations")
    async def invocations(request: Request) -> Response:
        payload = await _read_json(request)
        model = server.model
        labels, _ = model.predict(payloads.parse_invocations(payload, model.features))
        request.scope["workbench.version"] = model.version
        server.metrics.count(model.version, labels)
        return _json({"predictions": labels})

    @app.get("/health")
    async def health() -> Response:
        return _json({"status": "ok", "version": server.model.version})

    @app.get("/version")
    async def version() -> Response:
        return _json(server.describe())

    @app.get("/metrics")
    async def metrics() -> Response:
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post("/admin/reload")
    async def reload() -> Response:
        try:
            return _json(await run_in_threadpool(server.reload))
        except served_model.ModelLoadError as exc:
            return _json({"error": str(exc), "version": server.model.version}, 409)

    @app.get("/admin/faults")
    async def get_faults() -> Response:
        return _json(server.faults.faults.model_dump())

    @app.post("/admin/faults")
    async def set_faults(faults: Faults) -> Response:
        return _json(server.faults.set(faults).model_dump())

    return app


def start_server(
    model_uri: str,
    port: int | None = None,
    name: str = "serve",
    home: Path | None = None,
    faults: Faults | None = None,
    watch_interval: float | None = None,
    model_name: str = "iris",
    timeout: float = 180.0,
) -> procs.Service:
    """Start ``workbench serve`` as the background service ``name`` and wait until /health answers.

    The server talks to the tracking server running under ``home`` (else to
    ``MLFLOW_TRACKING_URI``). Stop it with ``procs.stop(name, home)``.
    """
    home = home or settings.home()
    port = port or procs.free_port()
    args = ["--model-uri", model_uri, "--port", str(port), "--name", model_name]
    faults = faults or Faults()
    args += ["--fault-error-rate", str(faults.error_rate), "--fault-latency-ms", str(faults.latency_ms)]
    args += ["--fault-seed", str(faults.seed)]
    if faults.crash_after is not None:
        args += ["--fault-crash-after", str(faults.crash_after)]
    if watch_interval:
        args += ["--watch-interval", str(watch_interval)]
    env = {settings.HOME_ENV: str(home)}
    tracking = procs.get("mlflow", home)
    if tracking is not None:
        env["MLFLOW_TRACKING_URI"] = tracking.url
    cmd = [sys.executable, "-m", "mlops_workbench.cli.serve", *args]
    return procs.start(name, cmd, port, health_path="/health", timeout=timeout, env=env, home=home)
