"""Turn the registry webhooks on: the monitor service up (its receiver is
:mod:`mlops_workbench.monitoring.registry_hooks`) and the tracking server's webhook pointed at it, so from then on
the audit log also shows what a bare ``MlflowClient`` did (``workbench registry watch``)."""

from __future__ import annotations

import time

from mlops_workbench import procs, tracking
from mlops_workbench.errors import ServiceError
from mlops_workbench.monitoring import service
from mlops_workbench.registry import webhooks
from mlops_workbench.serving import paths
from mlops_workbench.workbench import Workbench


def watch(wb: Workbench, timeout: float = 60.0) -> str:
    """Start the monitor service (or use the running one) and point the tracking server's webhook at its receiver;
    returns the receiver's URL once every later alias change is delivered to it (the server's cached list of
    webhooks has expired, :data:`tracking.WEBHOOK_CACHE_TTL`). MLflow's test delivery proves the server reaches it
    with the right signature."""
    tracking.up(wb)
    running = procs.get(wb, service.SERVICE) or service.start(wb, timeout=timeout)
    url = running.url + paths.REGISTRY_HOOK
    hook, registered = webhooks.register(wb, url), time.monotonic()
    tested = tracking.client(wb).test_webhook(hook, "model_version_alias.created")
    if not tested.success:
        raise ServiceError(
            f"The tracking server could not deliver to {url} ({tested.response_status or tested.error_message}): "
            "restart it with `workbench mlflow down` and `workbench mlflow up`, so it runs with the settings that "
            "allow a receiver on loopback."
        )
    # an alias change made before the server's webhook list expires would still meet the list without this hook
    time.sleep(max(0.0, registered + tracking.WEBHOOK_CACHE_TTL - time.monotonic()))
    return url
