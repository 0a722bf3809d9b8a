"""Retrain on a data commit (lab 07): the learner's pipeline run again on new data, the result registered with
its lineage and judged against production on a fresh labelled window.

New data enters the learner's workspace (a git + DVC repository, as lab 02 makes it) as a commit that changes a
DVC-tracked file. :func:`retrain`, under a lock per model so an alert and a commit hook never retrain at once:

1. refuses a workspace whose inputs differ from its commit, and fetches the committed data when it is missing
   (``dvc pull``, or ``dvc checkout`` without a remote);
2. validates the data against the Iris schema: a rejected dataset stops here (:class:`DataRejected`);
3. runs ``dvc repro``;
4. logs the run with lab 02's lineage tags (``git.commit`` is the data commit, ``data.md5`` its DVC hash) plus the
   ``retrain.*`` tags of :func:`retrain_tags` (cause, attempt), registers it, and commits the results (``dvc.lock``,
   metrics) on top of the data commit;
5. judges it against production with the registry's gate on the window it was given; a candidate that loses raises
   :class:`LostGate`.

No alias moves here: releasing a version that passed is :mod:`mlops_workbench.monitoring.release`'s job. Every step
is one audit line carrying the attempt's :class:`~mlops_workbench.registry.audit.Lineage`. :func:`pending_data` tells
a commit hook or a poller whether the workspace holds data no retrain has finished with; :func:`on_alert` makes the
webhook receiver's ``on_firing`` action.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

import pandas as pd
from pydantic import BaseModel, ConfigDict

from mlops_workbench import paramspec, registry, tracking
from mlops_workbench.data import DataValidationError, load_csv, validate
from mlops_workbench.errors import Failed, InputError
from mlops_workbench.paramspec import RegistryParams
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome, Cause, Lineage
from mlops_workbench.registry.gate import GateResult
from mlops_workbench.versioning.lineage import log_model_run
from mlops_workbench.versioning.workspace import (
    DATA,
    METRICS,
    Workspace,
    WorkspaceError,
    file_md5,
    locked_md5,
    open_workspace,
)
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:  # the receiver's web stack loads where it runs, not with every retrain
    from mlops_workbench.monitoring.webhook import Notification

LOCK_TIMEOUT = 900.0  # a retrain (dvc repro, logging, gate) can take minutes on a busy machine
FINISHED = (AuditOutcome.REGISTERED, AuditOutcome.REJECTED)
"""Retrain outcomes after which the attempt's data counts as seen (a crash half-way leaves it pending)."""
DATA_COMMIT = Cause(kind="data-commit")
Window: TypeAlias = pd.DataFrame | Callable[[], pd.DataFrame]


class DataRejected(InputError):
    """The data commit breaks the Iris schema: nothing was trained or registered, production is untouched."""

    def __init__(self, message: str, problems: list[str]) -> None:
        super().__init__(message)
        self.problems = problems


class LostGate(Failed):
    """The retrained candidate lost the gate against production: it is registered, but no alias moved."""

    def __init__(self, result: RetrainResult) -> None:
        super().__init__(
            f"{result.gate.summary()}. Version {result.version} stays registered with its lineage, but no alias "
            f"moved: production is still {result.gate.production_version or 'unset'}. Fix the data (or the "
            "pipeline), commit and retrain."
        )
        self.result = result


class DataState(BaseModel):
    """The data a workspace commit holds: the md5 its ``.dvc`` file records, and the one its ``dvc.lock`` records
    (as of the last ``dvc repro`` committed; None when there is none)."""

    model_config = ConfigDict(extra="forbid")
    commit: str
    data_path: str
    data_md5: str | None
    locked_md5: str | None


class RetrainResult(BaseModel):
    """What one retrain produced: the registered candidate, its lineage and metrics, and the gate's verdict."""

    model_config = ConfigDict(extra="forbid")
    model: str
    version: str
    run_id: str
    lineage: Lineage
    data: DataState
    results_commit: str
    metrics: dict[str, float]
    gate: GateResult

    def summary(self) -> str:
        return (
            f"{self.model} version {self.version} retrained on commit {self.data.commit[:12]} (data md5 "
            f"{self.data.data_md5}), cause {self.lineage.cause.describe()}, run {self.run_id}: {self.gate.summary()}"
        )


def alert_cause(group_key: str, fingerprints: list[str] | tuple[str, ...] = (), alertname: str | None = None) -> Cause:
    """The cause of a retrain an alert group started (Alertmanager's ``groupKey`` and its alerts' fingerprints)."""
    return Cause(kind="alert", group_key=group_key, fingerprints=list(fingerprints), alertname=alertname)


def cause_of(notification: Notification) -> Cause:
    """The cause of a retrain a webhook notification starts: its group, firing fingerprints and ``alertname``."""
    return alert_cause(notification.group_key, notification.firing, notification.common_labels.get("alertname"))


def on_alert(
    wb: Workbench, workspace: Workspace | Path | str, evaluation: Window, **options: Any
) -> Callable[[Notification], RetrainResult]:
    """An ``on_firing`` action for the webhook receiver (:class:`~mlops_workbench.monitoring.webhook.Receiver`):
    each newly firing alert group retrains ``workspace`` with the group as its cause (``options``: those of
    :func:`retrain`). Pass a function as ``evaluation`` to fetch a fresh labelled window for each retrain."""
    return lambda notification: retrain(wb, workspace, evaluation, cause_of(notification), **options)


def data_state(ws: Workspace, data: str = DATA, rev: str = "HEAD") -> DataState:
    """The data commit ``rev`` of the workspace holds (read from git, not from the working tree)."""
    lock = ws.git("show", f"{rev}:dvc.lock") if ws.has("dvc.lock", rev) else None
    return DataState(
        commit=ws.git("rev-parse", rev),
        data_path=data,
        data_md5=ws.dvc_md5(data, rev=rev),
        locked_md5=locked_md5(lock, data),
    )


def last_retrain(entries: list[AuditEntry], model: str, workspace: str) -> Lineage | None:
    """The lineage of the last finished retrain of ``model`` from ``workspace`` (pure; None when there was none)."""
    for e in reversed(entries):
        if (
            e.action == AuditAction.RETRAIN
            and e.outcome in FINISHED
            and e.model == model
            and e.lineage is not None
            and e.lineage.workspace == workspace
        ):
            return e.lineage
    return None


def is_new_data(state: DataState, last: Lineage | None) -> bool:
    """Whether ``state`` holds data the last finished retrain did not train on (pure). A commit that changes no
    data (code, docs) is not new data; nothing tracked is never new."""
    if state.data_md5 is None:
        return False
    return last is None or last.data_md5 != state.data_md5


def pending_data(wb: Workbench, workspace: Workspace | Path | str, model_name: str | None = None) -> DataState | None:
    """The workspace's committed data when no retrain has finished with it yet, else None: what a commit hook or a
    poller asks before calling :func:`retrain`."""
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    state = data_state(ws)
    last = last_retrain(audit.read(wb), model_name or paramspec.model_name(), str(ws.path))
    return state if is_new_data(state, last) else None


def retrain_tags(lineage: Lineage) -> dict[str, str]:
    """The ``retrain.*`` tags of a retrained run and its model version (what ``registry lineage`` reads back)."""
    cause = lineage.cause
    tags = {
        "retrain.attempt": lineage.attempt,
        "retrain.cause": cause.kind,
        "retrain.data_commit": lineage.git_commit,
        "retrain.data_md5": lineage.data_md5 or "",
    }
    if cause.kind == "alert":
        tags |= {"retrain.alert_group": cause.group_key or "", "retrain.fingerprints": ",".join(cause.fingerprints)}
    return tags


def _window(evaluation: Window) -> pd.DataFrame:
    frame = evaluation() if callable(evaluation) else evaluation
    try:
        return validate(frame)
    except DataValidationError as err:
        raise InputError(
            f"The evaluation window cannot judge a candidate: {err} Pass a fresh labelled window (features and "
            "species) as a DataFrame."
        ) from None


def _ready(ws: Workspace, data: str) -> None:
    """Refuse a working tree that differs from its commit; fetch committed data that is missing."""
    dirty = ws.changed_files()
    path, recorded = ws.path / data, ws.dvc_md5(data)
    if path.exists() and recorded and file_md5(path) != recorded:
        dirty.append(f"{data} (differs from the md5 {data}.dvc records)")
    if dirty:
        raise InputError(
            f"{ws.path} has changes that are not committed: {', '.join(dirty)}. A retrain trains on a commit: "
            f"commit them (`dvc add {data}`, then git commit) or drop them (`git checkout -- .`, `dvc checkout "
            "--force`), then retrain."
        )
    if recorded and not path.exists():
        ws.dvc("pull" if ws.remote_url() else "checkout", "--quiet")


def retrain(
    wb: Workbench,
    workspace: Workspace | Path | str,
    evaluation: Window,
    cause: Cause | None = None,
    *,
    model_name: str | None = None,
    params: RegistryParams | dict[str, Any] | None = None,
    experiment: str = "retrain",
) -> RetrainResult:
    """Retrain the workspace's pipeline on its committed data, register the candidate and judge it (see the module).

    ``evaluation`` is the fresh labelled window the gate scores both models on (a DataFrame, or a function that
    returns one, called first); ``cause`` defaults to a data commit (``alert_cause(...)`` for an alert).
    Raises :class:`DataRejected` for data that breaks the schema, :class:`LostGate` for a candidate that loses.
    """
    model_name = model_name or paramspec.model_name()
    ws = workspace if isinstance(workspace, Workspace) else open_workspace(workspace)
    params = params if isinstance(params, RegistryParams) else RegistryParams.load(params)
    window = _window(evaluation)
    with audit.lock(wb, f"retrain-{model_name}", timeout=LOCK_TIMEOUT):
        _ready(ws, DATA)
        state = data_state(ws)
        lineage = Lineage(
            attempt=uuid.uuid4().hex[:12],
            cause=cause or DATA_COMMIT,
            workspace=str(ws.path),
            git_commit=state.commit,
            data_md5=state.data_md5,
        )

        def log(action: AuditAction, outcome: AuditOutcome, **fields: Any) -> None:
            audit.append(wb, AuditEntry(action=action, model=model_name, outcome=outcome, lineage=lineage, **fields))

        log(AuditAction.RETRAIN, AuditOutcome.STARTED, reason=f"cause: {lineage.cause.describe()}")
        try:
            load_csv(ws.path / DATA)
        except DataValidationError as err:
            log(AuditAction.RETRAIN, AuditOutcome.REJECTED, error=str(err))
            raise DataRejected(
                f"The data commit {state.commit[:12]} was rejected, nothing was trained or registered and production "
                f"is untouched. {err}\nThen commit the fixed data (`dvc add {DATA}`, git commit) and retrain.",
                err.problems,
            ) from None
        log(AuditAction.RETRAIN, AuditOutcome.VALIDATED, reason=f"{DATA} passes the Iris schema")
        try:
            ws.dvc("repro", "--quiet")
        except WorkspaceError as err:
            log(AuditAction.RETRAIN, AuditOutcome.REJECTED, error=f"dvc repro failed: {err}")
            raise
        log(AuditAction.RETRAIN, AuditOutcome.REPRODUCED, reason="dvc repro")
        run_id = log_model_run(wb, ws, experiment=experiment, run_name=f"retrain-{state.commit[:8]}")
        lineage = lineage.model_copy(update={"run_id": run_id})
        tags, c = retrain_tags(lineage), tracking.client(wb)
        for key, value in tags.items():
            c.set_tag(run_id, key, value)
        version = str(registry.register(wb, run_id, model_name).version)
        for key, value in tags.items():
            c.set_model_version_tag(model_name, version, key, value)
        results = ws.commit(f"Retrain on data commit {state.commit[:8]}: dvc.lock and metrics", "dvc.lock", METRICS)
        log(AuditAction.RETRAIN, AuditOutcome.REGISTERED, version=version, reason=f"results committed as {results}")
        gate = registry.quality_gate(wb, model_name, version, holdout_df=window, params=params)
        outcome = AuditOutcome.PASSED if gate.passed else AuditOutcome.FAILED
        log(AuditAction.GATE, outcome, version=version, gate=gate, reason=f"fresh window of {len(window)} rows")
        result = RetrainResult(
            model=model_name,
            version=version,
            run_id=run_id,
            lineage=lineage,
            data=state,
            results_commit=results,
            metrics={k: float(v) for k, v in c.get_run(run_id).data.metrics.items()},
            gate=gate,
        )
    if not gate.passed:
        raise LostGate(result)
    return result
