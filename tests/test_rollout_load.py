"""The open-loop load generator against a server that accepts connections and never answers."""

from __future__ import annotations

import asyncio
import socket

import pytest

from mlops_workbench.errors import InputError
from mlops_workbench.rollout import load


@pytest.fixture
def silent_server():
    """A listening socket nobody reads: connections open, no answer ever comes."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1024)
    yield f"http://127.0.0.1:{srv.getsockname()[1]}"
    srv.close()


def test_pending_requests_are_capped_and_the_rest_dropped_not_queued(silent_server):
    result = asyncio.run(load.run_async(silent_server, rps=200, duration=1.0, seed=1, timeout=3.0, max_in_flight=20))
    # about 200 requests fall due in the second; only 20 may wait at once, and none of them is answered
    assert len(result.outcomes) == 20
    assert all(o.status == 0 for o in result.outcomes)
    assert result.dropped + len(result.outcomes) > 150
    assert result.summary()["all"]["errors"] == 20


def test_a_bad_cap_is_refused():
    with pytest.raises(InputError, match="max_in_flight=0"):
        asyncio.run(load.run_async("http://127.0.0.1:9", rps=1, duration=1, max_in_flight=0))
