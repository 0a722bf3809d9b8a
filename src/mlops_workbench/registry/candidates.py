"""Candidate models for the registry: train with given parameters, evaluate, log to MLflow as one run.

:func:`log_candidate` trains in process (quick, no lineage); :func:`log_versioned_candidate` trains in a
git + DVC workspace (:func:`candidate_workspace`) so the run carries lab 02's lineage into the registry.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from mlops_workbench import data, tracking, train
from mlops_workbench.evaluate import evaluate
from mlops_workbench.train import TrainParams
from mlops_workbench.workbench import Workbench


def candidate_params(overrides: dict[str, Any] | None = None) -> TrainParams:
    """params.yaml ``train`` with ``overrides`` applied (e.g. ``{"C": 10.0}``)."""
    return TrainParams.from_dict({**TrainParams.load().model_dump(), **(overrides or {})})


def log_candidate(
    overrides: dict[str, Any] | None = None,
    experiment: str = "registry",
    run_name: str | None = None,
    artifact_path: str = "model",
) -> str:
    """Train on the train split, evaluate on the test split, log params, metrics and model (with the reference
    statistics of its training rows, calibrated on the test split); return the run id.

    Needs a tracking server (``tracking.up(wb)``); register the run with ``registry.register(wb, run_id)``.
    """
    import mlflow

    params = candidate_params(overrides)
    train_df, test_df = data.split(data.load_iris_frame(), test_size=params.test_size, seed=params.seed)
    model = train.train(train_df, params)
    scores = evaluate(model, test_df)
    mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name) as run:
        mlflow.log_params(params.model_dump())
        mlflow.log_metrics({"accuracy": scores["accuracy"], "f1_macro": scores["f1_macro"]})
        tracking.log_sklearn_model(
            model, train_df[data.FEATURES].head(5), name=artifact_path, training=train_df, holdout=test_df
        )
    run_id: str = run.info.run_id
    return run_id


def candidate_workspace(wb: Workbench, path: Path | str, frame: Any = None) -> Any:
    """A git + DVC workspace (as in lab 02) for candidates whose runs carry full lineage.

    ``frame`` (default: all of Iris) tracked by DVC and pushed, params.yaml and the prepare -> train -> evaluate
    pipeline committed; rebuilt from empty each call.
    """
    from mlops_workbench import versioning

    ws = versioning.init_workspace(wb, path, reset=True)
    data.save_csv(data.load_iris_frame() if frame is None else frame, ws.path / versioning.DATA)
    ws.dvc("add", versioning.DATA)
    ws.commit("Track the Iris data with DVC")
    ws.dvc("push", "--quiet")
    versioning.write_params(ws)
    versioning.add_pipeline(ws)
    ws.commit("Add the pipeline: prepare, train, evaluate")
    return ws


def log_versioned_candidate(
    wb: Workbench,
    ws: Any,
    overrides: dict[str, Any],
    experiment: str = "registry",
    run_name: str | None = None,
    commit: bool = True,
) -> str:
    """Set params.yaml ``train`` overrides, ``dvc repro`` and log the run with its lineage; returns the run id.

    ``commit=False`` is the teammate who never commits: the run is logged from a dirty tree (``git.dirty`` true).
    """
    from mlops_workbench import versioning

    ws.set_params(train={**ws.params().get("train", {}), **overrides})
    if commit:
        ws.commit(f"Candidate {run_name or ''}: train {overrides}")
    ws.dvc("repro", "--quiet")
    if commit:
        ws.commit(f"Train candidate {run_name or ''}: dvc.lock and metrics")
    return versioning.log_model_run(wb, ws, experiment=experiment, run_name=run_name)
