"""Building blocks shared by the drills: versions with known faults, registry moves, a model server, traffic,
and the guard checks that catch destructive "fixes" (everything stopped, registry deleted, audit log edited).

Everything goes through the package's real APIs (``train``, ``tracking``, ``registry``, ``serving``).
"""

from __future__ import annotations

import hashlib
from typing import Any

from mlops_workbench import procs, registry, tracking
from mlops_workbench.alias import Alias
from mlops_workbench.drills import models
from mlops_workbench.drills.base import SETUP_APPROVER, DrillContext
from mlops_workbench.errors import ServiceError
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry import audit, integrity
from mlops_workbench.serving.client import ModelServerClient, Unreachable
from mlops_workbench.workbench import Workbench

LENIENT_GATE = {"tolerance": 1.0, "min_gain": -1.0}
"""A gate loosened so that any release goes out (the bad-model incident's upstream cause)."""
VERSICOLOR = models.TYPICAL["versicolor"]
"""A flower every good model names right (the guard's probe)."""


def log_version(ctx: DrillContext, fault: models.Fault = models.GOOD) -> str:
    """Log a model with ``fault`` in a run of the drill's experiment and register it; returns the version."""
    import mlflow

    tracking.up(ctx.wb, timeout=300)
    model, example = models.fitted(fault)
    mlflow.set_experiment(ctx.experiment)
    with mlflow.start_run():
        return integrity.log_registered(ctx.wb, model, example, ctx.model_name)


def good_releases(ctx: DrillContext, count: int) -> list[str]:
    """``count`` good versions, each logged and shipped to production in turn; returns them, oldest first."""
    shipped = []
    for number in range(1, count + 1):
        shipped.append(log_version(ctx))
        ship(ctx, shipped[-1], f"release {number}")
    return shipped


def ship(ctx: DrillContext, version: str, reason: str, **promote: Any) -> None:
    """Promote ``version`` through staging to production as the setup (never the learner)."""
    registry.release(ctx.wb, ctx.model_name, version, approver=SETUP_APPROVER, reason=reason, **promote)


def serve(ctx: DrillContext) -> procs.Service:
    """Start (or reuse) the drill's model server on ``models:/<model>@production``."""
    from mlops_workbench.serving.server import start_server

    return start_server(
        ctx.wb, f"models:/{ctx.model_name}@{Alias.PRODUCTION}", name=ctx.server, model_name=ctx.model_name
    )


def send_traffic(url: str, n: int, seed: int = 0) -> list[int]:
    """``n`` prediction requests of Iris-like flowers, one per request; returns the HTTP statuses."""
    import numpy as np

    from mlops_workbench.rollout.load import iris_like

    server = ModelServerClient(url)  # a router answers predictions the same way
    statuses: list[int] = []
    for row in iris_like(np.random.default_rng(seed), n).tolist():
        reply = server.send([row])
        if reply.status == 0:
            raise ServiceError(
                f"The server at {url} stopped answering after {len(statuses)} of {n} requests "
                f"({reply.problem}): is it running? `workbench ps` lists the services."
            )
        statuses.append(reply.status)
    return statuses


def served_requests(url: str, version: str) -> int:
    """Prediction requests version ``version`` answered, from the server's Prometheus counter."""
    from prometheus_client.parser import text_string_to_metric_families

    total = 0.0
    for family in text_string_to_metric_families(ModelServerClient(url).metrics(timeout=10)):
        for sample in family.samples:
            if sample.name == "workbench_model_requests_total" and sample.labels.get("version") == str(version):
                total += sample.value
    return int(total)


def audit_fingerprint(wb: Workbench) -> dict[str, Any]:
    """Number of lines and sha256 of the registry audit log now (saved at setup, compared by the guard)."""
    path = audit.log_path(wb)
    text = path.read_bytes() if path.exists() else b""
    return {"audit_lines": text.count(b"\n"), "audit_sha": hashlib.sha256(text).hexdigest()}


def registry_entries_since(ctx: DrillContext) -> list[audit.AuditEntry]:
    """Audit entries of the drill's model written after the setup finished."""
    start = int(ctx.fact("audit_lines"))
    return [e for e in audit.read(ctx.wb)[start:] if e.model == ctx.model_name]


# --- guards: the checks every destructive "fix" fails ------------------------------------------------


def guard_audit_intact(ctx: DrillContext) -> None:
    """The registry audit log still holds every line it had when the drill started (append-only)."""
    path = audit.log_path(ctx.wb)
    if not path.exists():
        fail(f"The registry audit log {path} is gone: audit logs are append-only; restore it from a backup.")
    lines, sha = int(ctx.fact("audit_lines")), ctx.fact("audit_sha")
    head = b"".join(path.read_bytes().splitlines(keepends=True)[:lines])
    if hashlib.sha256(head).hexdigest() != sha:
        fail(f"The first {lines} lines of {path} changed: the audit trail must stay intact (only append to it).")


def guard_registry_intact(ctx: DrillContext) -> None:
    """The drill's registered model and every version it had still exist."""
    try:
        client = registry.client(ctx.wb)
    except registry.RegistryError as exc:
        fail(f"The registry is not reachable: {exc}")
    known = {str(v.version) for v in client.search_model_versions(f"name='{ctx.model_name}'")}
    missing = sorted(set(map(str, ctx.fact("versions"))) - known)
    if missing:
        fail(
            f"Version(s) {missing} of '{ctx.model_name}' were deleted: nothing that was registered may be lost; "
            "roll back by alias instead of deleting versions or models."
        )


def production(ctx: DrillContext) -> str:
    """The version ``production`` points to (fails when unset)."""
    mv = registry.get_alias(ctx.wb, ctx.model_name, Alias.PRODUCTION)
    if mv is None:
        fail(f"'{ctx.model_name}' has no production alias: users get nothing. Point it at a good version.")
    return str(mv.version)


def guard_server_answers(
    ctx: DrillContext, expect_version: str | None = None, probe: list[float] = VERSICOLOR
) -> dict[str, Any]:
    """The drill's model server is up, answers ``probe`` with 200 and (if given) serves ``expect_version``."""
    service = procs.get(ctx.wb, ctx.server)
    if service is None:
        fail(
            f"The model server '{ctx.server}' is not running: users get no answers at all. Keep it serving "
            "and repair what it serves instead (move the alias, then ModelServerClient.of(lab.wb, url).reload())."
        )
    server = ModelServerClient.of(ctx.wb, service.url)
    try:
        info = server.version(timeout=10)
    except Unreachable as exc:
        fail(f"The model server at {service.url} does not answer ({exc.problem}): restart it.")
    answer = server.send([probe], timeout=10)
    if answer.status == 0:
        fail(f"The model server at {service.url} does not answer ({answer.problem}): restart it.")
    if answer.status != 200:
        fail(f"The model server answers {answer.status} to a valid Iris payload: {answer.text[:200]}")
    if expect_version is not None and str(info.get("version")) != str(expect_version):
        fail(
            f"The model server still serves v{info.get('version')} while production is v{expect_version}: "
            f"ModelServerClient.of(lab.wb, '{service.url}').reload() so it follows the alias."
        )
    return {"url": service.url, "version": str(info.get("version")), "prediction": answer.json()["predictions"][0]}
