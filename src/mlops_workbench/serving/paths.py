"""The URL paths of the model server, the router and the monitor service, written down once.

The servers declare their routes with these names and :mod:`mlops_workbench.serving.client` calls them,
so renaming an endpoint is a change to this file alone. Nothing here imports a web framework: the server,
the router and every client can load it cheaply.
"""

from __future__ import annotations

HEALTH = "/health"
"""Liveness (model server: the version it serves; router: its weights)."""
METRICS = "/metrics"
"""Prometheus exposition text."""
OPENAPI = "/openapi.json"
VERSION = "/version"
"""What a model server serves now: name, version, alias, run id, model URI."""
PREDICT = "/predict"
"""The workbench's own prediction payload (``instances`` or ``records``)."""
INVOCATIONS = "/invocations"
"""MLflow's scoring protocol, as ``mlflow models serve`` speaks it."""
PREDICTION_PATHS = (PREDICT, INVOCATIONS)

ADMIN_PREFIX = "/admin/"
"""Every path under it needs the state folder's bearer token (:mod:`mlops_workbench.serving.auth`)."""
RELOAD = "/admin/reload"
"""Model server: resolve the model URI again and load the version it points to now."""
FAULTS = "/admin/faults"
"""Model server: read or set the injected faults."""
WEIGHTS = "/admin/weights"
"""Router: read or set the canary's share of traffic."""
SHADOW = "/admin/shadow"
"""Router: read, set or clear the shadow upstream that gets a mirrored copy of every prediction request."""
REGISTRY_HOOK = "/hooks/mlflow"
"""Monitor service: MLflow's registry webhooks (alias set or deleted), signed with the state folder's secret."""

UPSTREAM_HEADER = "x-workbench-upstream"
"""The response header in which the router names the upstream (``stable`` or ``canary``) that answered."""
SHADOW_HEADER = "x-workbench-shadow"
"""The request header the router adds to a mirrored copy (value: the shadow's model version), marking it as a copy
for whoever reads the request. The model server does not read it: the shadow's prediction-log rows are told from
live ones by the shadow's version."""
MONITOR_STATUS = "/status"
"""The monitor service (lab 07): how its alerts are routed and, with the fallback, which rules fire or wait."""

PROBE_HEADER = "x-workbench-probe"
"""The request header that marks a prediction request the workbench sends to measure a server itself (the strategy
panel's accuracy probe on held-out rows): answered and counted in ``/metrics`` as usual, but kept out of the
prediction log, so drift windows and A/B counts see only the traffic of the users."""

REQUEST_ID_HEADER = "x-request-id"
"""The request header a client may name its prediction request with, and the response header in which a model
server answers with the id under which it logged the request's predictions (``/predict`` also has it in the body)."""
