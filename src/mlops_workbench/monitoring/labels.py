"""The "ground truth" feed: true classes that arrive some time after the predictions, for some of them.

In production the label of a prediction comes later (a botanist looks at the flower next week) and not for
every request. :class:`LabelFeed` plays that part, seeded: of the logged predictions whose request ids it knows the
truth of, it labels a chosen ``fraction``, each once it is ``delay`` seconds old. Which request ids are chosen
depends only on the seed and the id, so asking again later labels the same ones, plus those that came due since.
The labels go into the prediction log's own ``labels`` table (:meth:`PredictionLog.add_labels`), joined to every
query by request id and row.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.monitoring.predictions import LabelRecord, Moment, PredictionLog, PredictionRecord, epoch

Truth = Mapping[str, str | Sequence[str]]
"""The true class of every request a feed may label: request id -> class (one-row requests) or list of classes
(one per row). :func:`mlops_workbench.monitoring.scenarios.replay` returns one."""


class LabelFeed(BaseModel):
    """Label ``fraction`` of the request ids (chosen by ``seed``), each ``delay`` seconds after its prediction."""

    model_config = ConfigDict(extra="forbid")

    fraction: float = Field(default=0.5, gt=0, le=1)
    delay: float = Field(default=0.0, ge=0, allow_inf_nan=False, description="seconds from prediction to label")
    seed: int = 0

    def chosen(self, request_id: str) -> bool:
        """Whether this feed ever labels ``request_id`` (the same answer on every call)."""
        digest = hashlib.sha256(f"{self.seed}:{request_id}".encode()).digest()
        return int.from_bytes(digest[:8], "big") < self.fraction * 2**64

    def due(self, predictions: Sequence[PredictionRecord], truth: Truth, now: Moment) -> list[LabelRecord]:
        """The labels of ``predictions`` that have arrived by ``now`` (pure: nothing is read or written)."""
        cutoff = epoch(now) - self.delay
        labels: dict[tuple[str, int], LabelRecord] = {}
        for p in predictions:
            key = (p.request_id, p.row)
            if p.label is not None or key in labels or epoch(p.ts) > cutoff or not self.chosen(p.request_id):
                continue
            label = _truth_of(truth, p.request_id, p.row)
            if label is not None:
                labels[key] = LabelRecord(
                    request_id=p.request_id, row=p.row, label=label, ts=p.ts + timedelta(seconds=self.delay)
                )
        return list(labels.values())

    def deliver(self, store: PredictionLog, truth: Truth, now: Moment | None = None) -> int:
        """Store the labels due by ``now`` (default: the current time) in the prediction log; returns how many
        were new."""
        now = time.time() if now is None else now
        pending = store.query(labelled=False, end=epoch(now) - self.delay + 1e-6)
        return store.add_labels(self.due(pending, truth, now))


def _truth_of(truth: Truth, request_id: str, row: int) -> str | None:
    known = truth.get(request_id)
    if known is None:
        return None
    if isinstance(known, str):
        return known if row == 0 else None
    return str(known[row]) if row < len(known) else None
