"""The embedded MLflow tracking server: a real ``mlflow server`` on loopback.

Backend store: sqlite at ``<home>/mlflow/mlflow.db``; artifacts proxied by the
server into ``<home>/mlflow/artifacts``. The deprecated file store is never used.
"""

from __future__ import annotations

import base64
import os
import sys
import webbrowser
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from mlops_workbench import procs, settings, tracking_store
from mlops_workbench.errors import InputError, TrackingServerDown
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:  # mlflow, pandas and scikit-learn are imported where used: importing this module stays cheap
    import pandas as pd
    from mlflow import MlflowClient
    from mlflow.models.model import ModelInfo
    from sklearn.base import BaseEstimator

SERVICE = "mlflow"
URI_ENV = "MLFLOW_TRACKING_URI"


def up(wb: Workbench, port: int | None = None, timeout: float = 180.0) -> str:
    """Start the tracking server (or reuse the running one), point this process's MLflow at it (:func:`use`)
    and return its URL. Without ``port`` it takes the default port (:meth:`Workbench.port`) or, if another
    program holds it, the next free one, and says so on stderr."""
    running = procs.get(wb, SERVICE)
    if running is None and port is not None:
        running = _start(wb, port, timeout)
    elif running is None:
        running = procs.on_default_port(wb, "mlflow", lambda free: _start(wb, free, timeout))
    return use(wb, running.url)


def _start(wb: Workbench, port: int, timeout: float) -> procs.Service:
    """Start ``mlflow server`` for ``wb`` on ``port`` (sqlite store, artifacts under the state folder).

    A new store starts as a copy of the empty store the first one left (:mod:`mlops_workbench.tracking_store`):
    MLflow otherwise builds its schema through some fifty migrations, seconds of each new state folder's first start.
    """
    db, artifacts = store_paths(wb)
    artifacts.mkdir(parents=True, exist_ok=True)
    seeded = tracking_store.seed(db)
    cmd = [
        sys.executable,
        "-m",
        "mlops_workbench.tracking_server",  # `mlflow server`, as one process
        "server",
        "--backend-store-uri",
        f"sqlite:///{db}",
        "--artifacts-destination",
        str(artifacts),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
    ]
    if proxy_path(port):  # behind jupyter-server-proxy (Binder) requests carry the hub's Host header
        cmd += ["--allowed-hosts", "*"]
    # no GenAI job runner: one process less to start on a small (or busy) machine
    env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false", **_webhook_env(wb)}
    service = procs.start(wb, SERVICE, cmd, port, health_path="/health", timeout=timeout, env=env)
    if seeded is False:
        tracking_store.keep_empty(db)
    return service


WEBHOOK_CACHE_TTL = 1
"""Seconds the tracking server keeps its list of webhooks per event (MLflow's default is 60): an event within this
time of an earlier one of its kind is matched against the list as it was then."""


def _webhook_env(wb: Workbench) -> dict[str, str]:
    """Settings for registry webhooks to the workbench's own receiver on loopback (monitoring.registry_hooks).
    MLflow refuses non-https and non-public URLs by default (its SSRF guard); this server listens on loopback only.
    Its secrets key is kept in the state folder (MLflow draws a new one per process, so a restarted server could
    not read stored secrets), and webhooks are cached 1 s instead of 60, so a new one sees the next change."""
    key = settings.secret(wb.layout.mlflow_webhook_key, lambda: base64.urlsafe_b64encode(os.urandom(32)).decode())
    return {
        "MLFLOW_WEBHOOK_ALLOWED_SCHEMES": "http,https",
        "MLFLOW_WEBHOOK_ALLOW_PRIVATE_IPS": "true",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY": key,
        "MLFLOW_WEBHOOK_CACHE_TTL": str(WEBHOOK_CACHE_TTL),
    }


def url(wb: Workbench) -> str:
    """URL of the tracking server running for the state folder of ``wb``; raises with the fix when none runs."""
    running = procs.get(wb, SERVICE)
    if running is None:
        raise _server_down(wb)
    return running.url


def _server_down(wb: Workbench) -> TrackingServerDown:
    """The error for a state folder with no tracking server running, naming the fix."""
    where = wb.home
    return TrackingServerDown(
        f"No MLflow tracking server is running for the state folder {where}: start it with `workbench mlflow up`"
        + f" (with WORKBENCH_HOME={where})."
    )


def uri(wb: Workbench) -> str:
    """The tracking server every part of the workbench talks to: the one running for ``wb``'s state folder.

    The one place that decides the URI. ``MLFLOW_TRACKING_URI`` is used only
    when no server of the state folder runs and it names an http(s) server
    (an external MLflow); a local path or sqlite URI there is never used, so
    MLflow can never create a store of its own (``mlflow.db``, ``mlruns/``).
    """
    if procs.get(wb, SERVICE) is None:
        external = os.environ.get(URI_ENV, "")
        if external.startswith(("http://", "https://")):
            return external.rstrip("/")
    return url(wb)


def client(wb: Workbench, check: bool = True) -> MlflowClient:
    """An ``MlflowClient`` for :func:`uri` (tracking and registry), checked reachable unless ``check`` is False."""
    import httpx
    from mlflow import MlflowClient

    target = uri(wb)
    if check:
        try:
            procs.http().get(target + "/health", timeout=3.0).raise_for_status()
        except httpx.HTTPError as exc:
            raise TrackingServerDown(
                f"The MLflow tracking server at {target} is not reachable ({type(exc).__name__}); nothing was "
                "changed. Start it with `workbench mlflow up` (or `tracking.up(lab.wb)` in a notebook) and retry."
            ) from None
    return MlflowClient(tracking_uri=target, registry_uri=target)


def use(wb: Workbench, target: str | None = None) -> str:
    """Point this process's MLflow fluent API (``mlflow.start_run``, ``load_model``) at :func:`uri` and return it.

    The only function that touches MLflow's global tracking and registry URIs
    (both, since the in-process settings outrank ``MLFLOW_TRACKING_URI`` and may
    still name a server stopped earlier); it also exports the variable for
    child processes. Call it before fluent MLflow calls, never from a getter.
    """
    import mlflow

    target = target or uri(wb)
    os.environ[URI_ENV] = target
    mlflow.set_tracking_uri(target)
    mlflow.set_registry_uri(target)
    return target


def down(wb: Workbench) -> bool:
    """Stop the tracking server; True if it was running."""
    return procs.stop(wb, SERVICE)


class TrackingStatus(BaseModel):
    """What ``workbench mlflow status`` reports about the tracking server of a state folder."""

    running: bool
    url: str | None = None
    pid: int | None = None
    port: int | None = None
    backend_store: str
    artifacts: str
    log: str
    experiments: int | None = None
    registered_models: int | None = None


def store_paths(wb: Workbench) -> tuple[Path, Path]:
    """The sqlite backend store and the artifact folder of the tracking server under ``wb.home``."""
    paths = wb.layout
    return paths.mlflow_db, paths.artifacts


def _count(base: str, endpoint: str, key: str) -> int:
    """Count the items a paginated MLflow REST search endpoint returns."""
    total, token = 0, None
    while True:
        query: dict[str, str | int] = {"max_results": 1000}
        if token:
            query["page_token"] = token
        reply = procs.http().get(f"{base}/api/2.0/mlflow/{endpoint}", params=query, timeout=10.0)
        reply.raise_for_status()
        body = reply.json()
        total += len(body.get(key, []))
        token = body.get("next_page_token")
        if not token:
            return total


def status(wb: Workbench) -> TrackingStatus:
    """Whether the tracking server of ``wb`` runs, where it keeps its state and how much it holds.

    Experiment and registered-model counts are read over the REST API (None
    when the server does not answer).
    """
    import httpx

    db, artifacts = store_paths(wb)
    service = procs.get(wb, SERVICE)
    report = TrackingStatus(
        running=service is not None,
        backend_store=f"sqlite:///{db}",
        artifacts=str(artifacts),
        log=str(wb.layout.log(SERVICE)),
    )
    if service is None:
        return report
    report.url, report.pid, report.port = service.url, service.pid, service.port
    try:
        report.experiments = _count(service.url, "experiments/search", "experiments")
        report.registered_models = _count(service.url, "registered-models/search", "registered_models")
    except httpx.HTTPError:
        pass
    return report


class UiLinks(BaseModel):
    """Where to open the MLflow UI: the local URL and, on JupyterHub/Binder, the proxied path."""

    url: str
    proxy_path: str | None = None
    opened: bool = False

    def __str__(self) -> str:
        """What a lab prints: the proxy path under JupyterHub/Binder, else both the URL and JupyterLab's proxy path."""
        if self.proxy_path:
            return self.proxy_path
        port = self.url.rsplit(":", 1)[-1].strip("/")
        return f"{self.url} (in JupyterLab: <jupyter url>/proxy/{port}/, or the MLflow launcher tile)"


def proxy_path(port: int) -> str | None:
    """The jupyter-server-proxy path of ``port`` when running under JupyterHub/Binder, else None."""
    prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX")
    if not prefix:
        return None
    return f"{prefix.rstrip('/')}/proxy/{port}/"


def _browser_available() -> bool:
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def ui(wb: Workbench, open_browser: bool = True) -> UiLinks:
    """Links to the MLflow UI of the running server; opens a browser only when a display is available."""
    service = procs.get(wb, SERVICE)
    if service is None:
        raise _server_down(wb)
    links = UiLinks(url=service.url, proxy_path=proxy_path(service.port))
    if open_browser and links.proxy_path is None and _browser_available():
        try:
            links.opened = webbrowser.open(service.url, new=2)
        except webbrowser.Error:
            links.opened = False
    return links


def model_requirements() -> list[str]:
    """The pip requirements every saved or logged model records: the installed versions of what loads it.

    Given explicitly, so MLflow never infers them: inference loads the model again in a new Python process
    (about 5 s of CPU for each model saved)."""
    from importlib.metadata import version

    return [f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "pandas", "numpy")]


def log_sklearn_model(
    model: BaseEstimator,
    example: pd.DataFrame,
    name: str = "model",
    *,
    training: pd.DataFrame | None = None,
    holdout: pd.DataFrame | None = None,
    data_hash: str | None = None,
) -> ModelInfo:
    """Log a fitted scikit-learn model to the active run, the one way every stage does it.

    Records the signature and an input example from ``example`` (a few feature
    rows), pins the requirements explicitly (no slow inference), and trusts the
    tree types MLflow's skops serialisation needs for forests. Given ``training``
    (the rows the model was fitted on, features and label), it also saves their
    reference statistics beside the model (``reference/<name>.json``, see
    :mod:`mlops_workbench.datastats`): what drift is measured against,
    tied to ``data_hash`` (the DVC md5 of the data, when there is one) and, with
    ``holdout`` rows, the model's confidence where it did not train. Registering a version is the
    registry's part (``registry.integrity.log_registered``, which also records
    the digest).
    """
    import warnings

    import mlflow
    from mlflow.models import infer_signature

    from mlops_workbench import datastats
    from mlops_workbench.data import FEATURES

    stats = None
    if training is not None:  # computed first: bad training rows fail before anything is logged
        features = [str(c) for c in getattr(example, "columns", FEATURES)]
        stats = datastats.compute(training, model, data_hash=data_hash, features=features, holdout=holdout)
    with warnings.catch_warnings():
        # MLflow's input-example code trips a pandas 3 deprecation that is noise for learners
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        info: ModelInfo = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            pip_requirements=model_requirements(),
            skops_trusted_types=["sklearn.tree._tree.Tree"],
        )
    if stats is not None:
        datastats.log(stats, name)
    return info


def logged_model_uri(wb: Workbench, run_id: str, name: str = "model") -> str:
    """The URI MLflow 3 gives the model that run ``run_id`` logged as ``name``: ``models:/<model id>``.

    MLflow 3 keeps a logged model apart from its run's artifacts, so ``runs:/<run id>/model`` only works
    through a fallback that warns; this is the URI to register, load or inspect instead.
    """
    c = client(wb)
    run = c.get_run(run_id)
    found = c.search_logged_models(
        experiment_ids=[run.info.experiment_id], filter_string=f"source_run_id = '{run_id}' AND name = '{name}'"
    )
    if not found:
        raise InputError(
            f"Run {run_id} logged no model named '{name}': log one in the run with "
            f"mlflow.sklearn.log_model(model, name='{name}') (or pass the name it used)."
        )
    model_uri: str = found[0].model_uri
    return model_uri
