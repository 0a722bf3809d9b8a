"""A learner's lab 07 workspace for the retrain tests: lab 02's git + DVC pipeline trained on a first, small "month"
of Iris (10 flowers a class) and released as production; later months arrive as data commits."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from mlops_workbench import data, registry, versioning
from mlops_workbench.registry.candidates import candidate_workspace
from mlops_workbench.versioning import Workspace
from mlops_workbench.workbench import Workbench

PER_CLASS = 10


def first_month() -> pd.DataFrame:
    iris = data.load_iris_frame()
    return pd.concat([iris[iris[data.LABEL] == c].head(PER_CLASS) for c in data.CLASSES]).reset_index(drop=True)


def fresh_window(seed: int, n: int = 60) -> pd.DataFrame:
    """A labelled window of live traffic: Iris flowers measured again (seeded noise of 10% of each spread)."""
    iris = data.load_iris_frame()
    rng = np.random.default_rng(seed)
    rows = iris.iloc[rng.integers(0, len(iris), n)].reset_index(drop=True)
    noise = rng.normal(0.0, 0.1, size=(n, len(data.FEATURES))) * iris[data.FEATURES].std().to_numpy()
    rows[data.FEATURES] = (rows[data.FEATURES] + noise).clip(0.1, 9.9).round(2)
    return rows


def mislabelled() -> pd.DataFrame:
    """A valid month whose labels are wrong: every versicolor recorded as virginica (a model trained on it loses)."""
    iris = data.load_iris_frame()
    iris.loc[iris[data.LABEL] == "versicolor", data.LABEL] = "virginica"
    return iris


def commit_data(ws: Workspace, frame: pd.DataFrame, message: str) -> str:
    """A data commit as the learner makes one: write the CSV (unchecked), `dvc add`, git commit, `dvc push`."""
    frame.to_csv(ws.path / versioning.DATA, index=False)
    ws.dvc("add", versioning.DATA)
    sha = ws.commit(message)
    ws.dvc("push", "--quiet")
    return sha


def build(path: Path, home: Path, model: str = "iris") -> tuple[Workspace, str]:
    """The workspace with its first month trained, logged, registered and released; (workspace, version)."""
    ws = candidate_workspace(Workbench.from_env(home), path, frame=first_month())
    ws.dvc("repro", "--quiet")
    ws.commit("Train on the first month")
    run_id = versioning.log_model_run(Workbench.from_env(home), ws, experiment="retrain")
    version = str(registry.register(Workbench.from_env(home), run_id, model).version)
    registry.release(Workbench.from_env(home), model, version, approver="lead", reason="first month in production")
    return ws, version


def production(model: str = "iris", home: Path | None = None) -> str | None:
    found = registry.get_alias(Workbench.from_env(home), model, "production")
    return str(found.version) if found is not None else None
