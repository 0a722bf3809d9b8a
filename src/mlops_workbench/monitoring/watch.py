"""The monitor service's own drift scorer: the latest window of the prediction log against the watched version's
training reference.

A :class:`Watch` says what to watch: a registered model, and either one version or (the default) whichever version
its ``production`` alias points to, resolved again on each scoring so a release is followed without a restart; and
the window, the last N predictions of that version or those of the last T seconds. :class:`LogScorer` is the
:data:`~mlops_workbench.monitoring.exporter.Scorer` the service runs on each scrape: it reads the window
(:mod:`~.predictions`), loads the version's reference statistics once (:mod:`~.reference`), measures drift with
:func:`~.drift.detect` and answers the PSI of each feature and of the predictions as
:class:`~.exporter.DriftScores`. An empty window exports no gauge; :meth:`LogScorer.status` (the service's
``/status``) says why. A scorer that cannot work (no such model, no production alias, no reference) raises, so the
exporter's ``workbench_drift_scorer_up`` reads 0, and its status names the fix.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops_workbench.alias import Alias
from mlops_workbench.errors import InputError, WorkbenchError
from mlops_workbench.monitoring import drift
from mlops_workbench.monitoring.predictions import PredictionLog, Window, moment
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlops_workbench.datastats import ReferenceStats
    from mlops_workbench.monitoring.exporter import DriftScores

DEFAULT_LAST = 300
"""Predictions in the window when neither ``last`` nor ``seconds`` is given (KS and PSI need a few hundred)."""


class Watch(BaseModel):
    """What the monitor scores: ``model`` at ``version`` (None: its production alias), over the last ``last``
    predictions or those of the last ``seconds`` seconds."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    version: str | None = Field(None, min_length=1, description="None: the version production points to now")
    last: int | None = Field(None, ge=1, description="the window is the last N predictions of the version")
    seconds: float | None = Field(None, gt=0, description="the window is the predictions of the last T seconds")

    @model_validator(mode="after")
    def _one_window(self) -> Self:
        if self.last is not None and self.seconds is not None:
            raise ValueError("give the window as the last N predictions or the last T seconds, not both")
        if self.last is None and self.seconds is None:
            self.last = DEFAULT_LAST
        return self

    def describe(self) -> str:
        version = f"version {self.version}" if self.version else f"the version @{Alias.PRODUCTION} points to"
        window = f"the last {self.last} predictions" if self.last else f"the last {self.seconds:g} s"
        return f"{self.model} ({version}) over {window}"


class Outcome(StrEnum):
    """How the last scoring went."""

    WAITING = "waiting"  # not scored yet
    SCORED = "scored"
    EMPTY = "empty"  # no prediction in the window: no gauge
    FAILED = "failed"  # the scorer cannot work: no gauge, scorer_up 0


class ScorerStatus(BaseModel):
    """What ``/status`` says about the scorer."""

    model_config = ConfigDict(extra="forbid")

    watch: Watch
    outcome: Outcome
    version: str | None = None
    rows: int = 0
    at: datetime | None = None
    reason: str


def read_window(log: PredictionLog, watch: Watch, version: str, now: float) -> Window:
    """The window ``watch`` names of ``version``, as the log holds it at ``now`` (seconds since the epoch)."""
    if watch.seconds is not None:
        return log.window(watch.model, version, now - watch.seconds, now + 1.0)
    rows = log.query(model=watch.model, version=version, last=watch.last)
    start, end = (rows[0].ts, rows[-1].ts) if rows else (moment(now), moment(now))
    return Window(model=watch.model, version=version, start=start, end=end, rows=rows)


def empty_reason(watch: Watch, version: str) -> str:
    """Why nothing was exported for an empty window, and what to do."""
    where = f"in the last {watch.seconds:g} s" if watch.seconds is not None else "in the prediction log"
    return (
        f"no prediction of {watch.model} version {version} {where}, so no drift gauge: send traffic to it"
        + (" or widen the window (--window-seconds)" if watch.seconds is not None else "")
        + "."
    )


class LogScorer:
    """The scorer the monitor service runs (see the module); safe to call from several threads."""

    def __init__(
        self,
        wb: Workbench,
        watch: Watch,
        clock: Callable[[], float] = time.time,
        references: Mapping[str, ReferenceStats] | None = None,
    ) -> None:
        """``references`` (version -> statistics) are used as loaded; other versions are loaded from the registry."""
        self.wb, self.watch, self.clock = wb, watch, clock
        self._references: dict[str, ReferenceStats] = dict(references or {})
        self._lock = threading.Lock()
        self._status = ScorerStatus(watch=watch, outcome=Outcome.WAITING, reason="not scraped yet")

    def version(self) -> str:
        """The watched version: the one named, or the one production points to now."""
        if self.watch.version:
            return self.watch.version
        from mlops_workbench import registry

        found = registry.get_alias(self.wb, self.watch.model, Alias.PRODUCTION)
        if found is None:
            raise InputError(
                f"{self.watch.model} has no @{Alias.PRODUCTION} alias, so there is no version to watch: release one "
                "(`workbench registry release`) or name the version (--watch-version)."
            )
        return str(found.version)

    def reference(self, version: str) -> ReferenceStats:
        if version not in self._references:
            from mlops_workbench.monitoring import reference

            self._references[version] = reference.load(self.wb, self.watch.model, version)
        return self._references[version]

    def status(self) -> ScorerStatus:
        return self._status

    def __call__(self) -> list[DriftScores]:
        with self._lock:
            now, version = self.clock(), None
            try:
                version = self.version()
                ref = self.reference(version)
                log = PredictionLog(self.wb)
                try:
                    window = read_window(log, self.watch, version, now)
                finally:
                    log.close()
                if not window.rows:
                    self._set(Outcome.EMPTY, version, 0, now, empty_reason(self.watch, version))
                    return []
                report = drift.detect(ref, window, predictions=True)
            except Exception as err:  # exported as scorer_up 0; the reason goes to /status
                reason = str(err) if isinstance(err, WorkbenchError) else f"{type(err).__name__}: {err}"
                self._set(Outcome.FAILED, version, 0, now, reason)
                raise
            drifted = ", ".join(report.drifted_features) or "none"
            self._set(
                Outcome.SCORED, version, report.rows, now, f"{report.rows} predictions scored; drifted: {drifted}"
            )
            return [report.scores()]

    def _set(self, outcome: Outcome, version: str | None, rows: int, now: float, reason: str) -> None:
        self._status = ScorerStatus(
            watch=self.watch, outcome=outcome, version=version, rows=rows, at=moment(now), reason=reason
        )


def check(wb: Workbench, watch: Watch) -> str:
    """The version ``watch`` scores now, its reference loaded: raises (naming the fix) for an unknown model, no
    production alias or a version without reference statistics. What ``monitor up`` asks before starting anything."""
    scorer = LogScorer(wb, watch)
    version = scorer.version()
    scorer.reference(version)
    return version
