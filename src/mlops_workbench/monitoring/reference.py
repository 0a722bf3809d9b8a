"""Reference statistics saved with a registered model version, loaded back by name and version.

What drift is measured against (:class:`ReferenceStats`: per feature bins, shares, values; predicted and true
classes; the model on a held-out split) is computed and saved when the model is logged, by
:mod:`mlops_workbench.datastats` (re-exported here). :func:`load` finds the record of ``(registered model,
version)``: the run that logged the version, the artifact ``reference/<logged model name>.json`` in it, and checks
it against the data hash the run was tagged with.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlops_workbench.datastats import (
    ARTIFACT_DIR,
    BINS,
    HASH_TAG,
    FeatureReference,
    Holdout,
    ReferenceStats,
    bin_edges,
    compute,
    frame_hash,
    log,
    proportions,
)
from mlops_workbench.errors import InputError, NotFoundError
from mlops_workbench.workbench import Workbench

__all__ = [
    "ARTIFACT_DIR",
    "BINS",
    "HASH_TAG",
    "FeatureReference",
    "Holdout",
    "ReferenceStats",
    "bin_edges",
    "compute",
    "frame_hash",
    "load",
    "log",
    "proportions",
]


def load(wb: Workbench, model_name: str, version: str | int) -> ReferenceStats:
    """The reference statistics saved with version ``version`` of the registered model ``model_name``."""
    from mlflow.exceptions import MlflowException

    from mlops_workbench import tracking

    client = tracking.client(wb)
    try:
        mv = client.get_model_version(model_name, str(version))
    except MlflowException:
        raise NotFoundError(
            f"There is no version {version} of the registered model '{model_name}': list them with "
            f"`workbench registry list --name {model_name}`."
        ) from None
    run_id = mv.run_id
    if not run_id:
        raise NotFoundError(
            f"Version {version} of '{model_name}' names no run, so no reference statistics: register models logged "
            "in a run (tracking.log_sklearn_model(model, example, training=train_df) inside mlflow.start_run())."
        )
    logged = client.get_logged_model(mv.model_id).name if mv.model_id else "model"
    path = f"{ARTIFACT_DIR}/{logged}.json"
    try:
        with tempfile.TemporaryDirectory(prefix="mlops-reference-") as tmp:
            stats = ReferenceStats.model_validate_json(Path(client.download_artifacts(run_id, path, tmp)).read_text())
    except (MlflowException, OSError):
        raise NotFoundError(
            f"Version {version} of '{model_name}' has no reference statistics ({path} in run {run_id}): its model "
            "was logged without its training rows. Log models with tracking.log_sklearn_model(model, example, "
            "training=train_df) (the workbench's training does), or save them in the run with "
            "monitoring.reference.log(monitoring.reference.compute(train_df, model))."
        ) from None
    tags = client.get_run(run_id).data.tags
    expected = {tags.get(HASH_TAG.format(name=logged))} | (
        {tags.get("data.md5")} if stats.data_hash_kind == "dvc-md5" else set()
    )
    if {h for h in expected if h is not None} - {stats.data_hash}:
        raise InputError(
            f"The reference statistics of '{model_name}' version {version} describe data {stats.data_hash}, but its run "
            f"{run_id} was trained on {sorted(h for h in expected if h)}: the artifact {path} was replaced. Log the "
            "model again from its training data."
        )
    return stats
