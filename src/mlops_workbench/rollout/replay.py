"""Replay seeded synthetic traffic through a policy's analysis, without any server.

The lab 04 experiment and its grader ask two questions of a policy: does it catch
an error fault within the bound it promises, and does it leave a healthy canary
alone? :func:`replay` answers them in milliseconds and deterministically: it
follows the policy's steps (weights and pauses), draws per-bin request counts
(Poisson at ``rps``, split by the canary weight, errors binomial at the healthy or
faulty rate), builds the same :class:`~mlops_workbench.rollout.metrics.Snapshot`
windows the controller reads, and judges them with the real
:func:`~mlops_workbench.rollout.analysis.measure`, :func:`~mlops_workbench.rollout.analysis.assess`
and :func:`~mlops_workbench.rollout.analysis.verdict`. Latency and prediction mix are
simulated healthy (identical for both versions), so those metrics only test whether
their minimum sample fills within their window.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.rollout import analysis
from mlops_workbench.rollout.metrics import Snapshot
from mlops_workbench.rollout.policy import Policy

BIN_S = 0.25
LABELS = ("setosa", "versicolor", "virginica")


class Traffic(BaseModel):
    """The synthetic traffic of one replay."""

    model_config = ConfigDict(extra="forbid")
    rps: float = Field(gt=0, description="client requests per second through the router")
    error_rate: float = Field(0.005, ge=0, le=1, description="healthy error rate of both versions")
    fault_error_rate: float = Field(0.3, ge=0, le=1, description="canary error rate once the fault starts")
    fault_at: float | None = Field(None, ge=0, description="seconds after the first step when the fault starts")


class ReplayResult(BaseModel):
    """What the analysis decided for one seeded replay."""

    model_config = ConfigDict(extra="forbid")
    seed: int
    outcome: Literal["promote", "abort"]
    reason: str
    ended_at: float
    fault_at: float | None
    time_to_abort: float | None = Field(description="seconds from the fault to the abort (None: no fault or no abort)")
    bound: float = Field(description="the policy's detection bound (Policy.detection_bound)")
    measurements: list[dict[str, Any]]

    @property
    def detected_in_bound(self) -> bool:
        return self.time_to_abort is not None and self.time_to_abort <= self.bound + BIN_S


def schedule(policy: Policy) -> tuple[list[tuple[float, float, float]], float]:
    """``[(start, end, weight), ...]`` of the steps from the first weight on, and the time the steps end.

    A pause without a duration waits for an operator, whom no replay has: InputError naming the step.
    """
    pauses = dict(policy.pauses("replay it"))
    segments: list[tuple[float, float, float]] = []
    t, weight, started = 0.0, 0.0, False
    for i, step in enumerate(policy.steps):
        if step.set_weight is not None:
            weight, started = step.set_weight, started or step.set_weight > 0
        elif i in pauses and started:
            segments.append((t, t + pauses[i], weight))
            t += pauses[i]
    return segments, t


def _weight_at(segments: list[tuple[float, float, float]], t: float) -> float:
    return next((w for start, end, w in segments if start <= t < end), 0.0)


def _bins(policy: Policy, traffic: Traffic, seed: int, end: float) -> list[dict[str, float]]:
    """Per-bin counts: canary/stable requests and errors."""
    rng = np.random.default_rng(seed)
    segments, _ = schedule(policy)
    out: list[dict[str, float]] = []
    for i in range(math.ceil(end / BIN_S) + 1):
        t = i * BIN_S
        total = int(rng.poisson(traffic.rps * BIN_S))
        n_c = int(rng.binomial(total, _weight_at(segments, t) / 100.0))
        faulty = traffic.fault_at is not None and t >= traffic.fault_at
        p_c = traffic.fault_error_rate if faulty else traffic.error_rate
        out.append(
            {
                "n_c": n_c,
                "e_c": int(rng.binomial(n_c, p_c)),
                "n_s": total - n_c,
                "e_s": int(rng.binomial(total - n_c, traffic.error_rate)),
            }
        )
    return out


def window(bins: list[dict[str, float]], start: float, end: float) -> Snapshot:
    """The counters of the bins in ``[start, end)`` as a window Snapshot (what the controller measures)."""
    lo, hi = max(0, math.ceil(start / BIN_S - 1e-9)), max(0, math.ceil(end / BIN_S - 1e-9))
    sums = {k: sum(b[k] for b in bins[lo:hi]) for k in ("n_c", "e_c", "n_s", "e_s")}
    snap = Snapshot(t=end, start=start, source="replay")
    for version, n, e in (("canary", sums["n_c"], sums["e_c"]), ("stable", sums["n_s"], sums["e_s"])):
        snap.requests[(version, "200")] = n - e
        snap.requests[(version, "500")] = e
        snap.buckets[version] = {0.01: float(n), float("inf"): float(n)}
        snap.predictions[version] = {label: n / len(LABELS) for label in LABELS}
    return snap


def replay(
    policy: Policy, traffic: Traffic, seed: int, decide: analysis.ErrorRateDecision | None = None
) -> ReplayResult:
    """Run the policy's analysis over one seeded synthetic rollout (pure: no I/O, no clock)."""
    _, end = schedule(policy)
    bins = _bins(policy, traffic, seed, end)
    due = sorted(
        (m.initial_delay + k * m.interval, i)
        for i, m in enumerate(policy.analysis.metrics)
        for k in range(int((end - m.initial_delay) / m.interval) + 1)
        if m.initial_delay + k * m.interval <= end and (not m.count or k < m.count)
    )
    phases: dict[str, list[str]] = {}
    taken: list[dict[str, Any]] = []
    for t, i in due:
        metric = policy.analysis.metrics[i]
        m = analysis.measure(metric, window(bins, t - metric.lookback, t), policy.analysis.min_sample_size, decide)
        phases.setdefault(metric.name, []).append(m.phase)
        taken.append({"t": t, "metric": metric.name, "phase": m.phase, "message": m.message})
        outcome, reason = analysis.verdict(policy, phases, finished=False)
        if outcome in (analysis.MeasurementPhase.FAILED, analysis.MeasurementPhase.INCONCLUSIVE):
            return _result(policy, traffic, seed, "abort", reason, t, taken)
    outcome, reason = analysis.verdict(policy, phases, finished=True)
    return _result(
        policy,
        traffic,
        seed,
        "promote" if outcome == analysis.MeasurementPhase.SUCCESSFUL else "abort",
        reason,
        end,
        taken,
    )


def _result(
    policy: Policy,
    traffic: Traffic,
    seed: int,
    outcome: Literal["promote", "abort"],
    reason: str,
    t: float,
    taken: list[dict[str, Any]],
) -> ReplayResult:
    fault = traffic.fault_at
    restore = t - fault if outcome == "abort" and fault is not None and t >= fault else None
    return ReplayResult(
        seed=seed,
        outcome=outcome,
        reason=reason,
        ended_at=t,
        fault_at=fault,
        time_to_abort=restore,
        bound=policy.detection_bound(),
        measurements=taken,
    )


def replay_many(
    policy: Policy, traffic: Traffic, seeds: list[int] | range, decide: analysis.ErrorRateDecision | None = None
) -> list[ReplayResult]:
    return [replay(policy, traffic, seed, decide) for seed in seeds]


def expected_canary_requests(rps: float, weight: float, window_s: float) -> float:
    """Mean canary requests in one window: rps x weight share x window seconds."""
    return rps * weight / 100.0 * window_s
