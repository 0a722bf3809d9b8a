"""Versioning code, data and model together (lab 02).

A lab workspace (:mod:`mlops_workbench.versioning.workspace`) keeps code and
``params.yaml`` in git, the Iris CSV in DVC, and a DVC 3 ``train`` stage that
runs the workspace's ``train.py``. That script only calls :func:`train_stage`:
preprocess (section ``prepare``), split, train (section ``train``), evaluate,
and write ``model/model.pkl`` and ``metrics.json``.

Runs are logged with their lineage (:mod:`mlops_workbench.versioning.lineage`) and can be
reproduced from it (:mod:`mlops_workbench.versioning.reproduction`). This module is the one
import a notebook needs::

    from mlops_workbench import versioning
    ws = versioning.init_workspace(lab.workspace)
    ...
    run_id = versioning.log_model_run(ws)
    report = versioning.reproduce(run_id)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.versioning.lineage import LINEAGE_TAGS, lineage_tags, log_model_run, run_lineage
from mlops_workbench.versioning.reproduction import MetricComparison, ReproductionError, ReproductionReport, reproduce
from mlops_workbench.versioning.workspace import (
    DATA,
    METRICS,
    MODEL_DIR,
    MODEL_FILE,
    TRAIN_SCRIPT,
    Workspace,
    WorkspaceError,
    init_workspace,
    open_workspace,
    remote_has,
)

__all__ = [
    "LINEAGE_TAGS", "DATA", "MetricComparison", "PrepareParams", "ReproductionError", "ReproductionReport",
    "TRAIN_STAGE", "Workspace", "WorkspaceError", "init_workspace", "lineage_tags", "log_model_run",
    "open_workspace", "preprocess", "remote_has", "reproduce", "run_lineage", "train_stage", "write_params",
    "write_train_script",
]

TRAIN_STAGE = [
    "stage", "add", "--force", "-n", "train",
    "-d", TRAIN_SCRIPT, "-d", DATA,
    "-p", "prepare,train",
    "-o", MODEL_DIR, "-M", METRICS,
    f"python {TRAIN_SCRIPT}",
]
"""``ws.dvc(*TRAIN_STAGE)`` declares the train stage: its code, data and params in, model and metrics out."""

SCRIPT = '''"""Train stage of this workspace, run by `dvc repro` (declared in dvc.yaml).

Preprocesses data/iris.csv with params.yaml `prepare`, trains with `train`,
writes model/model.pkl and metrics.json.
"""
from mlops_workbench.versioning import train_stage

if __name__ == "__main__":
    train_stage(".")
'''


class PrepareParams(BaseModel):
    """Preprocessing settings (``params.yaml`` section ``prepare``)."""

    model_config = ConfigDict(extra="forbid")
    decimals: int | None = Field(None, ge=0, description="round every measurement to this many decimals; None keeps them")
    drop_duplicates: bool = Field(False, description="drop repeated rows before splitting")


def preprocess(df: pd.DataFrame, params: PrepareParams | dict[str, Any] | None = None) -> pd.DataFrame:
    """Apply the ``prepare`` settings to a validated Iris frame (a copy)."""
    from mlops_workbench.data import FEATURES

    if not isinstance(params, PrepareParams):
        params = PrepareParams.model_validate(params or {})
    out = df.copy()
    if params.decimals is not None:
        out[FEATURES] = out[FEATURES].round(params.decimals)
    if params.drop_duplicates:
        out = out.drop_duplicates().reset_index(drop=True)
    return out


def write_params(ws: Workspace, train: dict[str, Any] | None = None, prepare: dict[str, Any] | None = None) -> dict:
    """Write the workspace's ``params.yaml``: the project's ``train`` section with ``train`` overrides, and ``prepare``."""
    from mlops_workbench import settings
    from mlops_workbench.train import TrainParams

    try:
        base = dict(settings.load_params("train") or {})
    except (FileNotFoundError, KeyError):
        base = {}
    train_values = TrainParams.from_dict({**base, **(train or {})}).model_dump()
    prepare_values = PrepareParams.model_validate(prepare or {}).model_dump()
    return ws.set_params(prepare=prepare_values, train=train_values)


def write_train_script(ws: Workspace) -> Path:
    """Write ``train.py`` (the stage command: a thin call to :func:`train_stage`) into the workspace."""
    path = ws.path / TRAIN_SCRIPT
    path.write_text(SCRIPT)
    return path


def train_stage(workspace: Path | str = ".") -> dict[str, float]:
    """The body of the ``train`` stage: preprocess, split, train, evaluate; writes the model and metrics.

    Metrics: accuracy and f1_macro on the held-out split, plus log_loss (sensitive
    to any change in data or model, so reproductions are compared exactly).
    """
    import joblib
    from sklearn.metrics import log_loss

    from mlops_workbench.data import FEATURES, LABEL, load_csv, split
    from mlops_workbench.evaluate import evaluate
    from mlops_workbench.train import TrainParams, train

    root = Path(workspace)
    params = Workspace(root).params()
    prepare = PrepareParams.model_validate(params.get("prepare") or {})
    train_params = TrainParams.from_dict(params.get("train"))
    df = preprocess(load_csv(root / DATA), prepare)
    train_df, test_df = split(df, train_params.test_size, train_params.seed)
    model = train(train_df, train_params)
    scores = evaluate(model, test_df)
    proba = model.predict_proba(test_df[FEATURES])
    metrics = {
        "accuracy": float(scores["accuracy"]),
        "f1_macro": float(scores["f1_macro"]),
        "log_loss": float(log_loss(test_df[LABEL].astype(str), proba, labels=list(model.classes_))),
    }
    (root / MODEL_DIR).mkdir(exist_ok=True)
    joblib.dump(model, root / MODEL_FILE)
    (root / METRICS).write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics
