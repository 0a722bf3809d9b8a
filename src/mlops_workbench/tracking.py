"""The embedded MLflow tracking server: a real ``mlflow server`` on loopback.

Backend store: sqlite at ``<home>/mlflow/mlflow.db``; artifacts proxied by the
server into ``<home>/mlflow/artifacts``. The deprecated file store is never used.
"""

from __future__ import annotations

import os
import sys
import webbrowser
from pathlib import Path

import httpx
from pydantic import BaseModel

from mlops_workbench import procs, settings

SERVICE = "mlflow"
DEFAULT_PORT = 5000


def up(port: int | None = None, home: Path | None = None, timeout: float = 180.0) -> str:
    """Start the tracking server (or reuse the running one) and return its URL.

    Also points this process's MLflow client at it, both ``MLFLOW_TRACKING_URI``
    (inherited by child processes) and MLflow's in-process tracking and registry
    settings, which outrank the variable and may still name a server stopped earlier.
    """
    home = home or settings.home()
    running = procs.get(SERVICE, home)
    if running is None:
        if port is None:
            port = DEFAULT_PORT if not procs.port_in_use(DEFAULT_PORT) else procs.free_port()
        db, artifacts = store_paths(home)
        artifacts.mkdir(parents=True, exist_ok=True)
        cmd = [
            str(Path(sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri", f"sqlite:///{db}",
            "--artifacts-destination", str(artifacts),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",
        ]
        if proxy_path(port):  # behind jupyter-server-proxy (Binder) requests carry the hub's Host header
            cmd += ["--allowed-hosts", "*"]
        # no GenAI job runner: one process less to start on a small (or busy) machine
        env = {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        running = procs.start(SERVICE, cmd, port, health_path="/health", timeout=timeout, env=env, home=home)
    os.environ["MLFLOW_TRACKING_URI"] = running.url
    import mlflow

    mlflow.set_tracking_uri(running.url)
    mlflow.set_registry_uri(running.url)
    return running.url


def url(home: Path | None = None) -> str:
    """URL of the running tracking server; raises with the fix when none runs."""
    running = procs.get(SERVICE, home)
    if running is None:
        raise RuntimeError("The MLflow tracking server is not running: start it with `workbench mlflow up`.")
    return running.url


def down(home: Path | None = None) -> bool:
    """Stop the tracking server; True if it was running."""
    return procs.stop(SERVICE, home)


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


def store_paths(home: Path | None = None) -> tuple[Path, Path]:
    """The sqlite backend store and the artifact folder of the tracking server under ``home``."""
    store = (home or settings.home()) / "mlflow"
    return store / "mlflow.db", store / "artifacts"


def _count(base: str, endpoint: str, key: str) -> int:
    """Count the items a paginated MLflow REST search endpoint returns."""
    total, token = 0, None
    while True:
        query: dict[str, str | int] = {"max_results": 1000}
        if token:
            query["page_token"] = token
        reply = httpx.get(f"{base}/api/2.0/mlflow/{endpoint}", params=query, timeout=10.0)
        reply.raise_for_status()
        body = reply.json()
        total += len(body.get(key, []))
        token = body.get("next_page_token")
        if not token:
            return total


def status(home: Path | None = None) -> TrackingStatus:
    """Whether the tracking server of ``home`` runs, where it keeps its state and how much it holds.

    Experiment and registered-model counts are read over the REST API (None
    when the server does not answer).
    """
    home = home or settings.home()
    db, artifacts = store_paths(home)
    service = procs.get(SERVICE, home)
    report = TrackingStatus(
        running=service is not None,
        backend_store=f"sqlite:///{db}",
        artifacts=str(artifacts),
        log=str(home / "logs" / f"{SERVICE}.log"),
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


def ui(home: Path | None = None, open_browser: bool = True) -> UiLinks:
    """Links to the MLflow UI of the running server; opens a browser only when a display is available."""
    service = procs.get(SERVICE, home)
    if service is None:
        raise RuntimeError("The MLflow tracking server is not running: start it with `workbench mlflow up`.")
    links = UiLinks(url=service.url, proxy_path=proxy_path(service.port))
    if open_browser and links.proxy_path is None and _browser_available():
        try:
            links.opened = webbrowser.open(service.url, new=2)
        except webbrowser.Error:
            links.opened = False
    return links


def log_sklearn_model(model, example, name: str = "model", registered_model_name: str | None = None):
    """Log a fitted scikit-learn model to the active run, the one way every stage does it.

    Records the signature and an input example from ``example`` (a few feature
    rows), pins the requirements explicitly (no slow inference), and trusts the
    tree types MLflow's skops serialisation needs for forests. With
    ``registered_model_name`` the new version also gets its artifact's sha256
    digest (``registry.record_digest``), so servers and promotions can verify it.
    """
    import warnings
    from importlib.metadata import version

    import mlflow
    from mlflow.models import infer_signature

    with warnings.catch_warnings():
        # MLflow's input-example code trips a pandas 3 deprecation that is noise for learners
        warnings.filterwarnings("ignore", message="Operation with range is deprecated")
        info = mlflow.sklearn.log_model(
            model,
            name=name,
            signature=infer_signature(example, model.predict(example)),
            input_example=example,
            pip_requirements=[f"{p}=={version(p)}" for p in ("mlflow", "scikit-learn", "pandas", "numpy")],
            skops_trusted_types=["sklearn.tree._tree.Tree"],
            registered_model_name=registered_model_name,
        )
    if registered_model_name:
        from mlops_workbench.registry.integrity import record_digest

        record_digest(registered_model_name, info.registered_model_version)
    return info
