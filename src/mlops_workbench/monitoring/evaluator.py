"""The fallback's loop: query each alert rule, step the pure fallback, deliver notifications to the webhook.

Each rule's expression is an instant query against Prometheus when one runs for the state folder
(:class:`PrometheusQueries`), else it is evaluated here on ``/metrics`` texts scraped once per tick
(:class:`ScrapeQueries`, through the model servers' client and :mod:`~.promeval`). A query that fails leaves
its rule's alerts as they were; a notification that cannot be delivered is planned again on the next tick.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from typing import Protocol

from prometheus_client.parser import text_string_to_metric_families

from mlops_workbench.errors import WorkbenchError
from mlops_workbench.monitoring import fallback, promeval
from mlops_workbench.monitoring.alertmanager import LAB_TIMING, Timing
from mlops_workbench.monitoring.rules import RuleFile
from mlops_workbench.monitoring.webhook import Notification
from mlops_workbench.rollout import prometheus

log = logging.getLogger("mlops_workbench.monitoring.evaluator")


class Queries(Protocol):
    """Where rule expressions are answered: :meth:`refresh` once per tick, then :meth:`query` per rule."""

    name: str

    def refresh(self) -> None: ...

    def query(self, expr: str) -> list[fallback.Sample]: ...


class PrometheusQueries:
    """Instant queries against the Prometheus at ``url``."""

    name = "prometheus"

    def __init__(self, url: str) -> None:
        self.url = url

    def refresh(self) -> None:
        return None

    def query(self, expr: str) -> list[fallback.Sample]:
        return [
            fallback.Sample(row["metric"], float(row["value"][1]))
            for row in prometheus.query(self.url, expr)
            if isinstance(row, dict)
        ]


class ScrapeQueries:
    """The expressions evaluated on ``/metrics`` texts read by ``fetchers`` (one reading per tick, kept for
    ``rate``); a target that does not answer is left out of that reading."""

    name = "scrape"

    def __init__(self, fetchers: Sequence[Callable[[], str]], clock: Callable[[], float] = time.time) -> None:
        self.fetchers, self.clock = list(fetchers), clock
        self.history = promeval.History()

    def refresh(self) -> None:
        series: promeval.Vector = {}
        for fetch in self.fetchers:
            try:
                text = fetch()
            except WorkbenchError as exc:
                log.warning("scrape failed: %s", exc)
                continue
            for family in text_string_to_metric_families(text):
                for s in family.samples:
                    series[promeval.labels({**s.labels, promeval.NAME: s.name})] = float(s.value)
        self.history.add(self.clock(), series)

    def query(self, expr: str) -> list[fallback.Sample]:
        value = promeval.evaluate(expr, self.history)
        if isinstance(value, float):
            raise promeval.UnsupportedQuery(f"{expr!r} is a number, not a vector: an alert rule needs a vector")
        return [fallback.Sample(dict(key), v) for key, v in value.items()]


class Evaluator:
    """Evaluates ``rules`` every ``interval`` seconds and delivers what Alertmanager would have sent."""

    def __init__(
        self,
        rules: RuleFile,
        queries: Callable[[], Queries],
        deliver: Callable[[Notification], object],
        timing: Timing = LAB_TIMING,
        external_url: str = "",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.rules, self.queries, self.deliver = rules.alerts, queries, deliver
        self.timing, self.external_url, self.clock = timing, external_url, clock
        self.state = fallback.State()
        self.errors: dict[str, str] = {}
        """The last query error of each rule that has one (shown by ``workbench monitor status``)."""

    def tick(self) -> list[Notification]:
        """One evaluation and whatever notifications fall due; returns those delivered."""
        source = self.queries()
        source.refresh()
        results: dict[str, list[fallback.Sample] | None] = {}
        for rule in self.rules:
            assert rule.alert is not None
            try:
                results[rule.alert] = source.query(rule.expr)
                self.errors.pop(rule.alert, None)
            except WorkbenchError as exc:
                results[rule.alert], self.errors[rule.alert] = None, f"{source.name}: {exc}"
        now = self.clock()
        state = fallback.State(fallback.evaluate(self.state.alerts, self.rules, results, now), self.state.groups)
        delivered = []
        for send in fallback.plan(state, self.timing, now, self.external_url):
            if send.notification is not None:
                try:
                    self.deliver(send.notification)
                except Exception as exc:  # the webhook is down or refused: try again on the next tick
                    log.warning("cannot deliver %s: %s", send.group_key, exc)
                    continue
                delivered.append(send.notification)
            state = fallback.commit(state, send)
        self.state = state
        return delivered

    def run(self, stop: threading.Event, interval: float) -> None:
        """Tick every ``interval`` seconds until ``stop`` is set (errors are logged; the loop goes on)."""
        while not stop.wait(interval):
            try:
                self.tick()
            except Exception:
                log.exception("alert evaluation failed")
