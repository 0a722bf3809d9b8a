"""Data loading, training and prediction for the Iris classifier."""

from __future__ import annotations

import os
from pathlib import Path

import joblib
import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

FEATURES = ["sepal_length", "sepal_width", "petal_length", "petal_width"]
CLASSES = ["setosa", "versicolor", "virginica"]
MODEL_PATH = Path(os.environ.get("MODEL_PATH", Path(__file__).resolve().parent.parent / "models" / "model.joblib"))


def load_data() -> tuple[np.ndarray, np.ndarray]:
    """The Iris measurements X (150 rows x 4 features, cm) and species names y."""
    iris = load_iris()
    X = iris.data.astype(float)
    y = np.asarray(iris.target_names)[iris.target]
    return X, y


def split(X: np.ndarray, y: np.ndarray, test_size: float = 0.2, seed: int = 42):
    """Stratified train/test split: X_train, X_test, y_train, y_test."""
    return train_test_split(X, y, test_size=test_size, random_state=seed, stratify=y)


def train_model(X: np.ndarray, y: np.ndarray, seed: int = 42) -> Pipeline:
    """Fit a scaled logistic regression on X -> y (same seed, same model)."""
    model = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(max_iter=500, random_state=seed))])
    model.fit(X, y)
    return model


def predict(model: Pipeline, rows) -> list[str]:
    """Species names for rows of 4 measurements; ValueError for any other shape."""
    X = np.asarray(rows, dtype=float)
    if X.ndim != 2 or X.shape[1] != len(FEATURES):
        raise ValueError(f"each row needs {len(FEATURES)} measurements ({', '.join(FEATURES)}), got shape {X.shape}")
    return [str(label) for label in model.predict(X)]


def accuracy(model: Pipeline, X: np.ndarray, y: np.ndarray) -> float:
    """Fraction of rows predicted right."""
    return float(np.mean(np.asarray(predict(model, X)) == np.asarray(y)))


def save_model(model: Pipeline, path: Path | str = MODEL_PATH) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, path)
    return path


def load_model(path: Path | str = MODEL_PATH) -> Pipeline:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: train first with `python -m iris_model.train`.")
    return joblib.load(path)
