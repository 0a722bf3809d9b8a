"""Open-loop, seeded load generator drawing realistic Iris-like feature vectors.

Requests leave on a seeded Poisson schedule at ``rps`` whatever the server does
(open loop: a slow server does not slow the load down, as with real users). At most
``max_in_flight`` requests wait for an answer at once: a request due while that many are
pending is dropped and counted in :attr:`LoadResult.dropped`, as arrival-rate load tools
do. Without the cap, an overloaded machine piles up thousands of pending requests, and the
client's own connection pool then spends its CPU sorting them instead of sending.
Each outcome (send time, latency, status, upstream that served it, predicted
class) is recorded client-side; :meth:`LoadResult.summary` aggregates per upstream.
"""

from __future__ import annotations

import asyncio
import threading
import time
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from mlops_workbench.errors import InputError
from mlops_workbench.serving import paths
from mlops_workbench.serving.client import AsyncTraffic, RouterClient

MAX_IN_FLIGHT = 200  # pending requests at most; more and the client itself becomes the bottleneck


@lru_cache(maxsize=1)
def _iris() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_iris

    X = load_iris().data.astype(float)
    return X, X.std(axis=0)


def iris_like(rng: np.random.Generator, n: int) -> np.ndarray:
    """``n`` feature vectors: real Iris rows plus small seeded noise (10% of each feature's spread), in cm."""
    X, spread = _iris()
    rows = X[rng.integers(0, len(X), size=n)]
    return np.clip(rows + rng.normal(0.0, 0.1 * spread, size=rows.shape), 0.1, 9.9).round(2)


@dataclass
class Outcome:
    """One request as the client saw it."""

    sent: float  # unix time
    latency: float  # seconds (until the answer or the error)
    status: int  # HTTP status, 0 when the connection failed
    upstream: str | None = None
    prediction: str | None = None


@dataclass
class LoadResult:
    url: str
    rps: float
    duration: float
    seed: int
    outcomes: list[Outcome] = field(default_factory=list)
    dropped: int = 0  # due while max_in_flight requests were pending: never sent

    def summary(self) -> dict[str, dict[str, Any]]:
        """Per upstream (and ``all``): requests, errors (5xx or no answer), error rate, p50/p99 latency (ms)."""
        groups: dict[str, list[Outcome]] = {"all": self.outcomes}
        for o in self.outcomes:
            groups.setdefault(o.upstream or "none", []).append(o)
        out = {}
        for name, items in groups.items():
            lat = np.array([o.latency for o in items]) * 1000 if items else np.array([0.0])
            errors = sum(1 for o in items if o.status == 0 or o.status >= 500)
            out[name] = {
                "requests": len(items),
                "errors": errors,
                "error_rate": errors / len(items) if items else 0.0,
                "p50_ms": float(np.percentile(lat, 50)),
                "p99_ms": float(np.percentile(lat, 99)),
            }
        return out

    def to_records(self) -> list[dict[str, Any]]:
        return [asdict(o) for o in self.outcomes]


async def _one(traffic: AsyncTraffic, features: list[float], result: LoadResult) -> None:
    sent, t0 = time.time(), time.perf_counter()
    reply = await traffic.send([features])
    prediction = reply.prediction()
    result.outcomes.append(Outcome(sent, time.perf_counter() - t0, reply.status, reply.upstream, prediction))


async def run_async(
    url: str,
    rps: float,
    duration: float,
    seed: int = 0,
    path: str = paths.PREDICT,
    stop: threading.Event | None = None,
    timeout: float = 10.0,
    max_in_flight: int = MAX_IN_FLIGHT,
) -> LoadResult:
    """Send Poisson(``rps``) requests for ``duration`` seconds (or until ``stop`` is set).

    At the end, pending requests get ``timeout`` seconds to finish and are then cancelled.
    """
    if rps <= 0 or duration <= 0 or max_in_flight < 1:
        raise InputError(
            f"rps, duration and max_in_flight must be positive (got rps={rps}, duration={duration}, "
            f"max_in_flight={max_in_flight})"
        )
    rng = np.random.default_rng(seed)
    result = LoadResult(url, rps, duration, seed)
    # the router and a model server answer prediction paths alike: either can be the target
    async with RouterClient(url).async_traffic(path, timeout=timeout, max_connections=max_in_flight) as traffic:
        tasks: set[asyncio.Task[None]] = set()
        start = time.perf_counter()
        due = 0.0
        batch = iris_like(rng, 1024)
        i = 0
        while due < duration and not (stop and stop.is_set()):
            delay = start + due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if i == len(batch):
                batch, i = iris_like(rng, 1024), 0
            if len(tasks) >= max_in_flight:
                result.dropped += 1
            else:
                task = asyncio.create_task(_one(traffic, batch[i].tolist(), result))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
            i += 1
            due += float(rng.exponential(1.0 / rps))
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout + 1)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
    result.outcomes.sort(key=lambda o: o.sent)
    return result


def run(url: str, rps: float, duration: float, seed: int = 0, path: str = paths.PREDICT) -> LoadResult:
    """Blocking :func:`run_async` (what ``workbench load`` does)."""
    return asyncio.run(run_async(url, rps, duration, seed, path))


class BackgroundLoad:
    """Load in a background thread (for notebooks and tests): ``start()``, then ``stop()`` -> result."""

    def __init__(self, url: str, rps: float, duration: float = 3600.0, seed: int = 0, path: str = paths.PREDICT):
        self.args = (url, rps, duration, seed, path)
        self._stop = threading.Event()
        self.result: LoadResult | None = None
        self._thread = threading.Thread(target=self._main, daemon=True, name="workbench-load")

    def _main(self) -> None:
        url, rps, duration, seed, path = self.args
        self.result = asyncio.run(run_async(url, rps, duration, seed, path, stop=self._stop))

    def start(self) -> BackgroundLoad:
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> LoadResult | None:
        self._stop.set()
        self._thread.join(timeout)
        return self.result

    def __enter__(self) -> BackgroundLoad:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
