"""The MLflow tile in JupyterLab's launcher (a jupyter-server-proxy server entry point).

``pyproject.toml`` registers :func:`mlflow_server` under ``jupyter_serverproxy_servers``;
jupyter-server-proxy then shows an "MLflow" tile and proxies ``<jupyter url>/mlflow/``
to the tracking server on port 5000, started (or reused) by ``python -m
mlops_workbench.jupyter.proxy`` under the state folder. ``/proxy/5000/`` works as well.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from mlops_workbench import procs, tracking


def mlflow_server() -> dict[str, Any]:
    """The jupyter-server-proxy spec of the MLflow UI."""
    return {
        "command": [sys.executable, "-m", "mlops_workbench.jupyter.proxy"],
        "port": tracking.DEFAULT_PORT,
        "timeout": 180,
        "absolute_url": False,
        "new_browser_tab": True,
        "launcher_entry": {"title": "MLflow", "enabled": True},
    }


def main() -> None:
    """Start (or reuse) the tracking server, then live as long as it does (jupyter-server-proxy watches us)."""
    tracking.up(port=tracking.DEFAULT_PORT)
    while procs.get(tracking.SERVICE) is not None:
        time.sleep(5)


if __name__ == "__main__":
    main()
