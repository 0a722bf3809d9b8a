"""The embedded MLflow tracking server: a real ``mlflow server`` on loopback.

Backend store: sqlite at ``<home>/mlflow/mlflow.db``; artifacts proxied by the
server into ``<home>/mlflow/artifacts``. The deprecated file store is never used.
"""

from __future__ import annotations

import os
from pathlib import Path

from mlops_workbench import procs, settings

SERVICE = "mlflow"
DEFAULT_PORT = 5000


def up(port: int | None = None, home: Path | None = None, timeout: float = 90.0) -> str:
    """Start the tracking server (or reuse the running one) and return its URL.

    Also points this process's MLflow client at it (``MLFLOW_TRACKING_URI``).
    """
    home = home or settings.home()
    running = procs.get(SERVICE, home)
    if running is None:
        if port is None:
            port = DEFAULT_PORT if not procs.port_in_use(DEFAULT_PORT) else procs.free_port()
        store = home / "mlflow"
        (store / "artifacts").mkdir(parents=True, exist_ok=True)
        cmd = [
            str(Path(os.sys.executable).with_name("mlflow")),
            "server",
            "--backend-store-uri", f"sqlite:///{store / 'mlflow.db'}",
            "--artifacts-destination", str(store / "artifacts"),
            "--host", "127.0.0.1",
            "--port", str(port),
            "--workers", "1",
        ]
        running = procs.start(SERVICE, cmd, port, health_path="/health", timeout=timeout, home=home)
    os.environ["MLFLOW_TRACKING_URI"] = running.url
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
