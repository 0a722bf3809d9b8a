"""The monitor service: one uvicorn process serving the drift gauges and the alert webhook (and the fallback).

``GET /metrics`` exports the scorer's drift gauges (:mod:`~.exporter`), ``POST /alerts`` is the webhook receiver
(:mod:`~.webhook`), ``POST /hooks/mlflow`` receives MLflow's registry webhooks (:mod:`~.registry_hooks`),
``GET /health`` and ``GET /status`` say how it runs. Where Alertmanager is missing it is started with the rule file, and a thread evaluates the rules and posts Alertmanager's notifications to its own
webhook (:mod:`~.evaluator`), so both paths go through the same receiver. :func:`start` runs it as the
background service ``monitor`` through :mod:`mlops_workbench.procs` (``workbench monitor serve``).
"""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from mlops_workbench import procs
from mlops_workbench.monitoring import evaluator, exporter, registry_hooks, rules, webhook
from mlops_workbench.monitoring.alertmanager import LAB_TIMING, Timing
from mlops_workbench.monitoring.autoretrain import RetrainWiring
from mlops_workbench.monitoring.watch import LogScorer, Watch
from mlops_workbench.rollout import prometheus
from mlops_workbench.serving import auth, paths
from mlops_workbench.serving.client import ModelServerClient
from mlops_workbench.workbench import Workbench

SERVICE = "monitor"
STATUS = paths.MONITOR_STATUS
HEALTH, METRICS = paths.HEALTH, paths.METRICS


@dataclass(frozen=True)
class Fallback:
    """The in-process alerting of a monitor started without Alertmanager."""

    rules: Path
    scrape: Sequence[str] = ()
    """Base URLs of the model servers (and router) whose ``/metrics`` the rules read when no Prometheus runs."""
    interval: float = 1.0
    timing: Timing = field(default=LAB_TIMING)


def create_app(
    wb: Workbench,
    scorer: exporter.Scorer = exporter.no_scores,
    on_firing: webhook.OnFiring | None = None,
    *,
    fallback: Fallback | None = None,
    self_url: str = "",
    token: str | None = None,
) -> FastAPI:
    """The monitor app of state folder of ``wb``; ``self_url`` is where it listens (the fallback posts there)."""
    token = token or auth.ensure_token(wb)
    registry = exporter.registry(scorer)
    receiver = webhook.Receiver(wb, on_firing)
    loop: evaluator.Evaluator | None = None
    stop = threading.Event()
    if fallback is not None:
        loop = _evaluator(wb, fallback, lambda: generate_latest(registry).decode(), self_url, token)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if loop is not None and fallback is not None:
            threading.Thread(target=loop.run, args=(stop, fallback.interval), name="alert-eval", daemon=True).start()
        yield
        stop.set()

    app = FastAPI(title="mlops-workbench monitor", version="1", lifespan=lifespan)

    @app.get(HEALTH)
    async def health() -> JSONResponse:
        return JSONResponse({"status": "ok", "alerting": "fallback" if loop else "alertmanager"})

    @app.get(METRICS)
    async def metrics() -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    @app.get(STATUS)
    async def status() -> JSONResponse:
        scoring = {"scorer": scorer.status().model_dump(mode="json")} if isinstance(scorer, LogScorer) else {}
        if loop is None:
            return JSONResponse({"alerting": "alertmanager"} | scoring)
        firing = sorted({a.rule for a in loop.state.alerts.values() if a.firing})
        pending = sorted({a.rule for a in loop.state.alerts.values() if a.fired_at is None})
        rules_path = str(fallback.rules) if fallback else None
        return JSONResponse(
            {"alerting": "fallback", "rules": rules_path, "firing": firing, "pending": pending, "errors": loop.errors}
            | scoring
        )

    webhook.add_routes(app, receiver, token)
    registry_hooks.add_routes(app, wb)
    return app


def _evaluator(
    wb: Workbench, fallback: Fallback, own_metrics: Callable[[], str], self_url: str, token: str
) -> evaluator.Evaluator:
    fetchers = [own_metrics, *[ModelServerClient.of(wb, url).metrics for url in fallback.scrape]]
    scraped = evaluator.ScrapeQueries(fetchers)

    def queries() -> evaluator.Queries:
        url = prometheus.url(wb)
        return evaluator.PrometheusQueries(url) if url else scraped

    def deliver(notification: webhook.Notification) -> None:
        body = notification.model_dump(mode="json", by_alias=True)
        answer = procs.http().post(self_url + webhook.PATH, json=body, headers=auth.headers(token), timeout=10.0)
        answer.raise_for_status()

    return evaluator.Evaluator(rules.load(fallback.rules), queries, deliver, fallback.timing, external_url=self_url)


def start(
    wb: Workbench,
    *,
    port: int | None = None,
    scorer: str | None = None,
    on_firing: str | None = None,
    watch: Watch | None = None,
    retrain: RetrainWiring | None = None,
    fallback: Fallback | None = None,
    timeout: float = 60.0,
) -> procs.Service:
    """Start ``workbench monitor serve`` as the background service ``monitor`` (or return the running one).

    ``scorer`` and ``on_firing`` name functions (``package.module:function``) the service imports; ``watch`` has it
    score the prediction log itself (:mod:`~.watch`) and ``retrain`` retrain on each newly firing alert group
    (:mod:`~.autoretrain`). Without ``port`` it listens on its default port (9095 + ``WORKBENCH_PORT_OFFSET``) or
    the next free one."""
    auth.ensure_token(wb)
    args: list[str] = []
    if scorer:
        args += ["--scorer", scorer]
    if on_firing:
        args += ["--on-firing", on_firing]
    if watch is not None:
        args += watch_args(watch)
    if retrain is not None:
        args += retrain.args()
    if fallback is not None:
        args += ["--fallback-rules", str(Path(fallback.rules).resolve()), "--eval-interval", str(fallback.interval)]
        args += [arg for url in fallback.scrape for arg in ("--scrape", url)]
        t = fallback.timing
        args += ["--group-wait", str(t.group_wait), "--group-interval", str(t.group_interval)]
        args += ["--repeat-interval", str(t.repeat_interval)]

    def run(listen: int) -> procs.Service:
        cmd = procs.workbench_cmd("monitor", "serve", "--port", str(listen), *args)
        return procs.start(wb, SERVICE, cmd, listen, health_path=HEALTH, timeout=timeout)

    return run(port) if port else procs.on_default_port(wb, "monitor", run)


def watch_args(watch: Watch) -> list[str]:
    """The ``monitor serve`` options that rebuild ``watch``."""
    args = ["--watch", watch.model]
    args += ["--watch-version", watch.version] if watch.version else []
    args += ["--window-last", str(watch.last)] if watch.last is not None else []
    args += ["--window-seconds", str(watch.seconds)] if watch.seconds is not None else []
    return args
