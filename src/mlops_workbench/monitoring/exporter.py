"""The Prometheus metrics lab 07 alerts on, and the PromQL of those it does not export itself.

The drift gauges come from a *scorer*: a function, given to the monitor service, that answers the current
drift scores of each watched model version (:class:`DriftScores`). :class:`DriftCollector` asks it on each
scrape (at most once every ``min_interval`` seconds) and exports ``workbench_drift_score{model,version,feature}``
and ``workbench_prediction_drift_score{model,version}``, plus ``workbench_drift_scorer_up`` (0 when the scorer
failed: then no drift gauge is exported, so no drift alert can fire on stale numbers).

Error rate and p99 latency are not exported again: the model servers already count requests by status and time
them in a histogram; :func:`error_rate_promql` and :func:`p99_latency_promql` are the queries over those.
"""

from __future__ import annotations

import importlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError
from mlops_workbench.k8s.promql import BUCKETS, REQUESTS  # the model servers' metric names, spelled once

log = logging.getLogger("mlops_workbench.monitoring.exporter")

DRIFT = "workbench_drift_score"
PREDICTION_DRIFT = "workbench_prediction_drift_score"
SCORER_UP = "workbench_drift_scorer_up"


class DriftScores(BaseModel):
    """The drift of one model version's live inputs against its training reference, by feature."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1)
    version: str = Field(min_length=1)
    features: dict[str, float] = Field(default_factory=dict, description="drift score by input feature")
    prediction: float | None = Field(None, description="drift score of the predicted-class distribution")


Scorer = Callable[[], Iterable[DriftScores]]
"""What the monitor service is given: called on a scrape, answers the current scores of each watched version."""


def no_scores() -> list[DriftScores]:
    """The scorer until one is wired in: no version is watched, so no drift gauge is exported."""
    return []


def error_rate_promql(window: str = "1m") -> str:
    """Share of prediction requests answered 5xx over ``window``, by model version (the model servers' counter)."""
    return (
        f'sum by (version) (rate({REQUESTS}{{status=~"5.."}}[{window}]))\n'
        f"/ sum by (version) (rate({REQUESTS}[{window}]))"
    )


def p99_latency_promql(window: str = "1m") -> str:
    """p99 prediction latency in seconds over ``window``, by model version (the model servers' histogram)."""
    return f"histogram_quantile(0.99, sum by (version, le) (rate({BUCKETS}[{window}])))"


class DriftCollector(Collector):
    """Exports the scorer's answer as gauges; the answer is kept ``min_interval`` seconds (0: asked every scrape)."""

    def __init__(self, scorer: Scorer, min_interval: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.scorer, self.min_interval, self.clock = scorer, min_interval, clock
        self._lock = threading.Lock()
        self._cached: tuple[float, list[DriftScores], bool] | None = None

    def scores(self) -> tuple[list[DriftScores], bool]:
        """The current scores and whether the scorer answered (a failure is logged and exports nothing)."""
        with self._lock:
            now = self.clock()
            if self._cached is None or now - self._cached[0] >= self.min_interval:
                try:
                    answer, ok = [DriftScores.model_validate(s) for s in self.scorer()], True
                except Exception as exc:  # the scorer is the lead's or a learner's code: its failure is a metric
                    log.warning("drift scorer failed: %s: %s", type(exc).__name__, exc)
                    answer, ok = [], False
                self._cached = (now, answer, ok)
            return self._cached[1], self._cached[2]

    def collect(self) -> Iterator[Metric]:
        scores, ok = self.scores()
        drift = GaugeMetricFamily(
            DRIFT,
            "Drift score of an input feature against the training reference.",
            labels=["model", "version", "feature"],
        )
        prediction = GaugeMetricFamily(
            PREDICTION_DRIFT, "Drift score of the predicted-class distribution.", labels=["model", "version"]
        )
        for s in scores:
            for feature, value in sorted(s.features.items()):
                if math.isfinite(value):
                    drift.add_metric([s.model, s.version, feature], value)
            if s.prediction is not None and math.isfinite(s.prediction):
                prediction.add_metric([s.model, s.version], s.prediction)
        up = GaugeMetricFamily(SCORER_UP, "1 when the drift scorer answered on the last scrape, else 0.")
        up.add_metric([], 1.0 if ok else 0.0)
        yield from (drift, prediction, up)


def registry(scorer: Scorer, min_interval: float = 0.0) -> CollectorRegistry:
    """A registry holding only the drift gauges of ``scorer`` (what the monitor's ``/metrics`` serves)."""
    reg = CollectorRegistry(auto_describe=False)
    reg.register(DriftCollector(scorer, min_interval))
    return reg


def resolve(spec: str, what: str) -> Callable[..., object]:
    """The function named by ``spec`` (``package.module:function``), for the monitor service's options."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise InputError(f"{what} {spec!r} is not of the form package.module:function: name the function so.")
    try:
        found: object = importlib.import_module(module_name)
        for part in attr.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise InputError(f"{what} {spec!r} cannot be imported ({exc}): check the module path and its name.") from None
    if not callable(found):
        raise InputError(f"{what} {spec!r} is a {type(found).__name__}, not a function: name a function.")
    return found
