"""The prediction log: every prediction the model servers of a state folder made, and the labels that came later.

One sqlite file (``wb.layout.predictions``) in WAL mode, so several server processes append while a
notebook reads: each write is one short ``BEGIN IMMEDIATE`` transaction and a writer that finds the file locked
waits (``timeout``) instead of failing. A row is one scored input row: the request id the server answered with
(``x-request-id``), the row's place in its request, the time, model name and version, the input features by
name, the predicted class, the class probabilities and the request's latency. Labels arrive later, keyed by
request id and row (:mod:`mlops_workbench.monitoring.labels`), and are joined on every query.

The model server never writes here itself: :mod:`mlops_workbench.monitoring.recorder` does, off the request path
(``workbench serve`` hands the server one; request ids are made by :func:`mlops_workbench.serving.payloads.request_id`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    import pandas as pd

Moment = datetime | float
"""A point in time: an aware datetime (a naive one is read as UTC) or seconds since the epoch."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS predictions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    request_id TEXT NOT NULL, row INTEGER NOT NULL, ts REAL NOT NULL, model TEXT NOT NULL, version TEXT NOT NULL,
    endpoint TEXT NOT NULL, features TEXT NOT NULL, prediction TEXT NOT NULL, probabilities TEXT,
    confidence REAL, latency_ms REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS predictions_by_version ON predictions (model, version, ts);
CREATE INDEX IF NOT EXISTS predictions_by_request ON predictions (request_id, row);
CREATE TABLE IF NOT EXISTS labels (
    request_id TEXT NOT NULL, row INTEGER NOT NULL, label TEXT NOT NULL, ts REAL NOT NULL,
    PRIMARY KEY (request_id, row)
);
"""
_COLUMNS = "request_id, row, ts, model, version, endpoint, features, prediction, probabilities, confidence, latency_ms"
_SELECT = (
    "SELECT p.request_id, p.row, p.ts, p.model, p.version, p.endpoint, p.features, p.prediction, p.probabilities, "
    "p.latency_ms, l.label FROM predictions p LEFT JOIN labels l ON l.request_id = p.request_id AND l.row = p.row"
)


class PredictionRecord(BaseModel):
    """One scored row, as logged (``label`` is None until the label feed delivered the true class)."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64)
    row: int = Field(default=0, ge=0, description="the row's place in its request (0 for a one-row request)")
    ts: datetime
    model: str
    version: str
    endpoint: str
    features: dict[str, float]
    prediction: str
    probabilities: dict[str, float] | None = None
    latency_ms: float = Field(ge=0)
    label: str | None = None

    @property
    def confidence(self) -> float | None:
        """The probability of the predicted class (the largest one), when the model gives probabilities."""
        return max(self.probabilities.values()) if self.probabilities else None


class LabelRecord(BaseModel):
    """The true class of one logged row, arrived at ``ts``."""

    model_config = ConfigDict(extra="forbid")

    request_id: str = Field(min_length=1, max_length=64)
    row: int = Field(default=0, ge=0)
    label: str
    ts: datetime


class Window(BaseModel):
    """The predictions of one model (one version, or all when ``version`` is None) in ``[start, end)``."""

    model_config = ConfigDict(extra="forbid")

    model: str
    version: str | None
    start: datetime
    end: datetime
    rows: list[PredictionRecord]

    def describe(self) -> str:
        """``model iris version 3 between 2026-05-01T10:00:00+00:00 and ...``, for messages."""
        which = f"version {self.version}" if self.version is not None else "any version"
        return f"model {self.model} {which} between {self.start.isoformat()} and {self.end.isoformat()}"

    def frame(self) -> pd.DataFrame:
        """One row per prediction: request_id, row, ts, version, every feature, prediction, confidence, label."""
        import pandas as pd

        columns = ["request_id", "row", "ts", "version", *self.feature_names(), "prediction", "confidence", "label"]
        return pd.DataFrame(
            [
                {"request_id": r.request_id, "row": r.row, "ts": r.ts, "version": r.version}
                | r.features
                | {"prediction": r.prediction, "confidence": r.confidence, "label": r.label}
                for r in self.rows
            ],
            columns=columns,
        )

    def feature_names(self) -> list[str]:
        """The input features of the window's rows, in the order the first row has them."""
        return list(self.rows[0].features) if self.rows else []


def epoch(moment: Moment) -> float:
    """Seconds since the epoch of ``moment`` (a naive datetime is read as UTC)."""
    if isinstance(moment, datetime):
        return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).timestamp()
    return float(moment)


def moment(seconds: Moment) -> datetime:
    """``seconds`` (or a datetime) as an aware UTC datetime."""
    return datetime.fromtimestamp(epoch(seconds), UTC)


class PredictionLog:
    """The sqlite prediction log at ``path`` (default: the state folder's). Safe to share between threads; every
    process opens its own. The file and its folder are made by the first write or query."""

    def __init__(self, wb: Workbench, path: Path | None = None, *, timeout: float = 10.0) -> None:
        self.path = Path(path) if path is not None else wb.layout.predictions
        self.timeout = timeout
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    def _db(self) -> sqlite3.Connection:
        if self._connection is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")  # WAL stays consistent; a power cut may lose the last rows
            db.executescript(_SCHEMA)
            self._connection = db
        return self._connection

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None

    def _write(self, sql: str, rows: list[tuple[Any, ...]]) -> int:
        with self._lock:
            db = self._db()
            before = db.total_changes
            db.execute("BEGIN IMMEDIATE")
            try:
                db.executemany(sql, rows)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
            return db.total_changes - before

    def write(self, records: Sequence[PredictionRecord]) -> int:
        """Append ``records`` in one transaction; returns how many were written."""
        rows = [
            (
                r.request_id,
                r.row,
                epoch(r.ts),
                r.model,
                r.version,
                r.endpoint,
                json.dumps(r.features),
                r.prediction,
                json.dumps(r.probabilities) if r.probabilities is not None else None,
                r.confidence,
                r.latency_ms,
            )
            for r in records
        ]
        return self._write(f"INSERT INTO predictions ({_COLUMNS}) VALUES ({', '.join('?' * 11)})", rows)

    def add_labels(self, labels: Iterable[LabelRecord]) -> int:
        """Store labels; a row labelled before keeps its first label. Returns how many were new."""
        rows = [(x.request_id, x.row, x.label, epoch(x.ts)) for x in labels]
        return self._write("INSERT OR IGNORE INTO labels (request_id, row, label, ts) VALUES (?, ?, ?, ?)", rows)

    def query(
        self,
        *,
        model: str | None = None,
        version: str | int | None = None,
        start: Moment | None = None,
        end: Moment | None = None,
        last: int | None = None,
        labelled: bool | None = None,
        request_ids: Sequence[str] | None = None,
    ) -> list[PredictionRecord]:
        """Logged predictions, oldest first, with their labels joined: of ``model`` / ``version`` when given, in
        ``[start, end)``, only the ``last`` N, only labelled (True) or unlabelled (False) rows, of ``request_ids``."""
        if last is not None and last < 1:
            raise InputError(f"last={last}: ask for at least 1 prediction, or leave it out for all of them.")
        where, args = self._filters(model, version, start, end, labelled, request_ids)
        sql = f"{_SELECT}{where} ORDER BY p.id DESC" + (f" LIMIT {int(last)}" if last is not None else "")
        with self._lock:
            found = self._db().execute(sql, args).fetchall()
        return [_record(row) for row in reversed(found)]

    def window(self, model: str, version: str | int | None, start: Moment, end: Moment) -> Window:
        """The predictions of ``model`` (``version``, or every version when None) in ``[start, end)``."""
        if epoch(end) <= epoch(start):
            raise InputError(f"The window ends ({moment(end)}) before it starts ({moment(start)}): swap them.")
        rows = self.query(model=model, version=version, start=start, end=end)
        version = str(version) if version is not None else None
        return Window(model=model, version=version, start=moment(start), end=moment(end), rows=rows)

    def prune(self, before: Moment) -> int:
        """Delete the predictions logged before ``before`` and the labels of those rows, in one transaction;
        returns how many predictions went. The log otherwise keeps every prediction for as long as the state
        folder lives (``workbench monitor prune --keep-days N`` runs this). sqlite reuses the freed pages for
        later rows; the file itself does not shrink."""
        cutoff = epoch(before)
        with self._lock:
            db = self._db()
            db.execute("BEGIN IMMEDIATE")
            try:
                gone = db.execute("DELETE FROM predictions WHERE ts < ?", (cutoff,)).rowcount
                db.execute(
                    "DELETE FROM labels WHERE NOT EXISTS (SELECT 1 FROM predictions p "
                    "WHERE p.request_id = labels.request_id AND p.row = labels.row)"
                )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return int(gone)

    def count(self, *, model: str | None = None, version: str | int | None = None) -> int:
        where, args = self._filters(model, version, None, None, None, None)
        with self._lock:
            return int(self._db().execute(f"SELECT count(*) FROM ({_SELECT}{where})", args).fetchone()[0])

    @staticmethod
    def _filters(
        model: str | None,
        version: str | int | None,
        start: Moment | None,
        end: Moment | None,
        labelled: bool | None,
        request_ids: Sequence[str] | None,
    ) -> tuple[str, list[Any]]:
        clauses: list[str] = []
        args: list[Any] = []
        for clause, value in (
            ("p.model = ?", model),
            ("p.version = ?", None if version is None else str(version)),
            ("p.ts >= ?", None if start is None else epoch(start)),
            ("p.ts < ?", None if end is None else epoch(end)),
        ):
            if value is not None:
                clauses.append(clause)
                args.append(value)
        if labelled is not None:
            clauses.append("l.label IS NOT NULL" if labelled else "l.label IS NULL")
        if request_ids is not None:
            clauses.append(f"p.request_id IN ({', '.join('?' * len(request_ids))})")
            args.extend(request_ids)
        return (" WHERE " + " AND ".join(clauses) if clauses else ""), args


def _record(row: tuple[Any, ...]) -> PredictionRecord:
    request_id_, number, ts, model, version, endpoint, features, prediction, probabilities, latency, label = row
    return PredictionRecord(
        request_id=request_id_,
        row=number,
        ts=moment(ts),
        model=model,
        version=version,
        endpoint=endpoint,
        features=json.loads(features),
        prediction=prediction,
        probabilities=json.loads(probabilities) if probabilities is not None else None,
        latency_ms=latency,
        label=label,
    )
