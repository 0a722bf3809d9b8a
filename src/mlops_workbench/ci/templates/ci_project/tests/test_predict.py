"""Prediction: known flowers get their species, the model is accurate, bad input is rejected."""

import pytest
from iris_model import CLASSES, accuracy, load_data, predict, split, train_model


@pytest.fixture(scope="module")
def data():
    X, y = load_data()
    X_train, X_test, y_train, y_test = split(X, y)
    return train_model(X_train, y_train), X_test, y_test


def test_known_flowers(data):
    model = data[0]
    assert predict(model, [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]) == ["setosa", "virginica"]


def test_one_known_label_per_row(data):
    model, X_test, _ = data
    labels = predict(model, X_test)
    assert len(labels) == len(X_test) and set(labels) <= set(CLASSES)


def test_accuracy_is_high(data):
    assert accuracy(*data) >= 0.9


def test_wrong_number_of_features_is_rejected(data):
    with pytest.raises(ValueError):
        predict(data[0], [[1.0, 2.0, 3.0]])
