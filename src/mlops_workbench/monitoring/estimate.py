"""Accuracy before the labels arrive, estimated from the model's own confidence.

Confidence-based performance estimation (the idea behind NannyML's CBPE): if a model is *calibrated*, a row it
predicts with probability 0.8 is right 8 times in 10, so the expected accuracy of a window is the mean of its
confidences (the largest class probability of each row). Few models are calibrated out of the box (a regularised
logistic regression is under-confident), so the confidences are first mapped through an isotonic calibration
fitted on a labelled reference split the model did not train on (:func:`calibrate`); :func:`estimate` averages the
calibrated confidences of a window. The estimate holds while the relation between inputs and classes stays the one
of the reference (covariate shift is fine, concept shift is not): :func:`compare` puts it beside the real accuracy
once the labels have come in.

Everything here is pure: arrays and records in, numbers and records out.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from mlops_workbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from mlops_workbench.datastats import ReferenceStats
    from mlops_workbench.monitoring.predictions import Window

MIN_ROWS = 10
"""The fewest labelled rows a calibration is fitted on."""


class Calibration(BaseModel):
    """An isotonic map from confidence to the chance of being right (knots ``x`` -> ``y``), fitted on ``rows``
    labelled reference rows whose accuracy was ``accuracy``."""

    model_config = ConfigDict(extra="forbid")

    x: list[float]
    y: list[float]
    rows: int
    accuracy: float

    def apply(self, confidence: Sequence[float] | np.ndarray) -> np.ndarray:
        """The calibrated chance of being right of each confidence (clipped to the fitted range)."""
        return np.asarray(np.interp(np.asarray(confidence, dtype=float), self.x, self.y), dtype=float)


class AccuracyRow(BaseModel):
    """One window's estimated accuracy beside the real one (None until labels arrived)."""

    model_config = ConfigDict(extra="forbid")

    window: str
    rows: int
    estimated: float
    labelled: int
    realized: float | None
    difference: float | None


class AccuracyTable(BaseModel):
    """Estimated and real accuracy, window by window: what a monitoring dashboard shows before and after labels."""

    model_config = ConfigDict(extra="forbid")

    rows: list[AccuracyRow]

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        frame = pd.DataFrame([r.model_dump() for r in self.rows], columns=list(AccuracyRow.model_fields))
        return frame.astype({"estimated": float, "realized": float, "difference": float})  # None: NaN

    def _repr_html_(self) -> str:
        return str(self.frame().to_html(index=False, float_format="{:.3f}".format, na_rep="(no labels yet)"))


def confidences(probabilities: Sequence[Sequence[float]] | np.ndarray) -> np.ndarray:
    """The largest class probability of each row of a (rows x classes) matrix."""
    matrix = np.asarray(probabilities, dtype=float)
    if matrix.ndim != 2 or matrix.shape[0] == 0 or matrix.shape[1] < 2:
        raise InputError(
            f"Expected class probabilities as a (rows x classes) matrix with at least one row and two classes, got "
            f"shape {matrix.shape}: pass model.predict_proba(X)."
        )
    if not np.isfinite(matrix).all() or (matrix < 0).any() or (matrix > 1).any():
        raise InputError("Class probabilities must be finite numbers between 0 and 1: pass model.predict_proba(X).")
    return np.asarray(matrix.max(axis=1))


def calibrate(
    probabilities: Sequence[Sequence[float]] | np.ndarray, predicted: Sequence[Any], labels: Sequence[Any]
) -> Calibration:
    """Fit the calibration on a labelled reference split the model did not train on: its probabilities
    (``model.predict_proba(X)``), its predicted classes and the true ones."""
    confidence = confidences(probabilities)
    if not len(confidence) == len(predicted) == len(labels):
        raise InputError(
            f"{len(confidence)} rows of probabilities, {len(predicted)} predictions and {len(labels)} labels: "
            "pass the same rows to all three."
        )
    if len(confidence) < MIN_ROWS:
        raise InputError(
            f"Only {len(confidence)} labelled rows to calibrate on; use at least {MIN_ROWS} (a held-out split)."
        )
    return _fit(confidence, np.array([str(p) == str(t) for p, t in zip(predicted, labels, strict=True)], dtype=float))


def reference_calibration(reference: ReferenceStats) -> Calibration:
    """The calibration of the held-out split saved with the model's reference statistics (its test split, when the
    workbench's training logged it)."""
    if reference.holdout is None or len(reference.holdout.confidence) < MIN_ROWS:
        raise InputError(
            "The reference statistics hold no held-out split to calibrate on (the model was logged without one): "
            "calibrate on labelled rows it did not train on with estimate.calibrate(model.predict_proba(X), "
            "model.predict(X), y)."
        )
    return _fit(np.array(reference.holdout.confidence), np.array(reference.holdout.correct, dtype=float))


def _fit(confidence: np.ndarray, correct: np.ndarray) -> Calibration:
    from sklearn.isotonic import IsotonicRegression

    iso = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip").fit(confidence, correct)
    return Calibration(
        x=[float(v) for v in iso.X_thresholds_],
        y=[float(v) for v in iso.y_thresholds_],
        rows=len(correct),
        accuracy=float(correct.mean()),
    )


def estimate(probabilities: Sequence[Sequence[float]] | np.ndarray, calibration: Calibration | None) -> float:
    """The expected accuracy of rows with these probabilities: the mean calibrated confidence (the raw mean
    confidence without a calibration, right only for a calibrated model)."""
    confidence = confidences(probabilities)
    return float((calibration.apply(confidence) if calibration is not None else confidence).mean())


def window_probabilities(window: Window) -> np.ndarray:
    """The class probabilities the window's rows were logged with (rows x classes)."""
    from mlops_workbench.monitoring.drift import require_rows

    require_rows(window)
    missing = sum(1 for r in window.rows if not r.probabilities)
    if missing:
        raise InputError(
            f"{missing} of the {len(window.rows)} predictions of {window.describe()} were logged without class "
            "probabilities (the model has no predict_proba): confidence-based estimation needs them."
        )
    return np.array([list(r.probabilities.values()) for r in window.rows if r.probabilities])


def compare(window: Window, calibration: Calibration | None, name: str | None = None) -> AccuracyRow:
    """The window's estimated accuracy, and its real accuracy over the rows labelled so far (None if none)."""
    from mlops_workbench.monitoring.drift import accuracy

    estimated = estimate(window_probabilities(window), calibration)
    labelled = sum(1 for r in window.rows if r.label is not None)
    realized = accuracy(window).accuracy if labelled else None
    return AccuracyRow(
        window=name or window.describe(),
        rows=len(window.rows),
        estimated=estimated,
        labelled=labelled,
        realized=realized,
        difference=None if realized is None else estimated - realized,
    )
