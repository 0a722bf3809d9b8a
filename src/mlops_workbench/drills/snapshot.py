"""Putting a freshly prepared drill back after a validation case without preparing it again.

Preparing a drill costs a lot (MLflow runs, a git + DVC project, ``dvc repro``). After a case, the drill is
brought back to the state its setup left when everything the case may have changed can be undone exactly:

- the drill's folder is replaced by a copy taken right after the setup;
- runs the case logged in the drill's experiment are deleted and runs it deleted there are restored;
- everything else the checks could read outside the folder (services, experiments, runs with their data and
  reproduction reports, registered models with their versions and aliases, the registry audit log) must then
  be exactly as it was after the setup.

When any of that differs (a model deleted, an alias moved, the audit log grown, a service stopped) the caller
prepares the drill again. A drill that runs services never uses a snapshot: a server keeps state (counters,
a loaded model) no fingerprint can see.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlops_workbench import procs, tracking
from mlops_workbench.drills.base import Drill, DrillContext
from mlops_workbench.errors import WorkbenchError
from mlops_workbench.registry import audit

if TYPE_CHECKING:  # mlflow is imported where used, as in the rest of the package
    from mlflow import MlflowClient

Fingerprint = dict[str, Any]


@dataclass(frozen=True)
class Snapshot:
    """The drill folder's copy and the fingerprint of the state outside it, right after the setup."""

    copy: Path
    outside: Fingerprint


def take(drill: Drill, ctx: DrillContext, into: Path) -> Snapshot | None:
    """Copy the drill folder into ``into`` (emptied first) and fingerprint the rest; ``None`` when the drill runs
    services or the state cannot be read."""
    from mlflow.exceptions import MlflowException

    if drill.services(ctx):
        return None
    try:
        outside = fingerprint(ctx)
    except (MlflowException, WorkbenchError, OSError):
        return None
    shutil.rmtree(into, ignore_errors=True)
    _copy(ctx.folder, into)
    return Snapshot(into, outside)


def bring_back(ctx: DrillContext, snapshot: Snapshot) -> bool:
    """Undo the runs a case logged or deleted, then put the folder back when the outside state is exactly the
    snapshot's; ``False`` (the folder left as it is) when it is not, and the drill must be prepared again."""
    from mlflow.exceptions import MlflowException

    try:
        _undo_runs(tracking.client(ctx.wb), ctx.experiment, snapshot.outside["runs"])
        if fingerprint(ctx) != snapshot.outside:
            return False
    except (MlflowException, WorkbenchError, OSError):
        return False
    shutil.rmtree(ctx.folder, ignore_errors=True)
    _copy(snapshot.copy, ctx.folder)
    return True


def fingerprint(ctx: DrillContext) -> Fingerprint:
    """Everything outside the drill folder a check may read, as plain values."""
    from mlflow.entities import ViewType

    client = tracking.client(ctx.wb)
    experiments = client.search_experiments(view_type=ViewType.ALL)
    log = audit.log_path(ctx.wb)
    return {
        "services": sorted((s.name, s.pid, s.port) for s in procs.running(ctx.wb)),
        "experiments": sorted((e.experiment_id, e.name, e.lifecycle_stage) for e in experiments),
        "runs": _runs(ctx, client, [e.experiment_id for e in experiments]),
        "models": _models(client),
        "audit": _digest(log.read_bytes()) if log.exists() else None,
    }


def _runs(ctx: DrillContext, client: MlflowClient, experiments: list[str]) -> dict[str, str]:
    """Every active run by id: a digest of its status, data (metrics, params, tags) and reproduction report."""
    from mlflow.entities import ViewType

    found: dict[str, str] = {}
    token = None
    while True:
        page = client.search_runs(experiments, run_view_type=ViewType.ACTIVE_ONLY, max_results=1000, page_token=token)
        for run in page:
            report = ctx.wb.layout.reproduction(run.info.run_id) / "reproduction.json"
            found[run.info.run_id] = _digest(
                json.dumps(
                    [run.info.status, run.data.to_dictionary(), report.read_text() if report.is_file() else None],
                    sort_keys=True,
                ).encode()
            )
        token = page.token
        if not token:
            return found


def _models(client: MlflowClient) -> list[Any]:
    """Every registered model with its aliases, tags and versions (number, run, status, tags)."""
    models = []
    for model in client.search_registered_models(max_results=1000):
        versions = client.search_model_versions(f"name='{model.name}'")
        models.append(
            [
                model.name,
                sorted(model.aliases.items()),
                sorted(model.tags.items()),
                sorted((str(v.version), v.run_id, v.status, sorted(v.tags.items())) for v in versions),
            ]
        )
    return sorted(models)


def _undo_runs(client: MlflowClient, experiment: str, kept: dict[str, str]) -> None:
    """In the drill's own experiment only, delete the active runs the snapshot did not have and restore the
    snapshot's runs that were deleted. Runs elsewhere are never touched: a change there shows in the
    fingerprint, and the drill is prepared again."""
    from mlflow.entities import ViewType

    found = client.get_experiment_by_name(experiment)
    if found is None:
        return
    token = None
    while True:
        page = client.search_runs([found.experiment_id], run_view_type=ViewType.ALL, max_results=1000, page_token=token)
        for run in page:
            active = run.info.lifecycle_stage == "active"
            if active and run.info.run_id not in kept:
                client.delete_run(run.info.run_id)
            elif not active and run.info.run_id in kept:
                client.restore_run(run.info.run_id)
        token = page.token
        if not token:
            return


def _copy(source: Path, target: Path) -> None:
    # fresh timestamps, as a new setup would write them: git and DVC hash the files again rather than trust
    # a cached stat of a file this copy replaced
    shutil.copytree(source, target, symlinks=True, copy_function=shutil.copy)


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
