"""How a model server logs every prediction without slowing a request down or failing one.

The request path only puts what it scored (request id, model, input matrix, labels, probabilities if it has them,
latency) on a bounded in-memory queue: about a microsecond. A writer thread collects what is queued for up to
:data:`LINGER` seconds, turns it into :class:`~mlops_workbench.monitoring.predictions.PredictionRecord` rows
(computing the class probabilities of ``/invocations``, whose answer has none, in one call per model for the whole
batch: one call per request would cost more than answering it) and appends them in one transaction.
A log that cannot be written (disk full, file locked too long, folder not writable) or a queue that is full costs
the rows, never the request: the server logs a warning at most once a minute, with the count of rows lost.
Stopping the server (:meth:`PredictionRecorder.close`) writes what is still queued; a crash loses the rows of its
last :data:`LINGER` seconds.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from mlops_workbench.monitoring.predictions import PredictionLog, PredictionRecord, moment

if TYPE_CHECKING:
    from mlops_workbench.serving.model import LoadedModel

log = logging.getLogger("mlops_workbench.monitoring.recorder")
CAPACITY = 10_000
"""Requests that may wait for the writer; beyond that new ones are not logged (and counted as lost)."""
BATCH = 500
"""Requests written in one transaction at most."""
LINGER = 0.05
"""Seconds the writer waits for more requests after the first of a batch: fewer, larger transactions and
probability calls under load, at most this much later in the log."""
WARN_EVERY = 60.0


@dataclass(frozen=True)
class Scored:
    """One answered request, as the request path hands it over."""

    ts: float
    request_id: str
    endpoint: str
    model: LoadedModel
    matrix: np.ndarray
    labels: list[Any]
    probabilities: list[list[float]] | None
    latency_ms: float


class PredictionRecorder:
    """The background writer of one model server; :meth:`record` never raises and never blocks."""

    def __init__(self, store: PredictionLog, capacity: int = CAPACITY) -> None:
        self.store = store
        self.lost = 0
        """Rows that could not be logged since the server started."""
        self.written = 0
        self._queue: queue.Queue[Scored | None] = queue.Queue(maxsize=capacity)
        self._last_warning = -WARN_EVERY
        self._idle = threading.Condition()
        self._pending = 0
        self._thread = threading.Thread(target=self._run, name="prediction-log", daemon=True)
        self._thread.start()

    def record(
        self,
        request_id: str,
        endpoint: str,
        model: LoadedModel,
        matrix: np.ndarray,
        labels: list[Any],
        probabilities: list[list[float]] | None,
        latency_ms: float,
    ) -> None:
        """Queue one answered request for the log (called on the request path)."""
        try:
            item = Scored(time.time(), request_id, endpoint, model, matrix, labels, probabilities, latency_ms)
            with self._idle:
                self._pending += 1
            self._queue.put_nowait(item)
        except queue.Full:
            self._done(1)
            self._lose(len(labels), "the prediction log writer is behind (queue full)")
        except Exception as exc:  # never let logging fail a request
            self._lose(len(labels), f"{type(exc).__name__}: {exc}")

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything queued so far is written (or lost); False if ``timeout`` passed first."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)

    def close(self, timeout: float = 10.0) -> None:
        """Write what is queued, stop the writer and close the log."""
        if self._thread.is_alive():
            try:
                self._queue.put(None, timeout=timeout)
            except queue.Full:
                log.warning("prediction log: the writer did not catch up in %.0f s; queued rows are lost", timeout)
            self._thread.join(timeout)
        self.store.close()

    def _run(self) -> None:
        running = True
        while running:
            batch = [self._queue.get()]
            time.sleep(LINGER)  # let requests gather rather than wake up for each
            while len(batch) <= BATCH and batch[-1] is not None:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            running = batch[-1] is not None
            scored = [item for item in batch if item is not None]
            if scored:
                self._write(scored)

    def _write(self, batch: list[Scored]) -> None:
        rows = sum(len(item.labels) for item in batch)
        try:
            probabilities = _probabilities(batch)
            records = [r for item, proba in zip(batch, probabilities, strict=True) for r in _records(item, proba)]
            self.written += self.store.write(records)
        except Exception as exc:  # the log is broken for now: keep serving, say so
            self._lose(rows, f"cannot log to {self.store.path}: {type(exc).__name__}: {exc}")
        finally:
            self._done(len(batch))

    def _done(self, requests: int) -> None:
        with self._idle:
            self._pending -= requests
            self._idle.notify_all()

    def _lose(self, rows: int, why: str) -> None:
        self.lost += rows
        now = time.monotonic()
        if now - self._last_warning >= WARN_EVERY:
            self._last_warning = now
            log.warning(
                "prediction log: %s; %d row(s) not logged so far (requests are answered as usual)", why, self.lost
            )


def _probabilities(batch: list[Scored]) -> list[list[list[float]] | None]:
    """The class probabilities of every request of ``batch``: as answered, else one call per model for all the
    requests that have none (None when the model gives no probabilities)."""
    found = [item.probabilities for item in batch]
    missing: dict[int, list[int]] = {}
    for i, item in enumerate(batch):
        if found[i] is None and item.model.sklearn and item.model.classes:
            missing.setdefault(id(item.model), []).append(i)
    for indexes in missing.values():
        model = batch[indexes[0]].model
        stacked = np.vstack([batch[i].matrix for i in indexes])
        proba = np.round(model.model.predict_proba(model.frame(stacked)), 6).tolist()
        start = 0
        for i in indexes:
            found[i] = proba[start : start + len(batch[i].labels)]
            start += len(batch[i].labels)
    return found


def _records(item: Scored, probabilities: list[list[float]] | None) -> list[PredictionRecord]:
    model = item.model
    classes = [str(c) for c in model.classes]
    when = moment(item.ts)
    # built unvalidated: every field comes from the server's own checked input, model and clock (validation would
    # cost more than the rest of logging a row)
    return [
        PredictionRecord.model_construct(
            request_id=item.request_id,
            row=i,
            ts=when,
            model=model.ref.name,
            version=model.version,
            endpoint=item.endpoint,
            features=dict(zip(model.features, map(float, values), strict=True)),
            prediction=str(label),
            probabilities=dict(zip(classes, probabilities[i], strict=True)) if probabilities is not None else None,
            latency_ms=item.latency_ms,
        )
        for i, (values, label) in enumerate(zip(item.matrix.tolist(), item.labels, strict=True))
    ]
