"""The ``web`` metric provider of the AnalysisTemplates: one policy metric, measured now.

``GET /measure/{metric}?canary=HASH&stable=HASH&namespace=NS`` reads the model pods' counters
over the metric's window from Prometheus (canary and stable told apart by
``rollouts_pod_template_hash``), builds the same :class:`~mlops_workbench.rollout.metrics.Snapshot`
the local controller uses, and returns :func:`mlops_workbench.rollout.analysis.measure` as JSON.
A measurement in phase ``error`` (no data) answers 503, so Argo counts a measurement error.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse

from mlops_workbench.k8s import promql
from mlops_workbench.rollout import analysis, prometheus
from mlops_workbench.rollout import policy as pol
from mlops_workbench.rollout.metrics import Snapshot

Query = Callable[[str], list[dict[str, Any]]]


def prometheus_query(url: str, timeout: float = 5.0) -> Query:
    """The query function of the Prometheus at ``url`` (its failures raise a RuntimeError)."""

    def query(expr: str) -> list[dict[str, Any]]:
        return prometheus.query(url, expr, timeout=timeout)

    return query


def snapshot(query: Query, namespace: str, roles: dict[str, str], window: float) -> Snapshot:
    """Counter increases over the last ``window`` seconds, keyed by role (``canary``/``stable``)."""
    w = promql.duration(window)
    hashes = "|".join(roles)
    sel = f'{{namespace="{namespace}",{promql.HASH_LABEL}=~"{hashes}"}}'
    snap = Snapshot(t=0.0, source="prometheus")
    by = promql.HASH_LABEL
    for row in query(f"sum by ({by}, status) (increase({promql.REQUESTS}{sel}[{w}]))"):
        m = row["metric"]
        snap.requests[(roles[m[by]], m.get("status", ""))] = float(row["value"][1])
    for row in query(f"sum by ({by}, le) (increase({promql.BUCKETS}{sel}[{w}]))"):
        m = row["metric"]
        snap.buckets.setdefault(roles[m[by]], {})[float(m["le"])] = float(row["value"][1])
    for row in query(f"sum by ({by}, label) (increase({promql.PREDICTIONS}{sel}[{w}]))"):
        m = row["metric"]
        snap.predictions.setdefault(roles[m[by]], {})[m.get("label", "")] = float(row["value"][1])
    return snap


def create_app(policy: pol.Policy, query: Query) -> FastAPI:
    app = FastAPI(title="workbench rollout analysis (Argo web metric provider)")
    metrics = {m.name: m for m in policy.analysis.metrics}

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok", "policy": policy.name}

    @app.get("/measure/{name}")
    def measure(name: str, canary: str, stable: str, namespace: str) -> JSONResponse:
        metric = metrics.get(name)
        if metric is None:
            return JSONResponse(
                {"error": f"no metric '{name}' in policy {policy.name}; choose one of {sorted(metrics)}"}, 404
            )
        if not canary or not stable or canary == stable:
            return JSONResponse({"error": "canary and stable must be two different pod template hashes"}, 400)
        try:
            win = snapshot(query, namespace, {canary: "canary", stable: "stable"}, metric.lookback)
        except (RuntimeError, ValueError) as err:
            return JSONResponse(
                {"phase": analysis.MeasurementPhase.ERROR, "message": f"metrics unavailable: {err}"}, 503
            )
        m = analysis.measure(metric, win, policy.analysis.min_sample_size)
        body = m.to_event()
        return JSONResponse(body, 503 if m.phase == analysis.MeasurementPhase.ERROR else 200)

    return app
