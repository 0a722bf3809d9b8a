"""Training stage: a seeded scikit-learn Pipeline built from ``params.yaml`` (section ``train``).

The same parameters and seed always give the same model: every random
component takes ``random_state=params.seed``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from mlops_workbench import settings
from mlops_workbench.data import FEATURES, LABEL, validate
from mlops_workbench.errors import InputError

ModelKind = Literal["logistic_regression", "random_forest"]


class TrainParams(BaseModel):
    """Training parameters (``params.yaml`` section ``train``); unknown keys are rejected."""

    model_config = ConfigDict(extra="forbid")
    model: ModelKind = "logistic_regression"
    C: float = Field(1.0, gt=0, description="inverse regularisation strength (logistic regression)")
    max_iter: int = Field(500, gt=0, description="solver iterations (logistic regression)")
    n_estimators: int = Field(100, gt=0, description="trees (random forest)")
    max_depth: int | None = Field(None, gt=0, description="tree depth, None for unlimited (random forest)")
    seed: int = Field(42, description="random_state of every random component")
    test_size: float = Field(0.2, gt=0, lt=1, description="fraction held out for evaluation")
    accuracy_floor: float = Field(0.9, ge=0, le=1, description="minimum test accuracy a model must reach")

    @classmethod
    def from_dict(cls, raw: dict[str, Any] | None) -> "TrainParams":
        """Build from a plain dict, with an error naming every bad key and the fix."""
        try:
            return cls.model_validate(raw or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'train'}: {e['msg']}" for e in exc.errors())
            raise InputError(
                f"Invalid training parameters ({problems}). Fix the 'train' section of params.yaml; "
                f"known keys: {', '.join(cls.model_fields)}."
            ) from None

    @classmethod
    def load(cls, path: Path | None = None) -> "TrainParams":
        """Read section ``train`` of ``params.yaml``; a top-level ``seed`` is used if ``train`` has none."""
        raw = dict(settings.load_params("train", path=path) or {})
        if "seed" not in raw:
            top = settings.load_params(path=path)
            if "seed" in top:
                raw["seed"] = top["seed"]
        return cls.from_dict(raw)


def build_pipeline(params: TrainParams) -> Pipeline:
    """An unfitted Pipeline (scaler + classifier) seeded with ``params.seed``."""
    if params.model == "logistic_regression":
        clf = LogisticRegression(C=params.C, max_iter=params.max_iter, random_state=params.seed)
    elif params.model == "random_forest":
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
