"""The one client of the model server, the router and the monitor service: their paths, timeouts, token and errors.

Everything in the workbench that talks to a model server, a router or the monitor over HTTP goes through
:class:`ModelServerClient`, :class:`RouterClient` or :class:`MonitorClient`; the admin calls carry the state
folder's bearer token (:mod:`mlops_workbench.serving.auth`). Failures raise :class:`~mlops_workbench.errors.ServiceError`
(the server could not do it; :class:`Unreachable` when no answer came at all) or
:class:`~mlops_workbench.errors.InputError` (it refused the input), each with the server's own message.

Prediction *traffic* is different: a 500 or a refused connection is an outcome to count, not an error.
:meth:`_Client.send` (blocking, over the workbench's shared connection pool) and :meth:`_Client.async_traffic`
(asyncio, one pool kept open for the load generator) answer each request with a :class:`Reply` instead.
"""

from __future__ import annotations

import json as jsonlib
import sys
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Self, TypedDict

from mlops_workbench import procs
from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.serving import auth, paths
from mlops_workbench.serving.admin import ShadowUpstream, Weights
from mlops_workbench.serving.faults import Faults
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:  # the HTTP libraries are imported with the first request: importing this module stays cheap
    import aiohttp
    import httpx

RELOAD_TIMEOUT = 120.0  # loading a model from the registry can take a while on a busy machine
ADMIN_TIMEOUT = 10.0
TRAFFIC_TIMEOUT = 30.0  # a prediction on a loaded machine; the load generator sets its own


class ServedModel(TypedDict):
    """``GET /version`` of a model server: what it serves now."""

    name: str
    version: str
    alias: str | None
    run_id: str | None
    model_uri: str


class Reloaded(TypedDict):
    """The answer to a reload: whether the version changed, and from which to which."""

    reloaded: bool
    version: str
    previous_version: str


class Unreachable(ServiceError):
    """No answer came from the server: the connection was refused or broke, or the time ran out."""

    def __init__(self, message: str, cause: BaseException) -> None:
        super().__init__(message)
        self.problem = type(cause).__name__
        """The transport error's class name (``ConnectError``, ``ReadTimeout``...)."""
        self.detail = str(cause)
        self.kind = no_answer(cause) or "broken"
        """``refused`` (nothing listens), ``timeout`` (no answer in time) or ``broken`` (dropped mid-way)."""


def no_answer(err: BaseException) -> str | None:
    """Why no answer came, when ``err`` says so: ``refused``, ``timeout`` or ``broken``; None for any other error.

    Understands the transport errors of both HTTP libraries (httpx for single requests, aiohttp for load) as
    well as :class:`Unreachable`, so callers can explain a failure in words without importing either."""
    import httpx

    if isinstance(err, Unreachable):
        return err.kind
    if isinstance(err, (httpx.ConnectError, ConnectionRefusedError)):
        return "refused"
    if isinstance(err, (httpx.TimeoutException, TimeoutError)):
        return "timeout"
    if isinstance(err, httpx.TransportError):
        return "broken"
    aiohttp = sys.modules.get("aiohttp")  # loaded by the load sender, the only one that raises its errors
    if aiohttp is not None and isinstance(err, aiohttp.ClientError):
        return "refused" if isinstance(err, aiohttp.ClientConnectorError) else "broken"
    return None


@dataclass(frozen=True)
class Reply:
    """One prediction request as the sender saw it; never raised, whatever the status."""

    status: int
    """The HTTP status, 0 when no answer came."""
    text: str = ""
    upstream: str | None = None
    """Which upstream answered (``stable`` or ``canary``), when the request went through the router."""
    problem: str = ""
    """Why no answer came (the transport error's class name) when ``status`` is 0."""
    kind: str = ""
    """Why no answer came in words, the same for both senders: ``refused``, ``timeout`` or ``broken`` (see
    :func:`no_answer`); empty when an answer came."""
    request_id: str | None = None
    """The id the model server logged the request's predictions under (``x-request-id``), when it answered."""

    def json(self) -> Any:
        return jsonlib.loads(self.text)

    def prediction(self) -> str | None:
        """The first predicted class of a 200 answer; None for any other answer."""
        if self.status != 200:
            return None
        try:
            return str(self.json()["predictions"][0])
        except (ValueError, KeyError, IndexError, TypeError):
            return None


def _reply(resp: httpx.Response) -> Reply:
    headers = resp.headers
    return Reply(
        resp.status_code,
        resp.text,
        headers.get(paths.UPSTREAM_HEADER),
        request_id=headers.get(paths.REQUEST_ID_HEADER),
    )


def _no_reply(exc: BaseException) -> Reply:
    return Reply(0, problem=type(exc).__name__, kind=no_answer(exc) or "broken")


def _named(request_id: str | None) -> dict[str, str] | None:
    return {paths.REQUEST_ID_HEADER: request_id} if request_id else None


def _instances(rows: list[list[float]]) -> dict[str, Any]:
    return {"instances": rows}


class AsyncTraffic:
    """Prediction requests for asyncio, many in flight at once over at most ``max_connections`` kept-alive
    connections; open it with ``async with``.

    It sends with aiohttp, as the router does: the load generator sends thousands of requests per rollout, and
    aiohttp's client costs about a third of the CPU per request that httpx's asyncio client does."""

    def __init__(self, target: str, timeout: float, max_connections: int) -> None:
        self.target = target
        self._timeout = timeout
        self._max_connections = max_connections
        self._http: aiohttp.ClientSession | None = None

    async def send(self, rows: list[list[float]], request_id: str | None = None) -> Reply:
        """Ask for predictions of ``rows`` (one request, named ``request_id`` when given); a refused or timed-out
        request answers status 0."""
        import aiohttp

        if self._http is None:
            raise InputError("This sender is not open: send inside `async with client.async_traffic() as traffic:`.")
        headers = {"content-type": "application/json", **(_named(request_id) or {})}
        try:
            async with self._http.post(self.target, data=jsonlib.dumps(_instances(rows)), headers=headers) as resp:
                text = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            return _no_reply(exc)
        return Reply(
            resp.status,
            text,
            resp.headers.get(paths.UPSTREAM_HEADER),
            request_id=resp.headers.get(paths.REQUEST_ID_HEADER),
        )

    async def __aenter__(self) -> AsyncTraffic:
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self._max_connections, keepalive_timeout=30)
        self._http = aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=self._timeout))
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None


class _Client:
    """Shared plumbing: base URL, the admin token of a state folder (read when first needed), error mapping."""

    what = "server"

    def __init__(self, url: str, *, token: str | Callable[[], str] | None = None) -> None:
        """A client of the server at ``url``. Predictions, health and metrics need no token; the admin calls
        need ``token`` (or a function that reads it when first needed): :meth:`of` passes the state folder's."""
        self.url = url.rstrip("/")
        self._token = token

    @classmethod
    def of(cls, wb: Workbench, url: str) -> Self:
        """A client whose admin calls carry the admin token of ``wb``'s state folder (read when first needed)."""
        return cls(url, token=partial(auth.read_token, wb))

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            raise InputError(
                f"The admin API of the {self.what} at {self.url} needs the state folder's admin token: make the "
                f"client with {type(self).__name__}.of(wb, url) (in a notebook: "
                f"{type(self).__name__}.of(lab.wb, url))."
            )
        if callable(self._token):
            self._token = self._token()
        return auth.headers(self._token)

    def _call(
        self,
        method: str,
        path: str,
        *,
        admin: bool = False,
        timeout: float = ADMIN_TIMEOUT,
        json: Any = None,
        text: bool = False,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The answer's JSON (its text when it is not JSON, or when ``text`` asks for the text whatever the
        content type), or the error a failed call means."""
        import httpx

        try:
            resp = procs.http().request(
                method,
                self.url + path,
                json=json,
                timeout=timeout,
                headers={**(self._headers() if admin else {}), **(headers or {})} or None,
            )
        except httpx.HTTPError as exc:
            raise Unreachable(
                f"The {self.what} at {self.url} did not answer {method} {path} ({exc!r}): is it "
                "running? `workbench ps` lists the services.",
                exc,
            ) from None
        if resp.status_code == 401:
            raise ServiceError(
                f"The {self.what} at {self.url} refused the admin token: it belongs to another "
                "state folder, or the server was started with another token. Restart the server "
                "from this state folder."
            )
        if 400 <= resp.status_code < 500:
            raise InputError(
                f"The {self.what} at {self.url} refused {method} {path} ({resp.status_code}): {_error_text(resp)}"
            )
        if resp.status_code >= 500:
            raise ServiceError(
                f"The {self.what} at {self.url} failed {method} {path} ({resp.status_code}): {_error_text(resp)}"
            )
        return resp.json() if not text and "json" in resp.headers.get("content-type", "") else resp.text

    def health(self, timeout: float = 3.0) -> dict[str, Any]:
        answer: dict[str, Any] = self._call("GET", paths.HEALTH, timeout=timeout)
        return answer

    def metrics(self, timeout: float = 3.0) -> str:
        """The Prometheus exposition text of ``/metrics``."""
        text: str = self._call("GET", paths.METRICS, timeout=timeout, text=True)
        return text

    def send(
        self,
        rows: list[list[float]],
        *,
        path: str = paths.PREDICT,
        timeout: float = TRAFFIC_TIMEOUT,
        request_id: str | None = None,
    ) -> Reply:
        """One prediction request for ``rows`` to ``path`` (``/predict`` or ``/invocations``), answered as a
        :class:`Reply` whatever happens (status 0 when no answer came). ``request_id`` names the request (the
        model server logs its predictions under it; without one the server makes one: ``Reply.request_id``).
        Connections are kept alive and shared, so sending many requests in a loop is cheap."""
        import httpx

        try:
            answer = procs.http().post(
                self.url + path, json=_instances(rows), timeout=timeout, headers=_named(request_id)
            )
            return _reply(answer)
        except httpx.HTTPError as exc:
            return _no_reply(exc)

    def async_traffic(
        self, path: str = paths.PREDICT, timeout: float = 10.0, max_connections: int = 100
    ) -> AsyncTraffic:
        """The asyncio sender (``async with``) for load generation: up to ``max_connections`` at once."""
        return AsyncTraffic(self.url + path, timeout, max_connections)


class ModelServerClient(_Client):
    """A ``workbench serve`` process: predictions, ``/version``, and its admin API (reload, faults)."""

    what = "model server"

    def version(self, timeout: float = 5.0) -> ServedModel:
        """What the server serves now: name, version, alias, run id, model URI."""
        served: ServedModel = self._call("GET", paths.VERSION, timeout=timeout)
        return served

    def predict(self, rows: list[list[float]], timeout: float = 10.0, probe: bool = False) -> dict[str, Any]:
        """The server's answer to ``rows``; ``probe`` marks the workbench measuring the server itself, whose rows
        stay out of the prediction log (:data:`~mlops_workbench.serving.paths.PROBE_HEADER`)."""
        extra = {paths.PROBE_HEADER: "1"} if probe else None
        answer: dict[str, Any] = self._call(
            "POST", paths.PREDICT, json=_instances(rows), timeout=timeout, headers=extra
        )
        return answer

    def reload(self, timeout: float = RELOAD_TIMEOUT) -> Reloaded:
        """Make the server resolve its model URI anew and load the version it points to now.

        Returns ``{"reloaded": bool, "version": ..., "previous_version": ...}``; a version the server
        cannot load (integrity refused, tracking server down) raises ServiceError and it keeps serving.
        """
        try:
            reloaded: Reloaded = self._call("POST", paths.RELOAD, admin=True, timeout=timeout)
            return reloaded
        except InputError as exc:  # 409: the server refused to swap in the new version
            raise ServiceError(f"{exc} The server keeps serving the model it had.") from None

    def faults(self) -> Faults:
        return Faults.model_validate(self._call("GET", paths.FAULTS, admin=True))

    def set_faults(self, faults: Faults) -> Faults:
        """Apply ``faults`` (the server must have been started with fault injection allowed)."""
        return Faults.model_validate(self._call("POST", paths.FAULTS, admin=True, json=faults.model_dump()))


class RouterClient(_Client):
    """A ``workbench router`` process: its weights and shadow upstream (admin API), its own metrics, and
    prediction traffic, which it forwards to stable or canary (and mirrors to the shadow)."""

    what = "router"

    def weights(self) -> Weights:
        weights: Weights = self._call("GET", paths.WEIGHTS, admin=True, timeout=3.0)
        return weights

    def weight(self) -> float:
        """The canary's share of traffic now, in percent."""
        return float(self.weights()["canary"])

    def set_weight(self, canary: float) -> float:
        """Send ``canary`` percent of traffic to the canary; a bad value raises InputError with the reason."""
        return float(self._call("PUT", paths.WEIGHTS, admin=True, json={"canary": canary}, timeout=3.0)["canary"])

    def shadow(self) -> ShadowUpstream | None:
        """The shadow upstream now (None when requests are not mirrored)."""
        shadow: ShadowUpstream | None = self._call("GET", paths.SHADOW, admin=True, timeout=3.0)["shadow"]
        return shadow

    def set_shadow(self, url: str, version: str) -> ShadowUpstream:
        """Mirror a copy of each prediction request to the model server at ``url`` (``http://127.0.0.1:PORT``)
        serving ``version``; its answers are compared and discarded. A bad value raises InputError naming it."""
        body = {"url": url, "version": str(version)}
        shadow: ShadowUpstream = self._call("PUT", paths.SHADOW, admin=True, json=body, timeout=3.0)["shadow"]
        return shadow

    def clear_shadow(self) -> None:
        """Stop mirroring requests (a no-op when no shadow is set)."""
        self._call("DELETE", paths.SHADOW, admin=True, timeout=3.0)


class MonitorClient(_Client):
    """The monitor service of lab 07 (``workbench monitor up``): its drift gauges (``metrics``) and ``status``."""

    what = "monitor service"

    def status(self, timeout: float = 3.0) -> dict[str, Any]:
        """How alerts are routed; with the fallback also the rules ``firing`` and ``pending`` and their ``errors``."""
        answer: dict[str, Any] = self._call("GET", paths.MONITOR_STATUS, timeout=timeout)
        return answer


def _error_text(resp: httpx.Response) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]
