"""Fault injection for the model server: errors, added latency, a crash after N requests.

The server applies a :class:`Faults` to every prediction request (``/predict`` and
``/invocations``; health, metrics and admin endpoints are never faulted, so a
faulty server can still be observed and repaired). Faults are set at start
(``workbench serve --fault-error-rate 0.2``) or at run time with
``POST /admin/faults``.
"""

from __future__ import annotations

import random
import threading
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

MAX_INT = 2**53 - 1
"""The largest whole number every JSON reader keeps exactly (many parse numbers as doubles)."""


def _whole(value: Any) -> Any:
    """JSON has one number type: ``3.0`` is the whole number 3 (as JSON Schema says); ``3.5`` stays refused."""
    return int(value) if isinstance(value, float) and value.is_integer() and abs(value) <= MAX_INT else value


Count = Annotated[int, Field(ge=1, le=MAX_INT), BeforeValidator(_whole)]
Seed = Annotated[int, Field(ge=0, le=MAX_INT), BeforeValidator(_whole)]


class Faults(BaseModel):
    """What goes wrong on purpose.

    ``error_rate``: fraction of prediction requests answered with HTTP 500 (seeded RNG,
    so a run is repeatable); ``latency_ms``: delay added to every prediction request;
    ``crash_after``: the process exits (code 3) once it has answered that many
    prediction requests; ``seed``: seed of the error RNG.
    """

    # strict: a boolean is no number and "0.5" no rate; integers stay within MAX_INT, so every value set
    # can be written back as JSON (a larger one used to be accepted, then broke GET /admin/faults)
    model_config = ConfigDict(extra="forbid", strict=True)

    error_rate: float = Field(0.0, ge=0.0, le=1.0, description="fraction of prediction requests answered 500")
    latency_ms: float = Field(0.0, ge=0.0, le=60_000.0, description="milliseconds added to each prediction request")
    crash_after: Count | None = Field(None, description="exit the process after this many prediction requests")
    seed: Seed = Field(0, description="seed of the RNG that picks failing requests")

    @property
    def active(self) -> bool:
        return self.error_rate > 0 or self.latency_ms > 0 or self.crash_after is not None


CRASH_EXIT_CODE = 3


class FaultInjector:
    """Holds the current :class:`Faults` and decides, request by request, what to inject.

    Thread-safe: the decision for one request is taken under a lock, so the
    error fraction and the crash count are exact under concurrency.
    """

    def __init__(self, faults: Faults | None = None) -> None:
        self._lock = threading.Lock()
        self.served = 0
        self.set(faults or Faults())

    @property
    def faults(self) -> Faults:
        return self._faults

    def set(self, faults: Faults) -> Faults:
        """Replace the faults (and reseed the RNG); the crash count restarts from zero."""
        with self._lock:
            self._faults = faults
            self._rng = random.Random(faults.seed)
            self.served = 0
        return faults

    def decide(self) -> tuple[float, bool, bool]:
        """For one prediction request: (delay in seconds, answer 500?, exit after answering?)."""
        with self._lock:
            faults = self._faults
            self.served += 1
            fail = faults.error_rate > 0 and self._rng.random() < faults.error_rate
            crash = faults.crash_after is not None and self.served >= faults.crash_after
            return faults.latency_ms / 1000.0, fail, crash
