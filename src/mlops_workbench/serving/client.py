"""The one client of the model server and of the router: their paths, timeouts, token and errors.

Everything in the workbench that talks to a model server or a router over HTTP goes through
:class:`ModelServerClient` or :class:`RouterClient`; the admin calls carry the state folder's bearer
token (:mod:`mlops_workbench.serving.auth`). Failures raise :class:`~mlops_workbench.errors.ServiceError`
(the server could not do it) or :class:`~mlops_workbench.errors.InputError` (it refused the input), each
with the server's own message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_workbench import procs, settings
from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.serving import auth
from mlops_workbench.serving.faults import Faults

RELOAD_TIMEOUT = 120.0  # loading a model from the registry can take a while on a busy machine
ADMIN_TIMEOUT = 10.0


class _Client:
    """Shared plumbing: base URL, the admin token of a state folder (read when first needed), error mapping."""

    what = "server"

    def __init__(self, url: str, *, home: Path | None = None, token: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._home, self._token = home, token

    def _headers(self) -> dict[str, str]:
        if self._token is None:
            self._token = auth.read_token(self._home or settings.home())
        return auth.headers(self._token)

    def _call(self, method: str, path: str, *, admin: bool = False, timeout: float = ADMIN_TIMEOUT,
              json: Any = None) -> Any:
        import httpx

        try:
            resp = procs.http().request(method, self.url + path, json=json, timeout=timeout,
                                        headers=self._headers() if admin else None)
        except httpx.HTTPError as exc:
            raise ServiceError(f"The {self.what} at {self.url} did not answer {method} {path} ({exc!r}): is it "
                               "running? `workbench ps` lists the services.") from None
        if resp.status_code == 401:
            raise ServiceError(f"The {self.what} at {self.url} refused the admin token: it belongs to another "
                               "state folder, or the server was started with another token. Restart the server "
                               "from this state folder.")
        if 400 <= resp.status_code < 500:
            raise InputError(f"The {self.what} at {self.url} refused {method} {path} ({resp.status_code}): "
                             f"{_error_text(resp)}")
        if resp.status_code >= 500:
            raise ServiceError(f"The {self.what} at {self.url} failed {method} {path} ({resp.status_code}): "
                               f"{_error_text(resp)}")
        return resp.json() if "json" in resp.headers.get("content-type", "") else resp.text

    def health(self, timeout: float = 3.0) -> dict[str, Any]:
        return self._call("GET", "/health", timeout=timeout)

    def metrics(self, timeout: float = 3.0) -> str:
        """The Prometheus exposition text of ``/metrics``."""
        return self._call("GET", "/metrics", timeout=timeout)


class ModelServerClient(_Client):
    """A ``workbench serve`` process: predictions, ``/version``, and its admin API (reload, faults)."""

    what = "model server"

    def version(self, timeout: float = 5.0) -> dict[str, Any]:
        """What the server serves now: name, version, alias, run id, model URI."""
        return self._call("GET", "/version", timeout=timeout)

    def predict(self, rows: list[list[float]], timeout: float = 10.0) -> dict[str, Any]:
        return self._call("POST", "/predict", json={"instances": rows}, timeout=timeout)

    def reload(self, timeout: float = RELOAD_TIMEOUT) -> dict[str, Any]:
        """Make the server resolve its model URI anew and load the version it points to now.

        Returns ``{"reloaded": bool, "version": ..., "previous_version": ...}``; a version the server
        cannot load (integrity refused, tracking server down) raises ServiceError and it keeps serving.
        """
        try:
            return self._call("POST", "/admin/reload", admin=True, timeout=timeout)
        except InputError as exc:  # 409: the server refused to swap in the new version
            raise ServiceError(f"{exc} The server keeps serving the model it had.") from None

    def faults(self) -> Faults:
        return Faults.model_validate(self._call("GET", "/admin/faults", admin=True))

    def set_faults(self, faults: Faults) -> Faults:
        """Apply ``faults`` (the server must have been started with fault injection allowed)."""
        return Faults.model_validate(self._call("POST", "/admin/faults", admin=True, json=faults.model_dump()))


class RouterClient(_Client):
    """A ``workbench router`` process: its weights (admin API) and its own metrics."""

    what = "router"

    def weights(self) -> dict[str, Any]:
        return self._call("GET", "/admin/weights", admin=True, timeout=3.0)

    def weight(self) -> float:
        """The canary's share of traffic now, in percent."""
        return float(self.weights()["canary"])

    def set_weight(self, canary: float) -> float:
        """Send ``canary`` percent of traffic to the canary; a bad value raises InputError with the reason."""
        return float(self._call("PUT", "/admin/weights", admin=True, json={"canary": canary}, timeout=3.0)["canary"])


def _error_text(resp: Any) -> str:
    try:
        body = resp.json()
    except ValueError:
        return resp.text[:300]
    if isinstance(body, dict) and "error" in body:
        return str(body["error"])
    if isinstance(body, dict) and "detail" in body:
        return str(body["detail"])
    return str(body)[:300]
