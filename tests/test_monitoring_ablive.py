"""The I/O of a live A/B test without servers: a day of seeded requests named for the test, labels delivered only
once the day's rows are in the prediction log, and the test's rows read back apart from other traffic."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.monitoring import ablive
from mlops_workbench.monitoring.labels import LabelFeed
from mlops_workbench.monitoring.predictions import PredictionLog, PredictionRecord
from mlops_workbench.serving.client import Reply


class Router:
    """Answers every request 200 and remembers its id, as the router does."""

    def __init__(self) -> None:
        self.sent: list[str] = []

    def send(self, rows: list[list[float]], *, request_id: str | None = None) -> Reply:
        self.sent.append(str(request_id))
        return Reply(200, '{"predictions": ["setosa"]}', "stable", request_id=request_id)


def logged_row(request_id: str, version: str = "1") -> PredictionRecord:
    return PredictionRecord(
        request_id=request_id,
        ts=datetime.now(UTC),
        model="iris",
        version=version,
        endpoint="/predict",
        features={"sepal_length": 5.1},
        prediction="setosa",
        latency_ms=1.0,
    )


def test_a_day_is_seeded_and_named_for_the_test():
    router = Router()
    truth = ablive.send_day(router, "ab-1234", 3, seed=8, rows=5)
    assert router.sent == [f"ab-1234-d3-{i}" for i in range(5)] and list(truth) == router.sent
    assert truth == ablive.send_day(Router(), "ab-1234", 3, seed=8, rows=5), "the same seed, the same truth"
    assert set(truth.values()) <= {"setosa", "versicolor", "virginica"}
    with pytest.raises(InputError, match="numbered from 1"):
        ablive.send_day(router, "ab-1234", 0, seed=8)
    assert ablive.new_prefix() != ablive.new_prefix()


def test_labels_wait_for_the_servers_to_log_the_day(wb):
    truth = {f"ab-1-d1-{i}": "setosa" for i in range(20)}
    log = PredictionLog(wb)
    log.write([logged_row("other-0"), *[logged_row(rid) for rid in list(truth)[:10]]])
    late = threading.Timer(0.5, lambda: PredictionLog(wb).write([logged_row(rid) for rid in list(truth)[10:]]))
    late.start()
    try:
        delivered = ablive.deliver(wb, truth, LabelFeed(fraction=1.0), timeout=30)
    finally:
        late.join()
    assert delivered == 20, "every row of the day was labelled, the late ones too"
    rows = ablive.logged(wb, "ab-1", labelled=True)
    assert [r.request_id for r in rows] == list(truth) and all(r.label == "setosa" for r in rows)
    assert [r.request_id for r in ablive.logged(wb, "ab-2")] == []


def test_a_day_that_never_reaches_the_log_is_a_clear_error(wb):
    with pytest.raises(ServiceError, match="1 of 1 answered requests never reached the prediction log"):
        ablive.deliver(wb, {"ab-1-d1-0": "setosa"}, LabelFeed(), timeout=0.5)
