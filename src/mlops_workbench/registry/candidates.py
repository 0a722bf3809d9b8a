"""Candidate models for the registry: train with given parameters, evaluate, log to MLflow as one run."""

from __future__ import annotations

from typing import Any

from mlops_workbench import data, tracking, train
from mlops_workbench.evaluate import evaluate
from mlops_workbench.train import TrainParams


def candidate_params(overrides: dict[str, Any] | None = None) -> TrainParams:
    """params.yaml ``train`` with ``overrides`` applied (e.g. ``{"C": 10.0}``)."""
    return TrainParams.from_dict({**TrainParams.load().model_dump(), **(overrides or {})})


def log_candidate(
    overrides: dict[str, Any] | None = None,
    experiment: str = "registry",
    run_name: str | None = None,
    artifact_path: str = "model",
) -> str:
    """Train on the train split, evaluate on the test split, log params, metrics and model; return the run id.

    Needs a tracking server (``tracking.up()``); register the run with ``registry.register(run_id)``.
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
        tracking.log_sklearn_model(model, train_df[data.FEATURES].head(5), name=artifact_path)
    return run.info.run_id
