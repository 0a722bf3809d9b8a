"""Reference statistics saved with each logged model and loaded back by registered name and version, against a
REAL MLflow tracking server (sqlite store) on loopback."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest

from mlops_workbench import data, procs, registry, tracking, train, versioning
from mlops_workbench.errors import InputError, NotFoundError
from mlops_workbench.monitoring import reference
from mlops_workbench.registry import candidates, integrity
from mlops_workbench.workbench import Workbench

F = data.FEATURES


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("reference-home")
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)  # slow on a loaded 2-core machine
    yield home
    procs.stop_all(Workbench.from_env(home))


def test_a_candidate_version_has_the_statistics_of_its_training_split(home, wb):
    run_id = candidates.log_candidate({"C": 1.0}, experiment="reference")
    version = registry.register(wb, run_id, "referenced").version
    stats = reference.load(wb, "referenced", version)
    params = candidates.candidate_params({"C": 1.0})
    train_df, test_df = data.split(data.load_iris_frame(), test_size=params.test_size, seed=params.seed)
    assert (
        stats.data_hash == reference.frame_hash(train_df[[*F, data.LABEL]]) and stats.data_hash_kind == "frame-sha256"
    )
    assert stats.rows == len(train_df) and stats.feature_names == F
    assert stats.holdout is not None and len(stats.holdout.confidence) == len(test_df)  # the test split
    expected = reference.compute(train_df, train.train(train_df, params), holdout=test_df)
    assert stats == expected
    tags = tracking.client(wb).get_run(run_id).data.tags
    assert tags[reference.HASH_TAG.format(name="model")] == stats.data_hash


def test_every_version_registered_through_the_workbench_has_one_and_others_get_the_fix(home, wb):
    df = data.load_iris_frame()
    model = train.train(df, {"C": 2.0})
    mlflow.set_experiment("reference")
    with mlflow.start_run():
        version = integrity.log_registered(wb, model, df[F].head(5), "registered", training=df, data_hash="0" * 32)
    stats = reference.load(wb, "registered", version)
    assert stats.data_hash == "0" * 32 and stats.data_hash_kind == "dvc-md5" and stats.holdout is None
    with mlflow.start_run():
        bare = integrity.log_registered(wb, model, df[F].head(5), "registered")  # no training rows given
    with pytest.raises(NotFoundError, match=r"has no reference statistics \(reference/model.json in run") as info:
        reference.load(wb, "registered", bare)
    assert "training=train_df" in str(info.value)
    with pytest.raises(NotFoundError, match="There is no version 99 of the registered model 'registered'"):
        reference.load(wb, "registered", 99)


def test_a_replaced_reference_is_refused(home, wb):
    df = data.load_iris_frame()
    model = train.train(df, {"C": 1.0})
    mlflow.set_experiment("reference")
    with mlflow.start_run() as run:
        version = integrity.log_registered(wb, model, df[F].head(5), "replaced", training=df)
    other = reference.compute(df.assign(sepal_width=df.sepal_width + 0.5), model)
    tracking.client(wb).log_dict(run.info.run_id, other.model_dump(mode="json"), "reference/model.json")
    with pytest.raises(InputError, match="the artifact reference/model.json was replaced"):
        reference.load(wb, "replaced", version)


def test_bad_training_rows_fail_before_anything_is_logged(home, wb):
    df = data.load_iris_frame()
    mlflow.set_experiment("reference")
    with mlflow.start_run() as run, pytest.raises(InputError, match="misses the columns"):
        tracking.log_sklearn_model(train.train(df, {"C": 1.0}), df[F].head(5), training=df[F])
    logged = tracking.client(wb).search_logged_models(experiment_ids=[run.info.experiment_id])
    assert [m for m in logged if m.source_run_id == run.info.run_id] == []


@pytest.mark.slow
def test_a_versioned_run_ties_its_reference_to_the_dvc_hash_of_its_data(home, tmp_path, wb):
    ws = candidates.candidate_workspace(wb, tmp_path / "ws")
    run_id = candidates.log_versioned_candidate(wb, ws, {"C": 3.0}, experiment="reference")
    version = registry.register(wb, run_id, "versioned").version
    stats = reference.load(wb, "versioned", version)
    tags = tracking.client(wb).get_run(run_id).data.tags
    assert stats.data_hash == tags["data.md5"] == ws.dvc_md5(versioning.DATA)
    assert stats.data_hash_kind == "dvc-md5" and stats.holdout is not None
    assert stats.rows == len(data.load_csv(ws.path / versioning.TRAIN_SPLIT))
