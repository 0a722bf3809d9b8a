"""Hidden canary scenarios for grading AnalysisTemplate PromQL: recorded series of the model servers.

Each scenario is a set of counter series as the model servers expose them on kind
(``workbench_model_requests_total{status}`` and the ``workbench_model_request_duration_seconds``
histogram, labelled with ``namespace``, ``rollouts_pod_template_hash``, ``pod`` and ``version``),
drawn from a grading run's random generator: request rates, pod counts, pod-template hashes, error
shares (with 4xx answers, which are the client's mistake and no error of the model) and log-normal
latencies. Kinds: ``healthy`` (must be Successful), ``errors`` and ``slow`` (the fault of one metric
kind, must be Failed) and ``sparse`` (fewer canary requests than the minimum sample: must not pass).
"""

from __future__ import annotations

import math
import random
import string
from dataclasses import dataclass, field

from mlops_workbench.k8s import promql
from mlops_workbench.rollout.policy import Metric
from mlops_workbench.serving.hotpath import BUCKETS

NAMESPACE = "workbench"
SPAN = 360
"""Seconds of recorded series (one sample a second); the queries are evaluated at :data:`EVAL_AT`."""
EVAL_AT = 300
Z99 = 2.3263478740408408
FAULT = {"errorRate": "errors", "latencyP99": "slow"}


@dataclass(frozen=True)
class Series:
    """One counter rising by ``per_second`` every second from 0."""

    name: str
    labels: dict[str, str]
    per_second: float

    def promtool(self) -> dict[str, str]:
        labels = ",".join(f'{k}="{v}"' for k, v in sorted(self.labels.items()))
        return {"series": f"{self.name}{{{labels}}}", "values": f"0+{self.per_second:.6f}x{SPAN}"}


@dataclass
class Role:
    """The pods of one side (canary or stable) and what they serve."""

    hash: str
    version: str
    pods: int
    rate: float
    server_errors: float
    client_errors: float
    median: float
    sigma: float

    def p99(self) -> float:
        return histogram_p99(self.cumulative())

    def cumulative(self) -> list[tuple[float, float]]:
        """(le, requests per second at or below le), the +Inf bucket last."""
        out = [(le, self.rate * _cdf(le, self.median, self.sigma)) for le in BUCKETS]
        return out + [(math.inf, self.rate)]


@dataclass
class Scenario:
    kind: str
    canary: Role
    stable: Role
    args: dict[str, str] = field(default_factory=dict)

    def series(self) -> list[Series]:
        return [s for role in (self.canary, self.stable) for s in _role_series(role)]


def _cdf(x: float, median: float, sigma: float) -> float:
    return 0.5 * (1 + math.erf(math.log(x / median) / (sigma * math.sqrt(2))))


def histogram_p99(cumulative: list[tuple[float, float]]) -> float:
    """Prometheus' histogram_quantile(0.99) over cumulative buckets (linear inside the bucket)."""
    total = cumulative[-1][1]
    rank = 0.99 * total
    lower, below = 0.0, 0.0
    for le, count in cumulative:
        if count >= rank:
            if math.isinf(le):
                return cumulative[-2][0]
            return lower + (le - lower) * (rank - below) / (count - below) if count > below else le
        lower, below = le, count
    return cumulative[-2][0]


def _role_series(role: Role) -> list[Series]:
    out: list[Series] = []
    for n in range(role.pods):
        base = {
            "namespace": NAMESPACE,
            promql.HASH_LABEL: role.hash,
            "version": role.version,
            "pod": f"iris-{role.hash}-{n}",
        }
        share = role.rate / role.pods
        statuses = {
            "200": 1 - role.server_errors - role.client_errors,
            "400": role.client_errors * 0.6,
            "422": role.client_errors * 0.4,
            "500": role.server_errors * 0.7,
            "503": role.server_errors * 0.3,
        }
        out += [Series(promql.REQUESTS, {**base, "status": s}, share * f) for s, f in statuses.items() if f > 0]
        for le, count in role.cumulative():
            out.append(
                Series(promql.BUCKETS, {**base, "le": "+Inf" if math.isinf(le) else repr(le)}, count / role.pods)
            )
        out.append(Series(promql.COUNT, base, share))
        mean = role.median * math.exp(role.sigma**2 / 2)
        out.append(Series("workbench_model_request_duration_seconds_sum", base, share * mean))
    return out


def _hash(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_lowercase[:6] + string.digits) for _ in range(10))


def latency_bound(metric: Metric, stable_p99: float) -> float:
    """The policy's p99 bound for the canary given the stable p99 (as the lab's docs state it)."""
    c = metric.condition
    bound = math.inf
    if c.max_increase is not None:
        bound = stable_p99 * (1 + c.max_increase) + c.margin_ms / 1000
    if c.max is not None:
        bound = min(bound, c.max)
    return bound


def draw(kind: str, metric: Metric, min_sample: int, rng: random.Random) -> Scenario:
    """One scenario of ``kind`` for ``metric``; latencies are redrawn until the verdict is clear-cut."""
    window = metric.lookback
    minimum = metric.min_sample_size or min_sample
    limit = metric.condition.max if metric.kind == "errorRate" and metric.condition.max is not None else 0.02
    for _ in range(200):
        canary_rate = (
            minimum * rng.uniform(0.05, 0.3) / window if kind == "sparse" else minimum * rng.uniform(3, 8) / window
        )
        stable_rate = max(canary_rate, minimum * rng.uniform(3, 8) / window) * rng.uniform(1.5, 4)
        client = min(0.2, limit * rng.uniform(1.5, 3))
        median = math.exp(rng.uniform(math.log(0.003), math.log(0.12)))
        sigma = rng.uniform(0.25, 0.5)
        stable = Role(
            _hash(rng), "1", rng.randint(2, 3), stable_rate, limit * rng.uniform(0, 0.4), client, median, sigma
        )
        canary = Role(
            _hash(rng),
            "2",
            rng.randint(1, 2),
            canary_rate,
            limit * rng.uniform(0, 0.4),
            client,
            median * rng.uniform(0.9, 1.1),
            sigma,
        )
        if kind == "sparse":
            canary.server_errors = 0.0
        if kind == "errors":
            canary.server_errors = min(0.6, max(4 * limit, 0.1) * rng.uniform(1, 2.5))
        bound = latency_bound(metric, stable.p99()) if metric.kind == "latencyP99" else math.inf
        if kind == "slow":
            target = min(8.0, bound * rng.uniform(2, 4))
            canary.median = target / math.exp(Z99 * canary.sigma)
        if metric.kind != "latencyP99" or _clear(kind, canary.p99(), bound):
            args = {"canary-hash": canary.hash, "stable-hash": stable.hash, "namespace": NAMESPACE}
            return Scenario(kind, canary, stable, args)
    raise RuntimeError(
        f"no clear-cut {kind} scenario for {metric.name} in 200 draws: the policy's bounds "
        "leave no room between a healthy and a slow canary."
    )


def _clear(kind: str, canary_p99: float, bound: float) -> bool:
    if kind == "slow":
        return canary_p99 >= 1.25 * bound
    return canary_p99 <= 0.8 * bound


def scenarios(metric: Metric, min_sample: int, rng: random.Random) -> list[Scenario]:
    """Healthy, the metric's own fault, and too few canary requests."""
    return [draw(kind, metric, min_sample, rng) for kind in ("healthy", FAULT[metric.kind], "sparse")]
