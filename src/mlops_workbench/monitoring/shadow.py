"""Judging a shadow: the router's shadow counters read back, their increase over a window, and the verdict.

The router (:mod:`mlops_workbench.rollout.shadow`) counts every mirrored request by outcome and times it.
:func:`read_stats` reads those series for one model version from the router's ``/metrics`` text, :func:`since`
takes the increase over a window (two readings), and :func:`shadow_verdict` (pure) judges it against a
:class:`ShadowPolicy`: enough mirrored requests, agreement with the primary's answers at or above a threshold,
few shadow errors, and a p99 latency not much worse than the primary's for the same requests. Too few requests
is a failed verdict, never a pass: missing data never promotes. :func:`watch` waits until a window holds enough
mirrored requests, or its time is up.

The verdict and its policy are records of the registry layer
(:mod:`mlops_workbench.registry.verdicts`): the audit log holds them.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, get_args

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.registry.verdicts import ShadowPolicy, ShadowVerdict
from mlops_workbench.rollout.shadow import SHADOW, Outcome

__all__ = ["ShadowPolicy", "ShadowStats", "ShadowVerdict", "read_stats", "shadow_verdict", "since", "watch"]
OUTCOMES: tuple[Outcome, ...] = get_args(Outcome)
POLL = 0.25


class MetricsReader(Protocol):
    """What :func:`watch` reads: a router's ``/metrics`` text (a ``RouterClient``)."""

    def metrics(self) -> str: ...


class ShadowStats(BaseModel):
    """Counters of one shadowed model version (cumulative, or the increase over a window after :func:`since`)."""

    model_config = ConfigDict(extra="forbid")
    model_version: str
    outcomes: dict[str, float] = Field(default_factory=dict, description="mirrored requests by outcome")
    dropped: float = 0.0
    shadow_buckets: dict[float, float] = Field(default_factory=dict, description="le -> cumulative count")
    primary_buckets: dict[float, float] = Field(default_factory=dict, description="the same requests' primary")

    @property
    def mirrored(self) -> int:
        return int(sum(self.outcomes.values()))


def read_stats(text: str, model_version: str) -> ShadowStats:
    """The shadow series of ``model_version`` in a router's ``/metrics`` text (zeros when there are none)."""
    from prometheus_client.parser import text_string_to_metric_families

    stats = ShadowStats(model_version=str(model_version))
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.labels.get("model_version") != str(model_version):
                continue
            if s.name == "workbench_router_shadow_requests_total":
                outcome = s.labels.get("result", "")
                stats.outcomes[outcome] = stats.outcomes.get(outcome, 0.0) + s.value
            elif s.name == "workbench_router_shadow_dropped_total":
                stats.dropped += s.value
            elif s.name == "workbench_router_shadow_request_duration_seconds_bucket":
                buckets = stats.shadow_buckets if s.labels.get("version") == SHADOW else stats.primary_buckets
                le = float(s.labels["le"])
                buckets[le] = buckets.get(le, 0.0) + s.value
    return stats


def _minus(new: dict[Any, float], old: dict[Any, float]) -> dict[Any, float]:
    return {key: value - old.get(key, 0.0) if value >= old.get(key, 0.0) else value for key, value in new.items()}


def since(new: ShadowStats, old: ShadowStats) -> ShadowStats:
    """The increase from reading ``old`` to reading ``new`` (a counter that went down was reset: a new router)."""
    return ShadowStats(
        model_version=new.model_version,
        outcomes=_minus(new.outcomes, old.outcomes),
        dropped=new.dropped - old.dropped if new.dropped >= old.dropped else new.dropped,
        shadow_buckets=_minus(new.shadow_buckets, old.shadow_buckets),
        primary_buckets=_minus(new.primary_buckets, old.primary_buckets),
    )


def shadow_verdict(stats: ShadowStats, policy: ShadowPolicy | None = None) -> ShadowVerdict:
    """Judge a shadow's window (pure): enough requests, agreement, error rate and latency ratio."""
    from mlops_workbench.rollout.metrics import histogram_quantile

    policy = policy or ShadowPolicy()
    count = {outcome: int(stats.outcomes.get(outcome, 0.0)) for outcome in OUTCOMES}
    requests, compared = stats.mirrored, count["agree"] + count["disagree"]
    agreement = count["agree"] / compared if compared else None
    error_rate = count["error"] / requests if requests else None
    shadow_p99, primary_p99 = (histogram_quantile(0.99, b) for b in (stats.shadow_buckets, stats.primary_buckets))
    ratio = None
    if shadow_p99 is not None and primary_p99 is not None:
        floor = policy.latency_floor_ms / 1000
        ratio = max(shadow_p99, floor) / max(primary_p99, floor)
    reasons: list[str] = []
    if requests < policy.min_requests:
        reasons.append(
            f"only {requests} mirrored requests, fewer than min_requests {policy.min_requests}: not enough to judge "
            "(send more traffic or wait longer; missing data never promotes)"
        )
    if agreement is None:
        reasons.append("no answer of the shadow could be compared with the primary's")
    elif agreement < policy.min_agreement:
        reasons.append(
            f"agreement {agreement:.1%} with the primary is below min_agreement {policy.min_agreement:.0%} "
            f"({count['disagree']} of {compared} answers differ)"
        )
    if error_rate is not None and error_rate > policy.max_error_rate:
        reasons.append(
            f"the shadow failed {error_rate:.1%} of the requests (max_error_rate {policy.max_error_rate:.0%})"
        )
    if ratio is not None and ratio > policy.max_latency_ratio:
        reasons.append(
            f"its p99 latency is {ratio:.2f} times the primary's (max_latency_ratio {policy.max_latency_ratio:g})"
        )
    return ShadowVerdict(
        passed=not reasons,
        model_version=stats.model_version,
        requests=requests,
        compared=compared,
        agreement=agreement,
        error_rate=error_rate,
        shadow_p99_ms=None if shadow_p99 is None else shadow_p99 * 1000,
        primary_p99_ms=None if primary_p99 is None else primary_p99 * 1000,
        latency_ratio=ratio,
        reasons=reasons,
        policy=policy,
    )


def watch(
    router: MetricsReader,
    version: str,
    baseline: ShadowStats,
    requests: int,
    window_s: float,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> ShadowStats:
    """The shadow's counters since ``baseline``, once ``requests`` copies were answered or ``window_s`` passed."""
    deadline = clock() + window_s
    while True:
        stats = since(read_stats(router.metrics(), version), baseline)
        if stats.mirrored >= requests or clock() >= deadline:
            return stats
        sleep(POLL)
