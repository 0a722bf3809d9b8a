"""Canary analysis: turn one metrics window into a measurement, and measurements into a verdict.

Each measurement is ``successful``, ``failed``, ``inconclusive`` (too few samples,
or a difference that is not statistically significant) or ``error`` (no data).
Nothing here promotes on missing data: a metric needs at least one successful
measurement, and errors or inconclusive results beyond their limits make the
whole analysis inconclusive. Field semantics follow Argo Rollouts: the analysis
fails when failed measurements *exceed* ``failureLimit``.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from scipy import stats

from mlops_workbench.rollout.metrics import QUERIES, Snapshot, histogram_quantile
from mlops_workbench.rollout.policy import Metric, Policy


class MeasurementPhase(StrEnum):
    """The verdict of one measurement, and of a metric over its measurements (Argo's AnalysisRun phases)."""

    SUCCESSFUL = "successful"
    FAILED = "failed"
    INCONCLUSIVE = "inconclusive"
    ERROR = "error"
    RUNNING = "running"


PSI_EPS = 1e-3

ErrorRateDecision = Callable[..., str]
"""``decide(canary_errors, canary_requests, stable_errors, stable_requests, max_rate, alpha, min_sample)``
returns ``"successful"``, ``"failed"`` or ``"inconclusive"`` (the lab 04 exercise)."""
_decision: ErrorRateDecision | None = None


def use_error_rate_decision(decide: ErrorRateDecision | None) -> ErrorRateDecision | None:
    """Install ``decide`` as the error-rate decision every later :func:`measure` uses (``None``: the built-in one).

    This is the documented hook through which the controller runs a learner's own decision. Returns the
    decision installed before, so a caller can put it back.
    """
    global _decision
    if decide is not None and not callable(decide):
        raise TypeError(f"the error-rate decision must be a function, not {type(decide).__name__}")
    previous, _decision = _decision, decide
    return previous


@dataclass
class Measurement:
    """One measurement of one metric over one window (what goes into the event log)."""

    metric: str
    kind: str
    phase: str
    message: str
    value: float | None = None
    baseline: float | None = None
    threshold: float | None = None
    p_value: float | None = None
    samples: dict[str, float] = field(default_factory=dict)
    query: str = ""
    window: tuple[float, float] | None = None
    t: float | None = None

    def to_event(self) -> dict[str, Any]:
        return asdict(self)


def traffic(win: Snapshot, version: str) -> tuple[float, float]:
    """(requests, errors) for ``version`` in a window; upstream failures count as both."""
    requests = sum(v for (ver, _), v in win.requests.items() if ver == version)
    errors = sum(v for (ver, status), v in win.requests.items() if ver == version and status.startswith("5"))
    failed = win.failures.get(version, 0.0)
    return requests + failed, errors + failed


def promql(metric: Metric) -> str:
    """The PromQL expression equivalent to what the measurement computes (for the event log)."""
    w = f"{metric.lookback:g}s"
    if metric.kind == "errorRate":
        return (
            f'sum(increase(workbench_router_requests_total{{version="canary",status=~"5.."}}[{w}])) / '
            f'sum(increase(workbench_router_requests_total{{version="canary"}}[{w}]))'
        )
    if metric.kind == "latencyP99":
        return (
            f"histogram_quantile(0.99, sum by (version, le) "
            f"(increase(workbench_router_request_duration_seconds_bucket[{w}])))"
        )
    return f"sum by (role, label) (increase(workbench_model_predictions_total[{w}]))"


def measure(metric: Metric, win: Snapshot, min_sample: int, decide: ErrorRateDecision | None = None) -> Measurement:
    """Judge one window for ``metric`` (pure: no I/O).

    ``decide`` overrides the error-rate decision for this call; without it the one installed with
    :func:`use_error_rate_decision` (if any) decides, else the built-in Fisher test.
    """
    minimum = metric.min_sample_size or min_sample
    decide = decide or _decision
    if metric.kind == "errorRate" and decide is not None:
        m = _custom_error_rate(metric, win, minimum, decide)
    else:
        judge = {"errorRate": _error_rate, "latencyP99": _latency, "predictionShift": _shift}[metric.kind]
        m = judge(metric, win, minimum)
    m.query, m.window, m.t = promql(metric), (win.start or win.t, win.t), win.t
    return m


def _error_rate(metric: Metric, win: Snapshot, minimum: int) -> Measurement:
    n_c, e_c = traffic(win, "canary")
    n_s, e_s = traffic(win, "stable")
    limit = float(metric.condition.max or 0.0)
    m = Measurement(
        metric.name,
        metric.kind,
        MeasurementPhase.INCONCLUSIVE,
        "",
        threshold=limit,
        samples={"canary": n_c, "stable": n_s},
    )
    if n_c < minimum:
        m.message = f"only {n_c:.0f} canary requests in the window (minimum {minimum}): not enough to judge"
        return m
    m.value = e_c / n_c
    m.baseline = e_s / n_s if n_s else None
    if m.value <= limit:
        m.phase, m.message = MeasurementPhase.SUCCESSFUL, f"canary error rate {m.value:.2%} <= {limit:.2%}"
        return m
    if n_s >= minimum:
        table = [[round(e_c), round(n_c - e_c)], [round(e_s), round(n_s - e_s)]]
        m.p_value = float(stats.fisher_exact(np.array(table), alternative="greater").pvalue)
        test = "Fisher exact test against stable"
    else:
        m.p_value = float(stats.binomtest(round(e_c), round(n_c), p=max(limit, 1e-9), alternative="greater").pvalue)
        test = f"binomial test against {limit:.2%}"
    if m.p_value < metric.condition.alpha:
        m.phase = MeasurementPhase.FAILED
        m.message = f"canary error rate {m.value:.2%} > {limit:.2%} ({test}: p={m.p_value:.3g})"
    else:
        m.message = f"canary error rate {m.value:.2%} > {limit:.2%} but not significant ({test}: p={m.p_value:.3g})"
    return m


def slower_than(bound: float, buckets: dict[float, float]) -> float:
    """How many requests of a cumulative histogram (le -> count) took longer than ``bound`` seconds.

    Within the bucket that straddles ``bound`` the count is interpolated linearly, like
    ``histogram_quantile`` does; a bound past the last finite bucket counts nothing as slower.
    """
    items = sorted(buckets.items())
    total = max((c for _, c in items), default=0.0)
    lower_le, lower_count = 0.0, 0.0
    for le, count in items:
        if bound <= le:
            if math.isinf(le):
                return 0.0
            within = (bound - lower_le) / (le - lower_le) if le > lower_le else 1.0
            return max(total - (lower_count + (count - lower_count) * within), 0.0)
        lower_le, lower_count = le, count
    return 0.0


P99_TAIL = 0.01  # the share of requests a p99 allows above it


def _custom_error_rate(metric: Metric, win: Snapshot, minimum: int, decide: ErrorRateDecision) -> Measurement:
    """The error-rate measurement with the phase chosen by ``decide``; a failing or odd decision is an error."""
    n_c, e_c = traffic(win, "canary")
    n_s, e_s = traffic(win, "stable")
    limit = float(metric.condition.max or 0.0)
    name = f"{getattr(decide, '__module__', '?')}.{getattr(decide, '__name__', 'decide')}"
    m = Measurement(
        metric.name,
        metric.kind,
        MeasurementPhase.ERROR,
        "",
        threshold=limit,
        samples={"canary": n_c, "stable": n_s},
        value=e_c / n_c if n_c else None,
        baseline=e_s / n_s if n_s else None,
    )
    try:
        phase = decide(round(e_c), round(n_c), round(e_s), round(n_s), limit, metric.condition.alpha, minimum)
    except Exception as err:  # the decision is user code: its failure is this measurement's error, not a crash
        m.message = f"custom decision {name} raised {type(err).__name__}: {err}"
        return m
    if phase not in (MeasurementPhase.SUCCESSFUL, MeasurementPhase.FAILED, MeasurementPhase.INCONCLUSIVE):
        m.message = f"custom decision {name} returned {phase!r}: return 'successful', 'failed' or 'inconclusive'"
        return m
    m.phase = MeasurementPhase(phase)
    rate = "n/a" if m.value is None else f"{m.value:.2%}"
    m.message = (
        f"canary error rate {rate} ({e_c:.0f}/{n_c:.0f}), stable {e_s:.0f}/{n_s:.0f}: {phase} (custom decision {name})"
    )
    return m


def _latency(metric: Metric, win: Snapshot, minimum: int) -> Measurement:
    """p99 above its bound fails only when the canary is *significantly* slower, not on a few noisy requests.

    On a small window p99 is close to the slowest request, so one CPU hiccup on a busy
    laptop can push it over any bound. The requests slower than the bound are therefore
    counted and compared with stable's share in the same window (one-sided Fisher exact
    test), or with the 1% a p99 allows when only an absolute ``max`` is set: a real
    regression slows most canary requests (p tiny), noise slows a few of both (inconclusive).
    """
    c = metric.condition
    buckets_c, buckets_s = win.buckets.get("canary", {}), win.buckets.get("stable", {})
    n_c = max(buckets_c.values(), default=0.0)
    n_s = max(buckets_s.values(), default=0.0)
    m = Measurement(metric.name, metric.kind, MeasurementPhase.INCONCLUSIVE, "", samples={"canary": n_c, "stable": n_s})
    if n_c < minimum or (c.max_increase is not None and n_s < minimum):
        m.message = f"too few latency samples (canary {n_c:.0f}, stable {n_s:.0f}, minimum {minimum})"
        return m
    m.value = histogram_quantile(0.99, buckets_c)
    m.baseline = histogram_quantile(0.99, buckets_s)
    bounds = []
    if c.max_increase is not None and m.baseline is not None:
        bounds.append(m.baseline * (1 + c.max_increase) + c.margin_ms / 1000.0)
    if c.max is not None:
        bounds.append(c.max)
    m.threshold = min(bounds)
    assert m.value is not None
    base = f"{m.baseline * 1000:.1f} ms" if m.baseline is not None else "n/a"
    shown = f"canary p99 {m.value * 1000:.1f} ms {{}} bound {m.threshold * 1000:.1f} ms (stable p99 {base})"
    if m.value <= m.threshold:
        m.phase, m.message = MeasurementPhase.SUCCESSFUL, shown.format("<=")
        return m
    slow_c, slow_s = slower_than(m.threshold, buckets_c), slower_than(m.threshold, buckets_s)
    if n_s >= minimum:
        table = [[round(slow_c), round(n_c - slow_c)], [round(slow_s), round(n_s - slow_s)]]
        m.p_value = float(stats.fisher_exact(np.array(table), alternative="greater").pvalue)
        test = f"{slow_c:.0f}/{n_c:.0f} canary vs {slow_s:.0f}/{n_s:.0f} stable requests slower, Fisher exact"
    else:
        m.p_value = float(stats.binomtest(round(slow_c), round(n_c), p=P99_TAIL, alternative="greater").pvalue)
        test = f"{slow_c:.0f}/{n_c:.0f} canary requests slower, binomial test against {P99_TAIL:.0%}"
    if m.p_value < c.alpha:
        m.phase, m.message = MeasurementPhase.FAILED, shown.format(">") + f" ({test}: p={m.p_value:.3g})"
    else:
        m.message = shown.format(">") + f" but not significantly slower ({test}: p={m.p_value:.3g})"
    return m


def psi(expected: dict[str, float], actual: dict[str, float]) -> float:
    """Population stability index of ``actual`` against ``expected`` class counts."""
    labels = sorted(set(expected) | set(actual))
    n_e, n_a = sum(expected.values()), sum(actual.values())
    total = 0.0
    for label in labels:
        p = max(expected.get(label, 0.0) / n_e, PSI_EPS)
        q = max(actual.get(label, 0.0) / n_a, PSI_EPS)
        total += (q - p) * math.log(q / p)
    return total


def _shift(metric: Metric, win: Snapshot, minimum: int) -> Measurement:
    canary, stable = win.predictions.get("canary"), win.predictions.get("stable")
    limit = float(metric.condition.max or 0.0)
    m = Measurement(metric.name, metric.kind, MeasurementPhase.INCONCLUSIVE, "", threshold=limit)
    if canary is None or stable is None:
        m.phase, m.message = (
            MeasurementPhase.ERROR,
            "no prediction counts for " + ("canary" if canary is None else "stable"),
        )
        return m
    n_c, n_s = sum(canary.values()), sum(stable.values())
    m.samples = {"canary": n_c, "stable": n_s}
    if n_c < minimum or n_s < minimum:
        m.message = f"too few predictions (canary {n_c:.0f}, stable {n_s:.0f}, minimum {minimum})"
        return m
    m.value = psi(stable, canary)
    labels = [lab for lab in sorted(set(canary) | set(stable)) if canary.get(lab, 0) + stable.get(lab, 0) > 0]
    if len(labels) > 1:
        table = [[round(canary.get(lab, 0)) for lab in labels], [round(stable.get(lab, 0)) for lab in labels]]
        m.p_value = float(stats.chi2_contingency(table).pvalue)
    else:
        m.p_value = 1.0
    if m.value <= limit:
        m.phase, m.message = MeasurementPhase.SUCCESSFUL, f"class-mix PSI {m.value:.3f} <= {limit}"
    elif m.p_value < metric.condition.alpha:
        m.phase, m.message = (
            MeasurementPhase.FAILED,
            f"class-mix PSI {m.value:.3f} > {limit} (chi-square p={m.p_value:.3g})",
        )
    else:
        m.message = f"class-mix PSI {m.value:.3f} > {limit} but not significant (chi-square p={m.p_value:.3g})"
    return m


def assess(metric: Metric, phases: list[str]) -> tuple[str, str]:
    """Status of one metric from its measurement phases so far: (phase, reason)."""
    failed = phases.count(MeasurementPhase.FAILED)
    if failed > metric.failure_limit:
        return (
            MeasurementPhase.FAILED,
            f"{metric.name}: {failed} failed measurements > failureLimit {metric.failure_limit}",
        )
    tail_errors = 0
    for phase in reversed(phases):
        if phase != MeasurementPhase.ERROR:
            break
        tail_errors += 1
    if tail_errors > metric.consecutive_error_limit:
        return MeasurementPhase.INCONCLUSIVE, (
            f"{metric.name}: no data for {tail_errors} consecutive measurements "
            f"> consecutiveErrorLimit {metric.consecutive_error_limit}"
        )
    inconclusive = phases.count(MeasurementPhase.INCONCLUSIVE)
    if inconclusive > metric.inconclusive_limit:
        return MeasurementPhase.INCONCLUSIVE, (
            f"{metric.name}: {inconclusive} inconclusive measurements > inconclusiveLimit {metric.inconclusive_limit}"
        )
    if metric.count and len(phases) >= metric.count:
        if MeasurementPhase.SUCCESSFUL in phases:
            return MeasurementPhase.SUCCESSFUL, f"{metric.name}: {len(phases)} measurements taken"
        return MeasurementPhase.INCONCLUSIVE, f"{metric.name}: {metric.count} measurements and none successful"
    return MeasurementPhase.RUNNING, f"{metric.name}: {len(phases)} measurements so far"


def verdict(policy: Policy, phases: dict[str, list[str]], finished: bool) -> tuple[str, str]:
    """Overall analysis status. ``finished``: the steps are done, so a still-running metric must show a success."""
    results = {m.name: assess(m, phases.get(m.name, [])) for m in policy.analysis.metrics}
    for wanted in (MeasurementPhase.FAILED, MeasurementPhase.INCONCLUSIVE):
        reasons = [r for phase, r in results.values() if phase == wanted]
        if reasons:
            return wanted, "; ".join(reasons)
    if not finished:
        return MeasurementPhase.RUNNING, "analysis running"
    missing = [name for name in results if MeasurementPhase.SUCCESSFUL not in phases.get(name, [])]
    if missing:
        return MeasurementPhase.INCONCLUSIVE, (
            f"no successful measurement for {', '.join(missing)}: "
            "missing data never promotes (send more traffic or lengthen the pauses)"
        )
    return MeasurementPhase.SUCCESSFUL, "every metric passed"


__all__ = [
    "Measurement",
    "MeasurementPhase",
    "measure",
    "use_error_rate_decision",
    "assess",
    "verdict",
    "psi",
    "traffic",
    "slower_than",
    "QUERIES",
]
