"""Seeded traffic for the drift exercises, tests and hidden checks: Iris-like rows, and a "later month" with one
feature moved.

:func:`traffic` draws rows around the training data: a class with the data's class shares, then the four
measurements from a normal distribution with that class's mean and covariance, rounded to 0.1 cm like Iris. Each
row keeps its true class, which the label feed (:mod:`mlops_workbench.monitoring.labels`) delivers later.
:func:`later_month` is the same traffic with one feature shifted by a fixed amount in cm (the measuring device was
recalibrated, say); the classes stay what they were. The same seed always gives the same rows.

:func:`scored_window` turns rows into a :class:`~mlops_workbench.monitoring.predictions.Window` with a model in
process (pure, no server), for tests; :func:`replay` sends rows to a real model server or router, one request each,
under request ids of its own, and returns the truth the label feed needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.data import FEATURE_RANGE, FEATURES, LABEL
from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.monitoring.predictions import PredictionRecord, Window, moment
from mlops_workbench.serving.payloads import REQUEST_ID

if TYPE_CHECKING:
    import pandas as pd

    from mlops_workbench.serving.client import Reply

ROWS = 200
"""Rows per window by default: enough for the tests to tell a moved feature from noise with room to spare."""


class Shift(BaseModel):
    """Move ``feature`` by ``amount`` cm in every row."""

    model_config = ConfigDict(extra="forbid")

    feature: str
    amount: float = Field(allow_inf_nan=False)


DEFAULT_SHIFT = Shift(feature="petal_length", amount=1.0)
"""The later month's move by default: petal length up by 1 cm (about 0.57 standard deviations of Iris)."""


class Sender(Protocol):
    """What :func:`replay` sends through: a ``ModelServerClient`` or a ``RouterClient``."""

    def send(self, rows: list[list[float]], *, request_id: str | None = None) -> Reply: ...


def traffic(seed: int, rows: int = ROWS, shift: Shift | None = None, base: pd.DataFrame | None = None) -> pd.DataFrame:
    """``rows`` Iris-like rows (the four features and the true ``species``) drawn around ``base`` (default: Iris
    as scikit-learn ships it), with ``shift`` applied when given."""
    import pandas as pd

    from mlops_workbench.data import load_iris_frame

    if rows < 1:
        raise InputError(f"rows={rows}: a window needs at least one row.")
    if shift is not None and shift.feature not in FEATURES:
        raise InputError(f"Cannot shift unknown feature {shift.feature!r}: the features are {FEATURES}.")
    base = load_iris_frame() if base is None else base
    rng = np.random.default_rng(seed)
    classes = sorted(str(c) for c in base[LABEL].unique())
    shares = base[LABEL].astype(str).value_counts(normalize=True).reindex(classes).to_numpy()
    drawn = rng.choice(len(classes), size=rows, p=shares)
    values = np.empty((rows, len(FEATURES)))
    for k, name in enumerate(classes):
        members = base.loc[base[LABEL].astype(str) == name, FEATURES].to_numpy(dtype=float)
        picked = drawn == k
        values[picked] = rng.multivariate_normal(members.mean(axis=0), np.cov(members.T), size=int(picked.sum()))
    low, high = FEATURE_RANGE
    frame = pd.DataFrame(np.clip(np.round(values, 1), low + 0.1, high), columns=FEATURES)
    if shift is not None:
        frame[shift.feature] = np.clip(frame[shift.feature] + shift.amount, low + 0.1, high).round(1)
    frame[LABEL] = [classes[k] for k in drawn]
    return frame


def later_month(seed: int, shift: Shift = DEFAULT_SHIFT, rows: int = ROWS) -> pd.DataFrame:
    """A later month of traffic: :func:`traffic` with ``shift`` (one feature moved)."""
    return traffic(seed, rows, shift)


def scored_window(
    frame: pd.DataFrame,
    model: Any,
    *,
    model_name: str = "iris",
    version: str = "1",
    start: datetime | float = 0.0,
    spacing: float = 1.0,
    labelled: bool = True,
    prefix: str = "req",
) -> Window:
    """The window a server would have logged for ``frame``, one row per request ``<prefix>-<i>`` every ``spacing``
    seconds from ``start``, scored by the fitted ``model`` in process; labels from ``frame`` if ``labelled``."""
    X = frame[FEATURES]
    predicted = [str(p) for p in model.predict(X)]
    proba = model.predict_proba(X) if hasattr(model, "predict_proba") else None
    classes = [str(c) for c in getattr(model, "classes_", [])]
    begin = moment(start)
    records = [
        PredictionRecord(
            request_id=f"{prefix}-{i}",
            ts=begin + timedelta(seconds=i * spacing),
            model=model_name,
            version=version,
            endpoint="scored-in-process",
            features={f: float(v) for f, v in zip(FEATURES, row, strict=True)},
            prediction=predicted[i],
            probabilities=dict(zip(classes, map(float, proba[i]), strict=True)) if proba is not None else None,
            latency_ms=0.0,
            label=str(frame[LABEL].iloc[i]) if labelled else None,
        )
        for i, row in enumerate(X.to_numpy(dtype=float))
    ]
    end = begin + timedelta(seconds=max(len(records) * spacing, 1.0))
    return Window(model=model_name, version=version, start=begin, end=end, rows=records)


def replay(sender: Sender, frame: pd.DataFrame, prefix: str, features: Sequence[str] = FEATURES) -> dict[str, str]:
    """Send each row of ``frame`` as one prediction request named ``<prefix>-<i>``; returns ``{request id: true
    class}`` of the rows answered, for the label feed. Raises when no request was answered at all."""
    if not REQUEST_ID.match(f"{prefix}-{len(frame)}"):
        raise InputError(
            f"prefix={prefix!r}: request ids are up to 64 letters, digits, '.', '_', ':' or '-'; pick a prefix of "
            "those, e.g. 'month-2'."
        )
    truth: dict[str, str] = {}
    failed: list[str] = []
    for i, row in enumerate(frame[list(features)].to_numpy(dtype=float).tolist()):
        request_id = f"{prefix}-{i}"
        reply = sender.send([row], request_id=request_id)
        if reply.status == 200:
            truth[reply.request_id or request_id] = str(frame[LABEL].iloc[i])
        else:
            failed.append(f"{request_id}: {reply.status or reply.problem}")
    if failed and not truth:
        raise ServiceError(f"No request of {len(failed)} was answered (first: {failed[0]}): is the server running?")
    return truth
