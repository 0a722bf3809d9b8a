"""Training stage: a seeded scikit-learn Pipeline built from ``params.yaml`` (section ``train``).

The same parameters and seed always give the same model: every random
component takes ``random_state=params.seed``. :class:`TrainParams` is defined in
:mod:`mlops_workbench.paramspec` (with the rest of params.yaml's schema) and imported here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops_workbench.data import FEATURES, LABEL, validate
from mlops_workbench.errors import InputError
from mlops_workbench.paramspec import ModelKind, TrainParams

__all__ = ["ModelKind", "TrainParams", "build_pipeline", "train"]


def build_pipeline(params: TrainParams) -> Pipeline:
    """An unfitted Pipeline (scaler + classifier) seeded with ``params.seed``."""
    if params.model == "logistic_regression":
        clf = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=params.seed)
    elif params.model == "random_forest":
        from sklearn.ensemble import RandomForestClassifier  # 0.4 s more to import: only the forests pay for it

        clf = RandomForestClassifier(
            n_estimators=params.n_estimators, max_depth=params.max_depth, random_state=params.seed, n_jobs=1
        )
    else:  # pragma: no cover - pydantic already rejects other values
        raise InputError(f"Unknown model {params.model!r}: use logistic_regression or random_forest.")
    return Pipeline([("scale", StandardScaler()), ("clf", clf)])


def train(df: pd.DataFrame, params: TrainParams | dict[str, Any] | None = None) -> Pipeline:
    """Validate ``df`` and fit :func:`build_pipeline` on :data:`FEATURES` -> :data:`LABEL`."""
    if not isinstance(params, TrainParams):
        params = TrainParams.from_dict(params)
    df = validate(df)
    model = build_pipeline(params)
    model.fit(df[FEATURES], df[LABEL].astype(str))
    return model
