"""The weighted router: a small async reverse proxy in front of the stable and canary servers.

A raw ASGI app (run by uvicorn) with one shared aiohttp client pool (the lowest-overhead
async HTTP client available: the router must add little latency).
Each request goes to the canary with probability ``weight``/100 (seeded RNG),
otherwise to stable. If the canary cannot be reached, the request is served by
stable and ``workbench_router_upstream_failures_total{version="canary"}`` counts it.
Own endpoints: ``GET /health``, ``GET /metrics``, ``GET /openapi.json``, and the admin API
(bearer token of the state folder): ``GET|PUT /admin/weights`` (body ``{"canary": 20}``) and
``GET|PUT|DELETE /admin/shadow`` (body ``{"url": "http://127.0.0.1:PORT", "version": "7"}``: a model
server that gets a mirrored copy of every prediction request, its answers discarded and compared;
see :mod:`mlops_workbench.rollout.shadow`). Only the prediction paths are forwarded (``POST /predict``,
``POST /invocations``, ``GET /version``): nothing under ``/admin/`` ever reaches a model server
through the router.
"""

from __future__ import annotations

import json
import random
import time
from typing import TYPE_CHECKING, Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from mlops_workbench.fielderrors import shown
from mlops_workbench.rollout.shadow import Answer, Copy, Shadow
from mlops_workbench.serving import auth, openapi, paths, payloads
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from starlette.types import Receive, Scope, Send

BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.03,
    0.05,
    0.075,
    0.1,
    0.15,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
UPSTREAM_HEADER = paths.UPSTREAM_HEADER
# every path the router answers, with the methods it serves there (anything else: 404, or 405 with Allow)
_METHODS = {
    paths.HEALTH: ("GET",),
    paths.METRICS: ("GET",),
    paths.OPENAPI: ("GET",),
    paths.WEIGHTS: ("GET", "PUT"),
    paths.SHADOW: ("GET", "PUT", "DELETE"),
    **{path: (method.upper(),) for path, method in openapi.FORWARDED.items()},
}
_HOP = {b"host", b"content-length", b"connection", b"transfer-encoding", b"keep-alive"}
# the canary is unreachable or died mid-request: fail over (prediction requests are idempotent)
_CONNECT_ERRORS = (aiohttp.ClientConnectionError, ConnectionError)


class Router:
    """ASGI app splitting traffic between ``stable`` and ``canary`` upstream URLs."""

    def __init__(
        self,
        stable: str,
        canary: str | None = None,
        weight: float = 0.0,
        seed: int = 0,
        timeout: float = 10.0,
        admin_token: str = "",
    ) -> None:
        self.admin_token = admin_token
        self.upstreams: dict[str, str | None] = {
            "stable": stable.rstrip("/"),
            "canary": (canary or "").rstrip("/") or None,
        }
        self.weight = self._check_weight(weight)
        self.rng = random.Random(seed)
        self.timeout = timeout
        self.client: aiohttp.ClientSession | None = None
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "workbench_router_requests",
            "Requests answered, by upstream version and status",
            ["version", "status"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "workbench_router_request_duration_seconds",
            "Time to answer through the router",
            ["version"],
            buckets=BUCKETS,
            registry=self.registry,
        )
        self.failures = Counter(
            "workbench_router_upstream_failures",
            "Upstream connection failures (failed over)",
            ["version"],
            registry=self.registry,
        )
        self.shadow = Shadow(self.registry, BUCKETS, timeout)

    @staticmethod
    def _check_weight(weight: Any) -> float:
        try:
            if isinstance(weight, bool):
                raise TypeError("a boolean is not a weight")
            value = float(weight)
        except (TypeError, ValueError, OverflowError):
            raise ValueError(f"canary weight must be a number from 0 to 100, got {shown(weight)}") from None
        if not 0.0 <= value <= 100.0:
            raise ValueError(f"canary weight must be from 0 to 100, got {value:g}")
        return value

    def weights(self) -> dict[str, Any]:
        return {"canary": self.weight, "stable": 100.0 - self.weight, "upstreams": self.upstreams}

    def pick(self) -> str:
        if self.upstreams["canary"] and self.weight > 0 and self.rng.random() * 100.0 < self.weight:
            return "canary"
        return "stable"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return
        path, method = scope["path"], scope["method"]
        allowed = _METHODS.get(path)
        if allowed is None:
            where = (
                f"the router's admin API is {paths.WEIGHTS} and {paths.SHADOW} only"
                if path.startswith(paths.ADMIN_PREFIX)
                else f"the router answers {paths.HEALTH}, {paths.METRICS}, {paths.OPENAPI}, {paths.WEIGHTS}, "
                f"{paths.SHADOW}"
            )
            await _send(
                send,
                404,
                _error(
                    f"No endpoint {path[:80]}: {where}, and forwards "
                    f"{', '.join(openapi.FORWARDED)} to the model servers."
                ),
            )
            return
        if method not in allowed:
            await _send(
                send,
                405,
                _error(f"{method} is not served on {path}: use {' or '.join(allowed)}."),
                extra=[(b"allow", ", ".join(allowed).encode())],
            )
            return
        try:
            body = await _read_body(receive)
        except payloads.PayloadError as exc:
            await _send(send, exc.status, _error(str(exc)))
            return
        if path == paths.HEALTH:
            await _send(send, 200, json.dumps({"status": "ok", **self.weights()}).encode())
        elif path == paths.METRICS:
            await _send(send, 200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        elif path == paths.OPENAPI:
            await _send(send, 200, json.dumps(openapi.router_document(await self._upstream_document())).encode())
        elif path in (paths.WEIGHTS, paths.SHADOW):
            await self._admin(scope, path, method, body, send)
        else:
            await self._proxy(scope, body, send)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=200, keepalive_timeout=30)
                self.client = aiohttp.ClientSession(
                    connector=connector, auto_decompress=False, timeout=aiohttp.ClientTimeout(total=self.timeout)
                )
                await self.shadow.open()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shadow.close()
                if self.client:
                    await self.client.close()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _admin(self, scope: Scope, path: str, method: str, body: bytes, send: Send) -> None:
        headers = dict(scope["headers"])
        if not auth.authorized(headers.get(b"authorization"), self.admin_token):
            await _send(send, 401, _error(auth.UNAUTHORIZED), extra=[(b"www-authenticate", auth.SCHEME.encode())])
            return
        shadow = path == paths.SHADOW
        if method != "PUT":  # GET reads, DELETE (shadow only) clears
            answer = (self.shadow.clear() if method == "DELETE" else self.shadow.describe()) if shadow else None
            await _send(send, 200, json.dumps(answer or self.weights()).encode())
            return
        try:
            payloads.check_content_type(headers.get(b"content-type"))
        except payloads.PayloadError as exc:
            await _send(send, exc.status, _error(str(exc)))
            return
        try:
            data = payloads.parse_json(body or b"{}")
            if shadow:
                answer = self.shadow.set(data)
            elif not isinstance(data, dict) or "canary" not in data:
                raise ValueError('send a JSON body like {"canary": 20}')
            else:
                self.weight = self._check_weight(data["canary"])
        except ValueError as err:  # PayloadError is a ValueError too
            await _send(send, 400, _error(str(err)))
            return
        await _send(send, 200, json.dumps(answer if shadow else self.weights()).encode())

    async def _upstream_document(self) -> dict[str, Any] | None:
        """The stable server's OpenAPI document (None when it cannot be had)."""
        stable = self.upstreams["stable"]
        assert self.client is not None and stable is not None
        try:
            async with self.client.get(stable + paths.OPENAPI) as resp:
                return await resp.json() if resp.status == 200 else None
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return None

    async def _proxy(self, scope: Scope, body: bytes, send: Send) -> None:
        assert self.client is not None, "router used without lifespan startup"
        version = self.pick()
        start = time.perf_counter()
        headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"] if k not in _HOP]
        target = scope["path"] + (("?" + scope["query_string"].decode()) if scope.get("query_string") else "")
        answer = None
        try:
            answer = await self._forward(version, scope["method"], target, headers, body)
        except TimeoutError:
            self._record(version, 504, start)
            await _send(
                send,
                504,
                _error(f"the {version} upstream did not answer within {self.timeout:g}s"),
                extra=[(UPSTREAM_HEADER.encode(), version.encode())],
            )
            return
        except _CONNECT_ERRORS:
            self.failures.labels(version).inc()
            if version == "canary":  # fail over: the request is served by stable
                version = "stable"
                try:
                    answer = await self._forward(version, scope["method"], target, headers, body)
                except _CONNECT_ERRORS:
                    self.failures.labels(version).inc()
        if answer is None:
            self._record(version, 502, start)
            await _send(
                send,
                502,
                _error(f"no upstream reachable (tried {version})"),
                extra=[(UPSTREAM_HEADER.encode(), version.encode())],
            )
            return
        status, out, content = answer
        seconds = self._record(version, status, start)
        out.append((UPSTREAM_HEADER.encode(), version.encode()))
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": content})
        if scope["path"] in paths.PREDICTION_PATHS:  # after the answer left: the shadow never delays it
            self.shadow.mirror(Copy(scope["method"], target, headers, body), Answer(version, status, content, seconds))

    async def _forward(
        self, version: str, method: str, target: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        base = self.upstreams[version]
        if base is None:
            raise ConnectionRefusedError(f"no {version} upstream configured")
        assert self.client is not None
        for attempt in (1, 2):
            try:
                async with self.client.request(method, base + target, headers=headers, data=body) as resp:
                    content = await resp.read()
                    out = [(k, v) for k, v in resp.raw_headers if k.lower() not in _HOP]
                    return resp.status, out, content
            except aiohttp.ServerDisconnectedError:
                if attempt == 2:  # a pooled keep-alive connection the upstream had closed: one fresh try
                    raise
        raise AssertionError("unreachable")

    def _record(self, version: str, status: int, start: float) -> float:
        seconds = time.perf_counter() - start
        self.requests.labels(version, str(status)).inc()
        self.duration.labels(version).observe(seconds)
        return seconds


async def _read_body(receive: Receive) -> bytes:
    chunks, size = [], 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > payloads.MAX_BODY_BYTES:
            raise payloads.PayloadError(payloads.too_large_message(size), 413)
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


def _error(message: str) -> bytes:
    return json.dumps({"error": message}).encode()


async def _send(
    send: Send,
    status: int,
    body: bytes,
    content_type: str = "application/json",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    headers = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra or [])})
    await send({"type": "http.response.body", "body": body})


def serve(
    stable: str,
    canary: str | None,
    weight: float,
    port: int,
    seed: int = 0,
    host: str = "127.0.0.1",
    admin_token: str | None = None,
) -> None:
    """Run the router in this process until stopped (what ``workbench router`` does); its admin API takes
    ``admin_token``, by default the state folder's."""
    import uvicorn

    app = Router(stable, canary, weight, seed, admin_token=admin_token or auth.ensure_token(Workbench.from_env()))
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False, lifespan="on")
