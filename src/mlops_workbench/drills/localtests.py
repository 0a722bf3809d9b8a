"""The tests that live in a drill's folder, run by the learner by hand and by the drill's checks alike.

Each such folder gets a ``pytest.ini`` (:func:`write_config`) that loads this module as a pytest plugin. The
plugin finds the state folder the drill folder sits in and points MLflow at that state folder's tracking server,
so ``models:/...`` URIs resolve with no ``MLFLOW_TRACKING_URI`` in the environment (and MLflow never falls back to
a store of its own, an ``mlflow.db`` in the folder). With the cache plugin off and no bytecode written, a test run
leaves the folder as it found it. :func:`run` is how the checks run those tests: through the same ``pytest.ini``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    import pytest

from mlops_workbench import tools

PLUGIN = "mlops_workbench.drills.localtests"
DRILLS_FOLDER = "drills"
"""The name of ``<home>/drills``: a drill folder is ``<home>/drills/<folder>`` or a repository inside it."""

PYTEST_INI = f"""[pytest]
# This folder's own pytest settings. Without them `python -m pytest` run here would take the options of a project
# around it (the workbench checkout's pyproject.toml when the state folder sits inside it). The plugin points MLflow
# at the state folder's tracking server; no cache or bytecode is written here.
testpaths = tests
addopts = -p no:cacheprovider -p {PLUGIN}
"""


def write_config(folder: Path) -> Path:
    """Write ``pytest.ini`` into a drill folder whose tests the learner runs; returns its path."""
    path = folder / "pytest.ini"
    path.write_text(PYTEST_INI)
    return path


def state_folder(path: Path) -> Path | None:
    """The state folder a drill folder (or a repository inside one) belongs to, from its place on disk."""
    for folder in (path, *path.parents):
        if folder.parent.name == DRILLS_FOLDER:
            return folder.parent.parent
    return None


def pytest_configure(config: pytest.Config) -> None:
    """Write no bytecode next to the tests, and point MLflow at the state folder's tracking server."""
    from mlops_workbench import procs, tracking

    sys.dont_write_bytecode = True
    home = state_folder(Path(config.rootpath).resolve())
    service = procs.get(Workbench.from_env(home), tracking.SERVICE) if home is not None else None
    if service is not None:  # no fluent MLflow call happened yet: the variable is read on the first one
        os.environ[tracking.URI_ENV] = service.url


def pytest_report_header(config: pytest.Config) -> str:
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    return f"MLflow tracking server: {uri or 'none running for this state folder (`workbench mlflow up`)'}"


def run(folder: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> tools.Ran:
    """``python -m pytest ARGS`` in ``folder`` as the learner types it: the folder's ``pytest.ini`` applies and
    ``MLFLOW_TRACKING_URI`` is dropped from the environment (the plugin finds the server by itself)."""
    base = {k: v for k, v in os.environ.items() if k != "MLFLOW_TRACKING_URI"}
    cmd = [sys.executable, "-m", "pytest", "-q", "--color=no", *args]
    return tools.call(
        cmd, cwd=folder, timeout=timeout, env={**base, **(env or {}), "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1"}
    )
