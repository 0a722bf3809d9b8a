"""The receiver of MLflow's registry webhooks: alias changes made outside the workbench go to the audit log.

``POST /hooks/mlflow`` is a route of the monitor service (:mod:`~.service`). A delivery must carry MLflow's
HMAC signature made with the state folder's secret and a fresh timestamp (:func:`registry.webhooks.verify`):
an unsigned, badly signed or stale one gets 401, a malformed one 400 or 422, and none of them is recorded. For a
verified alias event the receiver takes the model's registry lock (the one every workbench promotion and rollback
holds while it moves aliases and writes its audit line), and appends an ``out_of_band`` audit line unless a
workbench line explains the event or the same delivery was recorded already (MLflow retries).

:func:`mlops_workbench.monitoring.registry_watch.watch` starts the monitor service and registers the webhook.
"""

from __future__ import annotations

import time

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from mlops_workbench.registry import audit, webhooks
from mlops_workbench.registry.webhooks import AliasEvent, Refused
from mlops_workbench.serving import paths
from mlops_workbench.workbench import Workbench


def record(wb: Workbench, alias_event: AliasEvent, delivery: str) -> audit.AuditEntry | None:
    """The out-of-band line appended for ``alias_event``, or None when the workbench made the change itself (or
    this delivery was recorded before)."""
    with audit.lock(wb, f"registry-{alias_event.data.name}"):
        entries = audit.read(wb)
        if any(e.delivery == delivery for e in entries) or webhooks.explains(entries, alias_event):
            return None
        return audit.append(wb, webhooks.out_of_band(alias_event, delivery))


def add_routes(app: FastAPI, wb: Workbench) -> None:
    """``POST`` :data:`paths.REGISTRY_HOOK` on ``app``, recording into ``wb``'s audit log."""

    @app.post(paths.REGISTRY_HOOK)
    async def registry_hook(request: Request) -> JSONResponse:
        body = await request.body()
        try:
            key = webhooks.secret(wb)
            delivery = webhooks.verify(key, request.headers, body, time.time())
            found = webhooks.event(body)
        except Refused as err:
            return JSONResponse({"error": str(err)}, status_code=err.status)
        if found is None:
            return JSONResponse({"recorded": False, "why": "not an alias event"})
        if found.is_mlflow_test:
            return JSONResponse({"recorded": False, "why": "MLflow's test delivery: the signature checks out"})
        written = await run_in_threadpool(record, wb, found, delivery)
        why = "recorded as an out-of-band change" if written else "made by the workbench (or recorded before)"
        return JSONResponse({"recorded": written is not None, "why": why})
