"""Drift of live traffic against the training reference, skew between training and serving, accuracy once labelled.

Pure functions: reference statistics (:mod:`~mlops_workbench.monitoring.reference`) and a window of logged
predictions (:class:`~mlops_workbench.monitoring.predictions.Window`) in, records out; nothing is read or written.

Per input feature two measures are taken. PSI (population stability index) over the reference's quantile bins
says *how much* the distribution moved: sum over bins of ``(live - ref) * ln(live / ref)``. The two-sample
Kolmogorov-Smirnov test says whether the move is more than the sampling noise of a window this size (its
p-value). The predicted classes get PSI and a chi-square test of the window's class counts against the reference's.
A feature drifts when both agree (:class:`Thresholds`): significant (``p < alpha``) *and* large enough (``PSI >=
psi``). Significance alone flags harmless moves in big windows; PSI alone flags noise in small ones.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

    from mlops_workbench.datastats import FeatureReference, ReferenceStats
    from mlops_workbench.monitoring.exporter import DriftScores
    from mlops_workbench.monitoring.predictions import Window

PREDICTION = "prediction"
"""The name under which the predicted class is tested beside the input features."""
EPSILON = 1e-4
"""The share an empty bin counts as in PSI (its logarithm is otherwise infinite)."""


class EmptyWindowError(InputError):
    """A window without a single prediction: nothing to measure."""


class NoLabelsError(InputError):
    """A window none of whose predictions has a label yet."""


class Thresholds(BaseModel):
    """When a feature counts as drifted: ``p_value < alpha`` and ``psi >= psi``."""

    model_config = ConfigDict(extra="forbid")

    psi: float = Field(default=0.1, ge=0, description="0.1: a moderate shift by the usual reading (0.25: a large one)")
    alpha: float = Field(default=0.01, gt=0, lt=1, description="significance level of the KS and chi-square tests")


class FeatureDrift(BaseModel):
    """One feature (or the prediction) in one window: its scores, their thresholds and the verdict."""

    model_config = ConfigDict(extra="forbid")

    feature: str
    test: Literal["ks", "chi2"]
    statistic: float
    p_value: float
    alpha: float
    psi: float
    psi_threshold: float
    drifted: bool


class DriftReport(BaseModel):
    """Drift of one window of traffic against the reference of the model version that served it."""

    model_config = ConfigDict(extra="forbid")

    model: str
    version: str | None
    start: datetime
    end: datetime
    rows: int
    reference_rows: int
    data_hash: str
    thresholds: Thresholds
    features: list[FeatureDrift]
    drifted: bool

    @property
    def drifted_features(self) -> list[str]:
        return [f.feature for f in self.features if f.drifted]

    def frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame([f.model_dump() for f in self.features], columns=list(FeatureDrift.model_fields))

    def scores(self) -> DriftScores:
        """The PSI of each feature and of the prediction, as the monitor service exports them (its drift gauges)."""
        from mlops_workbench.monitoring.exporter import DriftScores

        psi = {f.feature: f.psi for f in self.features}
        prediction = psi.pop(PREDICTION, None)
        return DriftScores(model=self.model, version=self.version or "any", features=psi, prediction=prediction)


class Accuracy(BaseModel):
    """Accuracy over the labelled rows of a window."""

    model_config = ConfigDict(extra="forbid")

    rows: int
    labelled: int
    correct: int
    accuracy: float


class FeatureSkew(BaseModel):
    model_config = ConfigDict(extra="forbid")

    feature: str
    mismatched: int
    max_abs_diff: float


class SkewReport(BaseModel):
    """Training-serving skew: the same rows through training preprocessing and as the server logged them."""

    model_config = ConfigDict(extra="forbid")

    compared: int
    missing: list[str] = Field(description="request ids with no logged prediction")
    tolerance: float
    features: list[FeatureSkew]
    skewed: bool


def psi(expected: Sequence[float], actual: Sequence[float], epsilon: float = EPSILON) -> float:
    """Population stability index of the bin shares ``actual`` against ``expected`` (same bins, same order)."""
    e, a = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if e.shape != a.shape or e.ndim != 1 or e.size == 0:
        raise InputError(f"PSI needs two lists of bin shares of the same length, got {e.size} and {a.size}.")
    e, a = np.clip(e, epsilon, None), np.clip(a, epsilon, None)
    return float(np.sum((a - e) * np.log(a / e)))


def ks(reference: Sequence[float] | np.ndarray, live: Sequence[float] | np.ndarray) -> tuple[float, float]:
    """Two-sample Kolmogorov-Smirnov test: (largest gap between the two empirical CDFs, p-value)."""
    from scipy import stats

    if len(reference) == 0 or len(live) == 0:
        raise InputError("The KS test needs at least one value on each side.")
    result = stats.ks_2samp(np.asarray(reference, dtype=float), np.asarray(live, dtype=float))
    return float(result.statistic), float(result.pvalue)


def chi2(reference: Mapping[str, int], live: Mapping[str, int]) -> tuple[float, float]:
    """Chi-square test of homogeneity of two sets of class counts (no continuity correction): (statistic, p)."""
    from scipy import stats

    classes = sorted(c for c in set(reference) | set(live) if reference.get(c, 0) + live.get(c, 0) > 0)
    table = np.array([[reference.get(c, 0) for c in classes], [live.get(c, 0) for c in classes]], dtype=float)
    if table[0].sum() == 0 or table[1].sum() == 0:
        raise InputError("The chi-square test needs at least one count on each side.")
    if len(classes) < 2:
        return 0.0, 1.0  # one class on both sides: nothing differs
    result = stats.chi2_contingency(table, correction=False)
    return float(result.statistic), float(result.pvalue)


def numeric_drift(
    reference: FeatureReference, live: Sequence[float] | np.ndarray, thresholds: Thresholds
) -> FeatureDrift:
    from mlops_workbench.datastats import proportions

    statistic, p_value = ks(reference.values, live)
    score = psi(reference.proportions, proportions(live, reference.edges))
    return _verdict(reference.name, "ks", statistic, p_value, score, thresholds)


def class_drift(
    name: str, reference: Mapping[str, int], live: Mapping[str, int], thresholds: Thresholds
) -> FeatureDrift:
    classes = sorted(set(reference) | set(live))
    shares = [[counts.get(c, 0) / max(1, sum(counts.values())) for c in classes] for counts in (reference, live)]
    statistic, p_value = chi2(reference, live)
    return _verdict(name, "chi2", statistic, p_value, psi(shares[0], shares[1]), thresholds)


def _verdict(
    name: str, test: Literal["ks", "chi2"], statistic: float, p_value: float, score: float, thresholds: Thresholds
) -> FeatureDrift:
    drifted = p_value < thresholds.alpha and score >= thresholds.psi
    return FeatureDrift(
        feature=name,
        test=test,
        statistic=statistic,
        p_value=p_value,
        alpha=thresholds.alpha,
        psi=score,
        psi_threshold=thresholds.psi,
        drifted=drifted,
    )


def require_rows(window: Window) -> None:
    """Raise :class:`EmptyWindowError` when ``window`` holds no prediction."""
    if not window.rows:
        version = window.version if window.version is not None else "(any)"
        raise EmptyWindowError(
            f"No predictions between {window.start.isoformat()} and {window.end.isoformat()} for model "
            f"{window.model} version {version}: send traffic or widen the window."
        )


def check_features(names: Sequence[str], known: Sequence[str], where: str) -> None:
    """Raise naming every unknown feature in ``names`` and the ``known`` ones."""
    unknown = [n for n in names if n not in known]
    if unknown:
        raise InputError(f"Unknown feature name(s) {unknown} {where}: the known features are {list(known)}.")


def detect(
    reference: ReferenceStats,
    window: Window,
    thresholds: Thresholds | None = None,
    features: Sequence[str] | None = None,
    predictions: bool = True,
) -> DriftReport:
    """Drift of every feature of ``window`` (or only ``features``) and, if ``predictions``, of the predicted
    classes, against ``reference``."""
    thresholds = thresholds or Thresholds()
    require_rows(window)
    names = list(features) if features is not None else reference.feature_names
    check_features(names, reference.feature_names, "asked for")
    check_features(names, window.feature_names(), f"in the logged traffic of {window.describe()}")
    frame = window.frame()
    results = [numeric_drift(reference.feature(n), frame[n].to_numpy(dtype=float), thresholds) for n in names]
    if predictions:
        live = {str(k): int(v) for k, v in frame[PREDICTION].value_counts().items()}
        results.append(class_drift(PREDICTION, reference.prediction_counts, live, thresholds))
    return DriftReport(
        model=window.model,
        version=window.version,
        start=window.start,
        end=window.end,
        rows=len(window.rows),
        reference_rows=reference.rows,
        data_hash=reference.data_hash,
        thresholds=thresholds,
        features=results,
        drifted=any(r.drifted for r in results),
    )


def accuracy(window: Window) -> Accuracy:
    """The share of labelled rows of ``window`` whose prediction was the true class."""
    require_rows(window)
    labelled = [r for r in window.rows if r.label is not None]
    if not labelled:
        raise NoLabelsError(
            f"None of the {len(window.rows)} predictions of {window.describe()} has a label yet: deliver the labels "
            "that are due (monitoring.labels.LabelFeed.deliver) or wait for their delay, then ask again."
        )
    correct = sum(1 for r in labelled if r.prediction == r.label)
    return Accuracy(rows=len(window.rows), labelled=len(labelled), correct=correct, accuracy=correct / len(labelled))


def skew(expected: pd.DataFrame, window: Window, tolerance: float = 1e-6) -> SkewReport:
    """Compare rows as the training preprocessing makes them (``expected``: a ``request_id`` column, an optional
    ``row`` column, and feature columns) with the features the server logged for the same request ids."""
    require_rows(window)
    if "request_id" not in expected.columns:
        raise InputError("The expected rows need a 'request_id' column naming the request each row was sent in.")
    names = [c for c in expected.columns if c not in ("request_id", "row")]
    check_features(names, window.feature_names(), f"in the expected rows (logged by {window.describe()})")
    served = {(r.request_id, r.row): r.features for r in window.rows}
    rows = expected.get("row", 0)
    keys = [(str(i), int(n)) for i, n in zip(expected["request_id"], np.broadcast_to(rows, len(expected)), strict=True)]
    found = [k in served for k in keys]
    if not any(found):
        raise InputError(
            f"None of the {len(keys)} expected request ids was logged by {window.describe()}: send those rows to the "
            "server (with their request ids) first, or pick the window they were sent in."
        )
    mine = expected.loc[found, names].to_numpy(dtype=float)
    theirs = np.array([[served[k][n] for n in names] for k, hit in zip(keys, found, strict=True) if hit])
    diff = np.abs(mine - theirs)
    report = [
        FeatureSkew(feature=n, mismatched=int((diff[:, j] > tolerance).sum()), max_abs_diff=float(diff[:, j].max()))
        for j, n in enumerate(names)
    ]
    return SkewReport(
        compared=int(sum(found)),
        missing=sorted({k[0] for k, hit in zip(keys, found, strict=True) if not hit}),
        tolerance=tolerance,
        features=report,
        skewed=any(f.mismatched for f in report),
    )
