"""Reference statistics of a training data set: what a model's live traffic is later compared with.

Per input feature its quantile bins and the share of training rows in each (for PSI), its sorted values (for the
two-sample KS test), mean and standard deviation; the classes the model predicts on its own training rows (for the
chi-square test of the prediction distribution) and the true ones; and, given rows the model did not train on,
its confidence and whether it was right on each (what :mod:`mlops_workbench.monitoring.estimate` calibrates
confidence-based accuracy estimates on). The record names the hash of the data it came from: the DVC md5 of the
data file when there is one (the run's ``data.md5`` lineage tag), else a sha256 of the training frame.

:func:`mlops_workbench.tracking.log_sklearn_model` computes and saves it (:func:`compute`, :func:`log`) whenever it
is given the training rows, as the run artifact ``reference/<logged model name>.json``, so every version registered
from such a run has one; :func:`mlops_workbench.monitoring.reference.load` reads it back by registered name and
version. It sits beside ``tracking`` rather than in ``monitoring`` because training writes it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.data import FEATURES, LABEL
from mlops_workbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

ARTIFACT_DIR = "reference"
HASH_TAG = "reference.{name}.data_hash"
"""The run tag holding the data hash of the reference of the logged model ``name`` (checked on load)."""
BINS = 5
"""Quantile bins per feature. Few, because windows are small: with 100 rows, PSI over 10 bins reads about 0.2 on
traffic with no drift at all, over 5 bins about 0.1."""
MAX_VALUES = 5000
"""The most training values per feature kept for the KS test (an evenly spaced sample of the sorted values)."""


class FeatureReference(BaseModel):
    """One numeric input feature of the training data."""

    model_config = ConfigDict(extra="forbid")

    name: str
    edges: list[float] = Field(description="inner bin edges; bin i holds values in [edges[i-1], edges[i])")
    proportions: list[float] = Field(description="share of training rows per bin (len(edges) + 1 bins)")
    mean: float
    std: float
    min: float
    max: float
    values: list[float] = Field(description="the sorted training values (a sample of them beyond MAX_VALUES)")


class Holdout(BaseModel):
    """The model on rows it did not train on: its confidence (largest class probability) and whether it was right,
    row by row."""

    model_config = ConfigDict(extra="forbid")

    confidence: list[float]
    correct: list[bool]


class ReferenceStats(BaseModel):
    """What drift is measured against, for one logged model."""

    model_config = ConfigDict(extra="forbid")

    v: int = 1
    data_hash: str
    data_hash_kind: Literal["dvc-md5", "frame-sha256"]
    rows: int
    bins: int
    features: list[FeatureReference]
    prediction_counts: dict[str, int] = Field(description="classes the model predicts on its training rows")
    label_counts: dict[str, int] = Field(description="true classes of the training rows")
    holdout: Holdout | None = None

    @property
    def feature_names(self) -> list[str]:
        return [f.name for f in self.features]

    def feature(self, name: str) -> FeatureReference:
        for found in self.features:
            if found.name == name:
                return found
        raise InputError(f"Unknown feature {name!r}: the reference knows {self.feature_names}.")


def bin_edges(values: Sequence[float] | np.ndarray, bins: int = BINS) -> list[float]:
    """Inner edges of ``bins`` quantile bins of ``values`` (fewer where ties make quantiles coincide)."""
    inner = np.quantile(np.asarray(values, dtype=float), np.linspace(0, 1, bins + 1)[1:-1])
    return [float(e) for e in np.unique(inner)]


def proportions(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> list[float]:
    """Share of ``values`` in each bin: ``(-inf, e0), [e0, e1), ..., [e_last, inf)``."""
    array = np.asarray(values, dtype=float)
    if array.size == 0:
        raise InputError("Cannot bin an empty set of values: pass at least one.")
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=float), array, side="right"), minlength=len(edges) + 1)
    return [float(c) for c in counts / array.size]


def frame_hash(df: pd.DataFrame) -> str:
    """sha256 of a frame's values and column names (row order counts), for data no DVC file describes."""
    import pandas as pd

    digest = hashlib.sha256(",".join(map(str, df.columns)).encode())
    digest.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return digest.hexdigest()


def compute(
    training: pd.DataFrame,
    model: Any,
    *,
    data_hash: str | None = None,
    features: Sequence[str] = FEATURES,
    label: str = LABEL,
    holdout: pd.DataFrame | None = None,
    bins: int = BINS,
) -> ReferenceStats:
    """Reference statistics of ``training`` (the rows ``model`` was fitted on: ``features`` and ``label``).

    ``data_hash`` is the DVC md5 of the data file when there is one (else the frame is hashed); ``holdout``, labelled
    rows the model did not train on, records its confidence and correctness there (for accuracy estimation)."""
    missing = [c for c in [*features, label] if c not in training.columns]
    if missing or training.empty:
        raise InputError(
            f"The training frame {'has no rows' if training.empty else f'misses the columns {missing}'}: pass the "
            f"rows the model was fitted on, with the columns {[*features, label]}."
        )
    X = training[list(features)]
    stats = [_feature(name, X[name].to_numpy(dtype=float), bins) for name in features]
    predicted = [str(p) for p in model.predict(X)]
    scored = None
    if holdout is not None and len(holdout) and hasattr(model, "predict_proba"):
        H = holdout[list(features)]
        right = [str(p) == str(t) for p, t in zip(model.predict(H), holdout[label], strict=True)]
        scored = Holdout(confidence=[float(c) for c in np.asarray(model.predict_proba(H)).max(axis=1)], correct=right)
    return ReferenceStats(
        data_hash=data_hash or frame_hash(training[[*features, label]]),
        data_hash_kind="dvc-md5" if data_hash else "frame-sha256",
        rows=len(training),
        bins=bins,
        features=stats,
        prediction_counts=_counts(predicted),
        label_counts=_counts(training[label].astype(str).tolist()),
        holdout=scored,
    )


def _feature(name: str, values: np.ndarray, bins: int) -> FeatureReference:
    edges = bin_edges(values, bins)
    ordered = np.sort(values)
    if ordered.size > MAX_VALUES:
        ordered = ordered[np.linspace(0, ordered.size - 1, MAX_VALUES).round().astype(int)]
    return FeatureReference(
        name=name,
        edges=edges,
        proportions=proportions(values, edges),
        mean=float(values.mean()),
        std=float(values.std(ddof=1)) if values.size > 1 else 0.0,
        min=float(values.min()),
        max=float(values.max()),
        values=[float(v) for v in ordered],
    )


def _counts(values: list[str]) -> dict[str, int]:
    found, counts = np.unique(np.asarray(values, dtype=str), return_counts=True)
    return {str(k): int(c) for k, c in zip(found, counts, strict=True)}


def log(stats: ReferenceStats, name: str = "model") -> str:
    """Save ``stats`` in the active MLflow run as ``reference/<name>.json`` (``name``: the logged model's), tag
    the run with its data hash, and return the artifact path."""
    import mlflow

    path = f"{ARTIFACT_DIR}/{name}.json"
    mlflow.log_dict(stats.model_dump(mode="json"), path)
    mlflow.set_tag(HASH_TAG.format(name=name), stats.data_hash)
    return path
