"""The training stage: params from a dict or params.yaml, a seeded pipeline, deterministic fits."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline

from mlops_workbench import data
from mlops_workbench.data import FEATURES, DataValidationError
from mlops_workbench.train import TrainParams, build_pipeline, train


@pytest.fixture(scope="module")
def split():
    return data.split(data.load_iris_frame(), test_size=0.3, seed=0)


def test_params_from_dict_and_defaults():
    params = TrainParams.from_dict({"model": "random_forest", "n_estimators": 7, "seed": 3})
    assert params.model == "random_forest" and params.n_estimators == 7 and params.seed == 3
    assert TrainParams.from_dict(None).model == "logistic_regression"


@pytest.mark.parametrize("raw, word", [({"model": "svm"}, "model"), ({"C": -1}, "C"), ({"colour": 1}, "colour")])
def test_bad_params_are_named(raw, word):
    with pytest.raises(ValueError, match=f"{word}.*params.yaml"):
        TrainParams.from_dict(raw)


def test_params_load_from_yaml(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("seed: 5\ntrain:\n  model: random_forest\n  max_depth: 3\n")
    params = TrainParams.load(path)
    assert (params.model, params.max_depth, params.seed) == ("random_forest", 3, 5)


def test_project_params_have_a_train_section_with_accuracy_floor():
    params = TrainParams.load()
    assert 0 < params.accuracy_floor <= 1


def test_pipeline_is_seeded():
    pipe = build_pipeline(TrainParams(model="random_forest", seed=11))
    assert isinstance(pipe, Pipeline) and isinstance(pipe[-1], RandomForestClassifier)
    assert pipe[-1].random_state == 11
    assert isinstance(build_pipeline(TrainParams(seed=11))[-1], LogisticRegression)


@pytest.mark.parametrize("model", ["logistic_regression", "random_forest"])
def test_same_seed_same_model(split, model):
    train_df, test_df = split
    raw = {"model": model, "seed": 123, "n_estimators": 20}
    a, b = train(train_df, raw), train(train_df, TrainParams.from_dict(raw))
    np.testing.assert_array_equal(a.predict_proba(test_df[FEATURES]), b.predict_proba(test_df[FEATURES]))
    assert (a.predict(test_df[FEATURES]) == test_df["species"]).mean() > 0.85


def test_different_seed_changes_a_random_forest(split):
    train_df, test_df = split
    a = train(train_df, {"model": "random_forest", "seed": 1, "n_estimators": 5})
    b = train(train_df, {"model": "random_forest", "seed": 2, "n_estimators": 5})
    assert not np.array_equal(a.predict_proba(test_df[FEATURES]), b.predict_proba(test_df[FEATURES]))


def test_train_rejects_a_bad_dataset(split):
    with pytest.raises(DataValidationError):
        train(split[0].drop(columns=["sepal_length"]), {})
