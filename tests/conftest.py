"""Shared fixtures: an isolated state folder per test, and a project root for the CLI."""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("WORKBENCH_PROJECT", str(ROOT))
# Under pytest-xdist every worker gets its own default ports (gw0: MLflow on 5100, serve 8100, ...), set before
# mlops_workbench is imported, so a lab started by one worker never answers another's requests. Its state
# folders are its own already: every test's home is under the worker's own tmp_path.
_WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")
if _WORKER.startswith("gw") and _WORKER[2:].isdigit():
    os.environ["WORKBENCH_PORT_OFFSET"] = str(100 * (int(_WORKER[2:]) + 1))


@pytest.fixture(scope="session", autouse=True)
def warm_runner():
    """One warm runner per test process, as ``workbench pipeline`` has one: every workspace stage (``dvc repro``)
    and ``workbench`` service (model server, router, monitor) that a test, a lab or a drill starts forks from it
    instead of importing scikit-learn and MLflow again. ``test_warm_runner`` also starts them without it."""
    from mlops_workbench.procs import warm

    with warm.runner() as runner:
        os.environ[warm.RUNNER_ENV] = runner.address
        try:
            yield runner
        finally:
            os.environ.pop(warm.RUNNER_ENV, None)


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh WORKBENCH_HOME; every service started under it is stopped afterwards."""
    from mlops_workbench import procs
    from mlops_workbench.workbench import Workbench

    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    yield path
    procs.stop_all(Workbench.from_env(path))


@pytest.fixture
def wb(home) -> Workbench:
    """The test's workbench: its state folder is :func:`home` (also in WORKBENCH_HOME, for the processes a test
    starts), with the worker's port offset."""
    from mlops_workbench.workbench import Workbench

    return Workbench.from_env(home)


@pytest.fixture(scope="session")
def save_iris_model():
    """``save_iris_model(folder)``: see :func:`_save_iris_model`."""
    return _save_iris_model


def _save_iris_model(folder: Path):
    """An Iris model trained on the seeded split, saved in MLflow's format at ``folder/model``: (path, model)."""
    import mlflow

    from mlops_workbench import data, tracking, train

    train_df, _ = data.split(data.load_iris_frame(), test_size=0.2, seed=42)
    model = train.train(train_df, {"C": 1.0})
    path = folder / "model"
    mlflow.sklearn.save_model(model, path, pip_requirements=tracking.model_requirements())
    return path, model


LANE = (
    "test_pipeline.py",
    "test_drills_rollout.py",
    "test_retrain_e2e.py",
    "test_rollout_e2e.py",
    "test_browser.py",
    "test_browser_drift.py",
    "test_browser_mlflow.py",
    "test_browser_monitor.py",
    "test_browser_progress.py",
    "test_browser_strategies.py",
)
"""The files one xdist worker runs one after another: the demo's test (two or three labs at once, the heaviest
load of the suite) first, then every timing-sensitive file (marker ``serial``: canaries judged on latency and
errors, browsers). No canary of a test is judged beside another one or beside the demo's labs, and the other
workers run every other file meanwhile. ``make test-serial`` runs the ``serial`` files alone."""
FIRST = (
    LANE[0],
    "test_labs_learner_zero.py",
    "test_drills_registry.py",
    "test_labs_grading.py",
    "test_lab07_retrain.py",
    "test_lab03_grading.py",
    "test_versioning.py",
    "test_lab02_scenarios.py",
    "test_monitoring_e2e.py",
    "test_binder.py",
)
"""The longest files, longest first (their times are in docs/slow-tests.md): each worker takes the next file when
it is nearly done with its own, so the long ones start early and the many short files even out the end."""


def pytest_collection_modifyitems(items):
    strays = sorted({i.path.name for i in items if i.get_closest_marker("serial") and i.path.name not in LANE})
    if strays:
        raise pytest.UsageError(f"{strays} hold tests marked serial: add them to LANE in tests/conftest.py")
    rank = {name: i for i, name in enumerate(FIRST)}
    lane = {name: i for i, name in enumerate(LANE)}
    # stable: file order is kept otherwise; the lane's files come first and together, in LANE's order
    items.sort(key=lambda item: (lane.get(item.path.name, len(LANE)), rank.get(item.path.name, len(FIRST))))


def pytest_xdist_make_scheduler(config, log):
    """``--dist=loadfile`` (pyproject.toml), with the files of :data:`LANE` as one unit of work."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class LaneScheduling(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            path = nodeid.split("::", 1)[0]
            return "lane" if Path(path).name in LANE else path

    return LaneScheduling(config, log)
