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

import logging
import os
import threading
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mlops_workbench import procs, settings
from mlops_workbench.errors import WorkbenchError
from mlops_workbench.serving import model as served_model
from mlops_workbench.serving.faults import FaultInjector, Faults
from mlops_workbench.serving.hotpath import Metrics, PredictionEndpoints

log = logging.getLogger("mlops_workbench.serving.server")
URI_ENV, NAME_ENV, WATCH_ENV = "WORKBENCH_MODEL_URI", "WORKBENCH_MODEL_NAME", "WORKBENCH_WATCH_INTERVAL"


class ModelServer:
    """State shared by the endpoints: the current model, the faults, the metrics."""

    def __init__(self, model_uri: str, name: str | None = None, faults: Faults | None = None) -> None:
        name = name or settings.model_name()
        self.uri, self.name = model_uri, name
        self._refused: tuple[str, str] | None = None  # (version, error) last written to the audit log
        self.model = self._load(served_model.resolve(model_uri, name), "serve")
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
            self.model = self._load(ref, "reload")  # one assignment: requests see the old or the new model
            log.warning("reloaded %s: version %s -> %s", self.uri, before.version, ref.version)
            return {"reloaded": True, "version": ref.version, "previous_version": before.version}

    def _load(self, ref: served_model.ModelRef, action: str) -> served_model.LoadedModel:
        """Load ``ref``; an artifact that fails its integrity check is refused and the refusal audited (once)."""
        from mlops_workbench.registry import audit, integrity

        try:
            return served_model.load(ref)
        except integrity.IntegrityError as exc:
            if self._refused != (ref.version, str(exc)):  # the watch loop retries: one audit line per refusal
                self._refused = (ref.version, str(exc))
                serving = getattr(getattr(self, "model", None), "version", None)
                audit.append({"action": action, "model": ref.name, "version": ref.version, "uri": self.uri,
                              "outcome": "refused", "error": str(exc), "serving": serving,
                              "files": [vars(p) for p in exc.problems]})
            raise

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


def _json(content: Any, status: int = 200) -> Response:
    return Response(orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY), status, media_type="application/json")


def create_app(
    model_uri: str | None = None,
    name: str | None = None,
    faults: Faults | None = None,
    watch_interval: float | None = None,
) -> FastAPI:
    """The model server app; arguments default to ``WORKBENCH_MODEL_URI`` etc. (for ``uvicorn --factory``)."""
    name = name or os.environ.get(NAME_ENV) or settings.model_name()
    model_uri = model_uri or os.environ.get(URI_ENV) or f"models:/{name}@production"
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
    app.add_middleware(PredictionEndpoints, server=server)  # /predict, /invocations

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
        except WorkbenchError as exc:  # cannot resolve or load (tracking server down too): keep serving
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
    model_name: str | None = None,
    timeout: float = 180.0,
) -> procs.Service:
    """Start ``workbench serve`` as the background service ``name`` and wait until /health answers.

    The server talks to the tracking server of the state folder ``home`` (see
    :func:`mlops_workbench.tracking.uri`). Stop it with ``procs.stop(name, home)``.
    """
    model_name = model_name or settings.model_name()
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
    for key, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")):
        env[key] = os.environ.get(key, value)  # a reload fails fast when the tracking server is down
    cmd = procs.workbench_cmd("serve", *args)
    return procs.start(name, cmd, port, health_path="/health", timeout=timeout, env=env, home=home)
