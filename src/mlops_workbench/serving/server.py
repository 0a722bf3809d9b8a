"""The model server: a FastAPI app under uvicorn serving one registered model.

Endpoints: ``POST /predict`` (``instances`` or ``records``, answers labels,
probabilities and version), ``POST /invocations`` (MLflow's scoring protocol,
answers ``{"predictions": [...]}`` like ``mlflow models serve``), ``GET /health``,
``GET /version``, ``GET /metrics`` (Prometheus), and the admin API: ``POST`` reload (follow
the alias to the version it points to now) and ``GET|POST`` faults. The paths are
named in :mod:`mlops_workbench.serving.paths`.

The model is loaded once; reloads load the new version on a worker thread and
swap it in with one assignment, so requests in flight finish on the old model
and none is dropped. Bad input gets a 4xx with a message, never a 5xx. Every
answered request goes to the ``recorder`` the server is given (``workbench serve`` gives it the state folder's
prediction log, :mod:`mlops_workbench.monitoring.recorder`).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import orjson
from fastapi import Depends, FastAPI, Header, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.openapi.utils import get_openapi
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlops_workbench import fielderrors, paramspec, procs
from mlops_workbench.alias import Alias
from mlops_workbench.errors import WorkbenchError
from mlops_workbench.serving import auth, openapi, paths, payloads
from mlops_workbench.serving import model as served_model
from mlops_workbench.serving.faults import FaultInjector, Faults
from mlops_workbench.serving.hotpath import Metrics, PredictionEndpoints, PredictionSink
from mlops_workbench.workbench import Workbench

log = logging.getLogger("mlops_workbench.serving.server")
URI_ENV, NAME_ENV, WATCH_ENV = "WORKBENCH_MODEL_URI", "WORKBENCH_MODEL_NAME", "WORKBENCH_WATCH_INTERVAL"


class ModelServer:
    """State shared by the endpoints: the current model, the faults, the metrics, the prediction log's writer."""

    def __init__(
        self,
        wb: Workbench,
        model_uri: str,
        name: str | None = None,
        faults: Faults | None = None,
        recorder: PredictionSink | None = None,
    ) -> None:
        name = name or paramspec.model_name()
        self.wb = wb
        self.uri, self.name = model_uri, name
        self._refused: tuple[str, str] | None = None  # (version, error) last written to the audit log
        self.model = self._load(served_model.resolve(self.wb, model_uri, name), "serve")
        self.faults = FaultInjector(faults)
        self.metrics = Metrics()
        self.recorder = recorder
        self._reload_lock = threading.Lock()
        self._stop = threading.Event()

    def reload(self) -> dict[str, Any]:
        """Load the version the URI points to now if it changed; swap it in atomically."""
        with self._reload_lock:
            before = self.model
            ref = served_model.resolve(self.wb, self.uri, self.name)
            if ref.version == before.version and ref.version != served_model.UNREGISTERED:
                return {"reloaded": False, "version": before.version, "previous_version": before.version}
            self.model = self._load(ref, "reload")  # one assignment: requests see the old or the new model
            log.warning("reloaded %s: version %s -> %s", self.uri, before.version, ref.version)
            return {"reloaded": True, "version": ref.version, "previous_version": before.version}

    def _load(self, ref: served_model.ModelRef, action: str) -> served_model.LoadedModel:
        """Load ``ref``; an artifact that fails its integrity check is refused and the refusal audited (once)."""
        from mlops_workbench.registry import audit, integrity

        try:
            return served_model.load(self.wb, ref)
        except integrity.IntegrityError as exc:
            if self._refused != (ref.version, str(exc)):  # the watch loop retries: one audit line per refusal
                self._refused = (ref.version, str(exc))
                serving = getattr(getattr(self, "model", None), "version", None)
                audit.append(
                    self.wb,
                    audit.AuditEntry(
                        action=audit.AuditAction(action),
                        model=ref.name,
                        version=ref.version,
                        uri=self.uri,
                        outcome=audit.AuditOutcome.REFUSED,
                        error=str(exc),
                        serving=serving,
                        files=[vars(p) for p in exc.problems],
                    ),
                )
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
        return {
            "name": ref.name,
            "version": ref.version,
            "alias": ref.alias,
            "run_id": ref.run_id,
            "model_uri": self.uri,
        }


def _json(content: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = orjson.dumps(content, option=orjson.OPT_SERIALIZE_NUMPY)
    return Response(body, status, headers=headers, media_type="application/json")


def create_app(
    wb: Workbench,
    model_uri: str | None = None,
    name: str | None = None,
    faults: Faults | None = None,
    watch_interval: float | None = None,
    admin_token: str | None = None,
    allow_faults: bool = False,
    recorder: PredictionSink | None = None,
) -> FastAPI:
    """The model server app; arguments default to ``WORKBENCH_MODEL_URI`` etc. (for ``uvicorn --factory``).

    ``wb`` is the workbench whose registry, audit log and admin token the server uses. ``admin_token`` guards
    ``/admin/*`` (default: the state folder's, see :mod:`~mlops_workbench.serving.auth`);
    ``POST /admin/faults`` is refused unless ``allow_faults`` (or the server starts with faults already set).
    ``recorder`` receives every answered prediction request (``workbench serve``: the prediction log); it is
    closed when the app shuts down.
    """
    name = name or os.environ.get(NAME_ENV) or paramspec.model_name()
    model_uri = model_uri or os.environ.get(URI_ENV) or f"models:/{name}@{Alias.PRODUCTION}"
    if watch_interval is None and os.environ.get(WATCH_ENV):
        watch_interval = float(os.environ[WATCH_ENV])
    token = admin_token or auth.ensure_token(wb)
    allow_faults = allow_faults or bool(faults and faults.active)
    server = ModelServer(wb, model_uri, name, faults, recorder)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if watch_interval:
            server.watch(watch_interval)
        yield
        server.stop()
        if server.recorder is not None:
            server.recorder.close()  # what is still queued goes to the log before the process ends

    app = FastAPI(title="mlops-workbench model server", version="1", lifespan=lifespan)
    app.state.server = server
    app.add_middleware(PredictionEndpoints, server=server)  # /predict, /invocations
    admin = [Depends(_admin_guard(token))]
    admin_errors: dict[int | str, dict[str, Any]] = {401: openapi.error("The bearer token is missing or wrong.")}

    @app.get(paths.HEALTH, responses={200: _doc_json({"status": "ok", "version": "1"})})
    async def health() -> Response:
        return _json({"status": "ok", "version": server.model.version})

    @app.get(paths.VERSION, responses={200: _doc_json(server.describe())})
    async def version() -> Response:
        return _json(server.describe())

    @app.get(paths.METRICS, response_class=PlainTextResponse, responses={200: {"content": {"text/plain": {}}}})
    async def metrics() -> Response:
        return Response(generate_latest(server.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.post(
        paths.RELOAD,
        dependencies=admin,
        responses={
            **admin_errors,
            200: _doc_json({"reloaded": True, "version": "2", "previous_version": "1"}),
            409: openapi.error("The new version cannot be loaded; the server keeps serving the old one."),
        },
    )
    async def reload() -> Response:
        try:
            return _json(await run_in_threadpool(server.reload))
        except WorkbenchError as exc:  # cannot resolve or load (tracking server down too): keep serving
            return _json({"error": str(exc), "version": server.model.version}, 409)

    @app.get(paths.FAULTS, dependencies=admin, responses={**admin_errors, 200: _doc_json(Faults().model_dump())})
    async def get_faults() -> Response:
        return _json(server.faults.faults.model_dump())

    @app.post(
        paths.FAULTS,
        dependencies=admin,
        openapi_extra=_faults_body(),
        responses={
            **admin_errors,
            200: _doc_json(Faults().model_dump()),
            400: openapi.error("The body is not JSON."),
            403: openapi.error("Fault injection is off on this server."),
            413: openapi.error("The body is too large."),
            415: openapi.error("The content type is not application/json."),
            422: openapi.error("A fault value is out of range."),
        },
    )
    async def set_faults(request: Request) -> Response:
        if not allow_faults:
            return _json(
                {
                    "error": "Fault injection is off on this server: start it with --allow-faults (the labs "
                    "and drills do) to practise on faults."
                },
                403,
            )
        try:
            payloads.check_content_type(request.headers.get("content-type", "").encode("latin-1"))
            new = Faults.model_validate(payloads.parse_json(await _limited_body(request)))
        except payloads.PayloadError as exc:
            return _json({"error": str(exc)}, exc.status)
        except ValidationError as exc:
            problems = " ".join(line.strip() for line in fielderrors.describe(exc, Faults))
            return _json({"error": f'Bad faults: {problems} Example: {{"error_rate": 0.2, "seed": 1}}.'}, 422)
        return _json(server.faults.set(new).model_dump())

    add_protocol_handlers(app)
    app.openapi = _openapi(app, server)  # type: ignore[method-assign]
    return app


def _admin_guard(token: str) -> Any:
    async def guard(authorization: str | None = Header(None, include_in_schema=False)) -> None:
        if not auth.authorized(authorization, token):
            raise HTTPException(401, auth.UNAUTHORIZED, headers={"WWW-Authenticate": auth.SCHEME})

    return guard


async def _limited_body(request: Request) -> bytes:
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > payloads.MAX_BODY_BYTES:
            raise payloads.PayloadError(payloads.too_large_message(len(body)), 413)
    return body


def add_protocol_handlers(app: FastAPI) -> None:
    """Errors as JSON ``{"error": ...}``, and 405 answers that list every method the path serves (``Allow``)."""

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        headers = dict(exc.headers or {})
        message = str(exc.detail)
        if exc.status_code == 405:
            allowed = sorted(
                {
                    m
                    for r in app.routes
                    if getattr(r, "path", None) == request.url.path
                    for m in getattr(r, "methods", None) or ()
                }
            )
            headers["Allow"] = ", ".join(allowed)
            message = f"{request.method} is not served on {request.url.path}: use {' or '.join(allowed)}."
        elif exc.status_code == 404:
            message = f"No endpoint {request.url.path}: see /docs for the endpoints this server has."
        return _json({"error": message}, exc.status_code, headers)


def _doc_json(example: Any) -> dict[str, Any]:
    return {"content": {"application/json": {"example": example}}}


def _faults_body() -> dict[str, Any]:
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": Faults.model_json_schema()}}}}


def _openapi(app: FastAPI, server: ModelServer) -> Any:
    """FastAPI's document of the routed endpoints, plus the hot path's operations and the admin token scheme.

    Built on every request (a few milliseconds): a reload may bring a model with other input features."""

    def build() -> dict[str, Any]:
        document = get_openapi(title=app.title, version=app.version, routes=app.routes)
        document["paths"].update(openapi.prediction_paths(server.model.features))
        document.setdefault("components", {})["securitySchemes"] = openapi.BEARER
        for path, item in document["paths"].items():
            if path.startswith(paths.ADMIN_PREFIX):
                for operation in item.values():
                    operation["security"] = [{"AdminToken": []}]
        return document

    return build


def start_server(
    wb: Workbench,
    model_uri: str,
    port: int | None = None,
    name: str = "serve",
    faults: Faults | None = None,
    watch_interval: float | None = None,
    model_name: str | None = None,
    timeout: float = 180.0,
    allow_faults: bool = False,
) -> procs.Service:
    """Start ``workbench serve`` as the background service ``name`` and wait until /health answers.

    The server talks to the tracking server of the state folder of ``wb`` (see
    :func:`mlops_workbench.tracking.uri`) and guards its admin API with that folder's token. Faults can
    be injected at run time only with ``allow_faults`` (or ``faults`` set at start). Stop it with
    ``procs.stop(wb, name)``.
    """
    model_name = model_name or paramspec.model_name()
    port = port or procs.free_port()
    args = ["--model-uri", model_uri, "--port", str(port), "--name", model_name]
    faults = faults or Faults()
    args += ["--fault-error-rate", str(faults.error_rate), "--fault-latency-ms", str(faults.latency_ms)]
    args += ["--fault-seed", str(faults.seed)]
    if faults.crash_after is not None:
        args += ["--fault-crash-after", str(faults.crash_after)]
    if watch_interval:
        args += ["--watch-interval", str(watch_interval)]
    if allow_faults:
        args.append("--allow-faults")
    auth.ensure_token(wb)
    env = wb.env()
    for key, value in (("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2"), ("MLFLOW_HTTP_REQUEST_TIMEOUT", "15")):
        env[key] = os.environ.get(key, value)  # a reload fails fast when the tracking server is down
    cmd = procs.workbench_cmd("serve", *args)
    return procs.start(wb, name, cmd, port, health_path=paths.HEALTH, timeout=timeout, env=env)
