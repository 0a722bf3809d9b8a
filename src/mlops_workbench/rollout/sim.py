"""A simulated canary runtime on a virtual clock: try a rollout loop in milliseconds, without any server.

A rollout loop written against the building blocks (a router with ``set_weight``/``weight``,
a metrics source with ``window(start, end)``, a ``promote()`` callable, a ``clock`` and a
``sleep``) runs unchanged here: :class:`Simulation` gives each of them. Time moves only when
the loop sleeps; traffic is drawn per 0.25 s bin (Poisson at ``rps``, split by the weight the
loop set at that moment, errors binomial), like :mod:`mlops_workbench.rollout.replay`, so a loop
that never raises the weight sees no canary requests. Faults: an error rate, a latency that
pushes every canary request into a slow bucket, each from ``fault_at`` seconds after the canary
first took traffic, for ``fault_for`` seconds (a burst) or to the end; ``metrics_down`` makes every read raise
:class:`~mlops_workbench.rollout.metrics.MetricsUnavailable`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError
from mlops_workbench.rollout.metrics import MetricsUnavailable, Snapshot

BIN_S = 0.25
LABELS = ("setosa", "versicolor", "virginica")
FAST_S, SLOW_S = 0.01, 0.5  # the latency buckets of healthy and slowed requests


class Scenario(BaseModel):
    """What the simulated canary does."""

    model_config = ConfigDict(extra="forbid")
    rps: float = Field(gt=0, description="client requests per second through the router")
    error_rate: float = Field(0.005, ge=0, le=1, description="healthy error rate of both versions")
    fault_error_rate: float = Field(0.0, ge=0, le=1, description="canary error rate once the fault starts")
    fault_slow: bool = Field(False, description="once the fault starts, every canary request is slow")
    fault_at: float | None = Field(None, ge=0, description="seconds after the canary first took traffic")
    fault_for: float | None = Field(None, gt=0, description="seconds the fault lasts (None: to the end)")
    metrics_down: bool = Field(False, description="every metrics read fails")
    seed: int = 0


@dataclass
class Counters:
    """Cumulative counts per version (``canary``, ``stable``)."""

    requests: dict[str, int] = field(default_factory=lambda: {"canary": 0, "stable": 0})
    errors: dict[str, int] = field(default_factory=lambda: {"canary": 0, "stable": 0})
    slow: dict[str, int] = field(default_factory=lambda: {"canary": 0, "stable": 0})


class Simulation:
    """Router, metrics, clock, sleep and promote of one simulated rollout (see the module docs)."""

    name = "simulation"

    def __init__(self, scenario: Scenario, max_seconds: float = 3600.0) -> None:
        self.scenario = scenario
        self.max_seconds = max_seconds
        self.now = 0.0
        self.weight_now = 0.0
        self.weights: list[tuple[float, float]] = []  # (t, weight) of every set_weight
        self.promoted_at: list[float] = []
        self.exposed_at: float | None = None  # when the canary first took traffic
        self._rng = np.random.default_rng(scenario.seed)
        self._history: list[tuple[float, Counters]] = [(0.0, Counters())]
        self.router, self.metrics = _Router(self), _Metrics(self)

    # --- the building blocks a loop gets --------------------------------------------------------
    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        if not isinstance(seconds, (int, float)) or seconds < 0 or math.isnan(seconds):
            raise InputError(f"sleep({seconds!r}): sleep takes a number of seconds >= 0")
        target = self.now + max(float(seconds), 1e-3)
        if target > self.max_seconds:
            raise TimeoutError(
                f"the simulated rollout ran past {self.max_seconds:g}s of virtual time: the loop "
                "never ends; return once the last step is done or the analysis failed"
            )
        while self._history[-1][0] + BIN_S <= target:
            self._bin()
        self.now = target

    def promote(self) -> None:
        self.promoted_at.append(self.now)

    # --- what a grader reads afterwards ---------------------------------------------------------
    @property
    def fault_onset(self) -> float | None:
        s = self.scenario
        if s.fault_at is None or self.exposed_at is None:
            return None
        return self.exposed_at + s.fault_at

    def restored_at(self) -> float | None:
        """When the weight last went back to 0 (None when it was never set back)."""
        if self.weight_now != 0 or not self.weights:
            return None
        last_up = max((t for t, w in self.weights if w > 0), default=None)
        return next((t for t, w in self.weights if w == 0 and (last_up is None or t >= last_up)), None)

    def canary_requests_since(self, t: float) -> int:
        """Canary requests served from ``t`` until now."""
        before = self._at(t)
        return self._history[-1][1].requests["canary"] - before.requests["canary"]

    # --- internals ---------------------------------------------------------------------------------
    def _set_weight(self, percent: float) -> float:
        if isinstance(percent, bool) or not isinstance(percent, (int, float)) or not 0 <= percent <= 100:
            raise InputError(f"set_weight({percent!r}): the canary weight is a percentage from 0 to 100")
        self.weight_now = float(percent)
        self.weights.append((self.now, self.weight_now))
        if percent > 0 and self.exposed_at is None:
            self.exposed_at = self.now
        return self.weight_now

    def _faulty(self, t: float) -> bool:
        onset, lasts = self.fault_onset, self.scenario.fault_for
        return onset is not None and onset <= t and (lasts is None or t < onset + lasts)

    def _bin(self) -> None:
        t, last = self._history[-1]
        s, rng = self.scenario, self._rng
        total = int(rng.poisson(s.rps * BIN_S))
        n_c = int(rng.binomial(total, self.weight_now / 100.0))
        faulty = self._faulty(t)
        p_c = s.fault_error_rate if faulty and s.fault_error_rate else s.error_rate
        new = Counters({k: v for k, v in last.requests.items()}, dict(last.errors), dict(last.slow))
        for version, n, p in (("canary", n_c, p_c), ("stable", total - n_c, s.error_rate)):
            new.requests[version] += n
            new.errors[version] += int(rng.binomial(n, p))
        if faulty and s.fault_slow:
            new.slow["canary"] += n_c
        self._history.append((t + BIN_S, new))

    def _at(self, t: float) -> Counters:
        """The counters at the last bin edge at or before ``t``."""
        index = max(0, min(len(self._history) - 1, math.floor(t / BIN_S + 1e-9)))
        return self._history[index][1]

    def _window(self, start: float, end: float) -> Snapshot:
        if self.scenario.metrics_down:
            raise MetricsUnavailable("the simulated metrics backend is down (no data)")
        if end > self.now + 1e-9 or start > end:
            raise InputError(
                f"window({start:g}, {end:g}) at t={self.now:g}: ask for a window that ends now or "
                "earlier and starts before it ends"
            )
        old, new = self._at(start), self._at(end)
        snap = Snapshot(t=end, start=start, source=self.name)
        for version in ("canary", "stable"):
            n = new.requests[version] - old.requests[version]
            e = new.errors[version] - old.errors[version]
            slow = new.slow[version] - old.slow[version]
            snap.requests[(version, "200")] = float(n - e)
            snap.requests[(version, "500")] = float(e)
            snap.buckets[version] = {FAST_S: float(n - slow), SLOW_S: float(n), float("inf"): float(n)}
            snap.predictions[version] = {label: n / len(LABELS) for label in LABELS}
        return snap


class _Router:
    """The simulated router's admin API (the part of RouterClient a rollout loop uses)."""

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim

    def set_weight(self, canary: float) -> float:
        return self._sim._set_weight(canary)

    def weight(self) -> float:
        return self._sim.weight_now


class _Metrics:
    """The simulated metrics source (what a MetricsSource gives a loop)."""

    name = "simulation"

    def __init__(self, sim: Simulation) -> None:
        self._sim = sim

    def window(self, start: float, end: float) -> Snapshot:
        return self._sim._window(start, end)

    def prime(self) -> None:
        """Nothing to do: the simulation keeps every reading."""
