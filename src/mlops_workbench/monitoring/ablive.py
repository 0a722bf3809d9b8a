"""The I/O of a live A/B test (lab 08): a day of seeded traffic through the router, its labels later, and the
test's rows of the prediction log.

The model servers log every prediction they make under the request id the sender chose
(:mod:`mlops_workbench.monitoring.recorder`), so a test that names its requests ``<prefix>-d<day>-<i>``
(:func:`mlops_workbench.strategies.abcount.request_id`) finds its own rows again, whichever version answered.
:func:`send_day` sends one day of seeded Iris-like traffic through the router and returns the truth the label feed
needs; :func:`deliver` waits until the servers have logged that day's requests, then lets the feed label its
chosen share of them; :func:`logged` reads the test's rows back with the labels joined. Counting them per version
is pure and lives in :mod:`mlops_workbench.strategies.abcount`.
"""

from __future__ import annotations

import secrets
import time
from typing import TYPE_CHECKING

from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.monitoring import scenarios
from mlops_workbench.monitoring.labels import LabelFeed, Truth
from mlops_workbench.monitoring.predictions import PredictionLog, PredictionRecord
from mlops_workbench.strategies import abcount
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlops_workbench.monitoring.scenarios import Sender


def new_prefix() -> str:
    """A prefix no earlier test of the state folder used (``ab-<8 hex digits>``), so a rerun never counts the
    rows of an earlier run."""
    return f"ab-{secrets.token_hex(4)}"


def send_day(router: Sender, prefix: str, day: int, seed: int, rows: int = 60) -> dict[str, str]:
    """Send ``rows`` seeded Iris-like requests through ``router`` as day ``day`` of the test ``prefix`` (one row
    per request, named ``<prefix>-d<day>-<i>``); returns ``{request id: true class}`` of those answered."""
    if day < 1:
        raise InputError(f"day={day}: the days of a test are numbered from 1.")
    frame = scenarios.traffic(seed * 1000 + day, rows)
    return scenarios.replay(router, frame, abcount.day_prefix(prefix, day))


def deliver(wb: Workbench, truth: Truth, feed: LabelFeed, timeout: float = 60.0) -> int:
    """Wait (up to ``timeout`` seconds) until every request of ``truth`` is in the prediction log (the servers
    write off the request path, a moment later), then let ``feed`` label the ones it chooses; returns how many
    labels arrived."""
    ids = list(truth)
    log = PredictionLog(wb)
    try:
        deadline = time.monotonic() + timeout
        while True:
            found = {r.request_id for r in log.query(request_ids=ids)} if ids else set()
            if len(found) == len(ids):
                break
            if time.monotonic() > deadline:
                raise ServiceError(
                    f"{len(ids) - len(found)} of {len(ids)} answered requests never reached the prediction log "
                    f"{log.path} within {timeout:.0f} s: are the model servers started by the workbench "
                    "(`workbench serve` logs every prediction)?"
                )
            time.sleep(0.1)
        return feed.deliver(log, truth)
    finally:
        log.close()


def logged(wb: Workbench, prefix: str, *, labelled: bool | None = None) -> list[PredictionRecord]:
    """The rows of the A/B test ``prefix`` in the prediction log, oldest first, labels joined (only labelled rows
    with ``labelled=True``)."""
    log = PredictionLog(wb)
    try:
        return [r for r in log.query(labelled=labelled) if abcount.day_of(r.request_id, prefix) is not None]
    finally:
        log.close()
