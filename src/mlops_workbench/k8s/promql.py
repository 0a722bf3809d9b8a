"""PromQL for the Argo ``prometheus`` provider, over the model server's own metric names.

On kind no weighted router exists (Envoy splits the traffic), so the queries read the model
servers' counters, ``workbench_model_requests_total{version,status}`` and the histogram
``workbench_model_request_duration_seconds``, and tell canary from stable by the pod label Argo
puts on every pod (``rollouts-pod-template-hash``, relabelled by Prometheus to
``rollouts_pod_template_hash``). Each query returns one number, or ``-1`` when the window holds
fewer than ``minSampleSize`` samples: neither condition matches ``-1``, so Argo records the
measurement as inconclusive, never as a pass.
"""

from __future__ import annotations

from mlops_workbench.rollout.policy import Metric

REQUESTS = "workbench_model_requests_total"
BUCKETS = "workbench_model_request_duration_seconds_bucket"
COUNT = "workbench_model_request_duration_seconds_count"
PREDICTIONS = "workbench_model_predictions_total"
HASH_LABEL = "rollouts_pod_template_hash"
NOT_ENOUGH = -1


def duration(seconds: float) -> str:
    """Seconds as an Argo/Prometheus duration: ``2s``, ``5m``, ``500ms``."""
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    if float(seconds).is_integer():
        return f"{int(seconds)}s"
    return f"{int(round(seconds * 1000))}ms"


def selector(role: str, extra: str = "") -> str:
    """Label matcher for the canary or stable pods (Argo fills the args)."""
    base = f'namespace="{{{{args.namespace}}}}",{HASH_LABEL}="{{{{args.{role}-hash}}}}"'
    return "{" + base + (f",{extra}" if extra else "") + "}"


def _guard(expr: str, checks: list[str]) -> str:
    guarded = f"({expr})" + "".join(f" and on() ({c})" for c in checks)
    return f"({guarded}) or on() vector({NOT_ENOUGH})"


def error_rate(metric: Metric, min_sample: int) -> str:
    """Canary 5xx fraction over the window."""
    w = duration(metric.lookback)
    total = f"sum(increase({REQUESTS}{selector('canary')}[{w}]))"
    failed = selector("canary", 'status=~"5.."')
    errors = f"sum(increase({REQUESTS}{failed}[{w}]))"
    return _guard(f"({errors} or on() vector(0)) / {total}", [f"{total} >= {min_sample}"])


def _p99(role: str, w: str) -> str:
    return f"histogram_quantile(0.99, sum by (le) (increase({BUCKETS}{selector(role)}[{w}])))"


def latency_ratio(metric: Metric, min_sample: int) -> str:
    """Canary p99 divided by the policy's bound (relative to stable's p99, capped by ``max``): > 1 fails."""
    c, w = metric.condition, duration(metric.lookback)
    bound = None
    checks = [f"sum(increase({COUNT}{selector('canary')}[{w}])) >= {min_sample}"]
    if c.max_increase is not None:
        bound = f"({_p99('stable', w)} * {1 + c.max_increase:g} + {c.margin_ms / 1000:g})"
        checks.append(f"sum(increase({COUNT}{selector('stable')}[{w}])) >= {min_sample}")
    if c.max is not None:
        bound = f"clamp_max({bound}, {c.max:g})" if bound else f"vector({c.max:g})"
    return _guard(f"{_p99('canary', w)} / on() {bound}", checks)


def conditions(metric: Metric) -> tuple[str, str]:
    """(successCondition, failureCondition) for a Prometheus metric; ``-1`` matches neither."""
    if metric.kind == "errorRate":
        limit = f"{metric.condition.max:g}"
        return f"result[0] >= 0 && result[0] <= {limit}", f"result[0] > {limit}"
    return "result[0] >= 0 && result[0] <= 1", "result[0] > 1"
