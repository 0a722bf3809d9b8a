"""Apply the deployment repository to the local runtime, the way Argo CD applies git to a cluster.

* :func:`reconcile` (``workbench gitops sync``): the desired state at HEAD, checked against the registry, compared
  with what runs (:func:`~mlops_workbench.gitops.plan.plan`) and applied action by action.
* :func:`rollback` (``workbench gitops rollback REV``, Argo CD's ``argocd app rollback``): apply an older commit
  *without* changing git. Refused while ``app.yaml`` at HEAD says ``autoSync: true`` (the next sync would undo
  it); allowed otherwise, and the app then stays OutOfSync until git is reverted to match.
* :func:`status`: Synced or OutOfSync against HEAD, with the commit sha, the health and the differences.
* :class:`Watcher` (``workbench gitops watch``): on every new commit, sync it (auto-sync on) or report it.

Every sync, refusal and failure is one typed line of the audit log (:mod:`mlops_workbench.registry.audit`).
Bad input (a field, an unregistered version) is refused before anything live changes.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from filelock import Timeout
from pydantic import BaseModel, ConfigDict

from mlops_workbench.errors import InputError, NotFoundError, RegistryError, WorkbenchError
from mlops_workbench.gitops.plan import Health, SyncStatus, WatchStep, health, plan, watch_step
from mlops_workbench.gitops.repo import DeploymentRepo
from mlops_workbench.gitops.runtime import LocalRuntime, Runtime
from mlops_workbench.gitops.spec import DESIRED, DesiredState, DesiredStateError, SyncRefused
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.workbench import Workbench

Say = Callable[[str], None]
REFUSALS = (DesiredStateError, RegistryError, NotFoundError, SyncRefused, InputError)
"""What refuses a sync before anything changes (audited as ``refused``)."""
LOCK_TIMEOUT = 300.0
"""How long a sync waits for another one to finish (starting model servers can take minutes on a busy machine)."""


class SyncResult(BaseModel):
    """What one sync or rollback did, and where the app stands against HEAD afterwards."""

    model_config = ConfigDict(extra="forbid")

    operation: Literal["sync", "rollback"]
    revision: str
    changes: list[str]
    status: SyncStatus


class AppStatus(BaseModel):
    """Argo CD's ``argocd app get`` for the local runtime."""

    model_config = ConfigDict(extra="forbid")

    sync: SyncStatus
    health: Health
    revision: str
    """HEAD of the deployment repository: what git says."""
    synced_revision: str | None
    """The commit the last successful sync or rollback applied."""
    auto_sync: bool | None
    differences: list[str]
    error: str | None = None

    def line(self) -> str:
        policy = {True: "auto-sync on", False: "auto-sync off", None: "sync policy unreadable"}[self.auto_sync]
        last = self.synced_revision[:7] if self.synced_revision else "never"
        text = f"{self.sync} at {self.revision[:7]} (last synced {last}, {policy}), {self.health}"
        if self.error:
            return f"{text}: {self.error}"
        return f"{text}: {'; '.join(self.differences)}" if self.differences else text


def _record(wb: Workbench, action: AuditAction, outcome: AuditOutcome, revision: str, **fields: object) -> None:
    fields.setdefault("model", "-")
    audit.append(wb, AuditEntry.model_validate({"action": action, "outcome": outcome, "revision": revision, **fields}))


def _check_registered(desired: DesiredState, revision: str, runtime: Runtime) -> None:
    """Every version ``desired`` names is registered; else DesiredStateError listing the registered ones."""
    known = runtime.registered(desired.model)
    unknown = [v for v in desired.versions() if v not in known]
    if unknown:
        listed = ", ".join(sorted(known, key=int)) or "none"
        raise DesiredStateError(
            f"{DESIRED} at {revision[:12]} names version {', '.join(unknown)} of '{desired.model}', which is not "
            f"registered (versions: {listed}). Nothing was changed live: name a registered version and commit, "
            "or `git revert` the commit."
        )


@contextmanager
def _one_at_a_time(wb: Workbench) -> Iterator[None]:
    try:
        with audit.lock(wb, "gitops", timeout=LOCK_TIMEOUT):
            yield
    except Timeout:
        raise SyncRefused(
            f"Another sync or rollback of {wb.home} has run for over {LOCK_TIMEOUT:.0f}s: let it finish (or stop the "
            "`workbench gitops watch` that runs it) and retry."
        ) from None


def _apply(
    wb: Workbench, repo: DeploymentRepo, revision: str, runtime: Runtime, action: AuditAction
) -> tuple[DesiredState, list[str]]:
    with _one_at_a_time(wb):
        model = "-"
        try:  # every check before anything live changes
            if (why := runtime.busy()) is not None:
                raise SyncRefused(f"Not synced: {why}.")
            desired = repo.desired(revision)
            model = desired.model
            _check_registered(desired, revision, runtime)
        except REFUSALS as exc:
            _record(wb, action, AuditOutcome.REFUSED, revision, model=model, error=str(exc))
            raise
        before = runtime.live()
        done: list[str] = []
        entry = {"model": desired.model, "version": desired.stable, "reason": repo.subject(revision)}
        serving = before.stable.version if before.stable else None
        try:
            for step in plan(desired, before):
                runtime.apply(step, desired.model)
                done.append(str(step))
        except WorkbenchError as exc:
            _record(wb, action, AuditOutcome.FAILED, revision, changes=done, error=str(exc), serving=serving, **entry)
            raise
        _record(wb, action, AuditOutcome.SYNCED, revision, changes=done, serving=serving, **entry)
    return desired, done


def _home_repo(wb: Workbench, repo: DeploymentRepo | None) -> tuple[DeploymentRepo, Path]:
    return repo or DeploymentRepo.of(wb), wb.home


def reconcile(wb: Workbench, repo: DeploymentRepo | None = None, runtime: Runtime | None = None) -> SyncResult:
    """Sync: make the local runtime serve the desired state at HEAD of the deployment repository."""
    repo, home = _home_repo(wb, repo)
    runtime = runtime or LocalRuntime(wb)
    head = repo.head()
    _, done = _apply(wb, repo, head, runtime, AuditAction.GITOPS_SYNC)
    return SyncResult(operation="sync", revision=head, changes=done, status=status(wb, repo, runtime).sync)


def rollback(
    wb: Workbench, revision: str, repo: DeploymentRepo | None = None, runtime: Runtime | None = None
) -> SyncResult:
    """Apply the desired state of an older commit without changing git; refused while auto-sync is on."""
    repo, home = _home_repo(wb, repo)
    runtime = runtime or LocalRuntime(wb)
    head = repo.head()
    try:
        target = repo.resolve(revision)
        auto = repo.app(head).auto_sync
    except REFUSALS as exc:
        _record(wb, AuditAction.GITOPS_ROLLBACK, AuditOutcome.REFUSED, revision, error=str(exc))
        raise
    if auto:
        why = (
            f"rollback cannot be initiated when auto-sync is enabled (app.yaml at HEAD {head[:7]} says autoSync: "
            "true, so the next sync would undo it). Roll back the GitOps way: `git revert <bad commit>` in "
            f"{repo.path}, then `workbench gitops sync`; or commit autoSync: false first."
        )
        _record(wb, AuditAction.GITOPS_ROLLBACK, AuditOutcome.REFUSED, target, error=why)
        raise SyncRefused(why)
    _, done = _apply(wb, repo, target, runtime, AuditAction.GITOPS_ROLLBACK)
    return SyncResult(operation="rollback", revision=target, changes=done, status=status(wb, repo, runtime).sync)


def last_synced(wb: Workbench) -> str | None:
    """The commit the last successful sync or rollback applied (from the audit log)."""
    gitops = (AuditAction.GITOPS_SYNC, AuditAction.GITOPS_ROLLBACK)
    done = [e for e in audit.read(wb) if e.action in gitops and e.outcome is AuditOutcome.SYNCED]
    return done[-1].revision if done else None


def status(wb: Workbench, repo: DeploymentRepo | None = None, runtime: Runtime | None = None) -> AppStatus:
    """Synced or OutOfSync: does what runs match the desired state at HEAD? (Never raises for bad content.)"""
    repo, home = _home_repo(wb, repo)
    runtime = runtime or LocalRuntime(wb)
    head, live = repo.head(), runtime.live()
    found = AppStatus(
        sync="Unknown",
        health=health(live),
        revision=head,
        synced_revision=last_synced(wb),
        auto_sync=None,
        differences=[],
    )
    try:
        desired, auto = repo.desired(head), repo.app(head).auto_sync
    except (DesiredStateError, NotFoundError) as exc:
        return found.model_copy(update={"error": str(exc)})
    differences = [str(a) for a in plan(desired, live)]
    sync: SyncStatus = "OutOfSync" if differences else "Synced"
    return found.model_copy(update={"sync": sync, "auto_sync": auto, "differences": differences})


class Watcher:
    """Polls HEAD; a new commit is synced when ``app.yaml`` at that commit says ``autoSync: true``, else reported."""

    def __init__(self, wb: Workbench, runtime: Runtime | None = None, say: Say = print) -> None:
        self.wb = wb
        self.runtime = runtime or LocalRuntime(self.wb)
        self.say = say
        self.last_seen: str | None = None

    def poll(self) -> WatchStep:
        repo = DeploymentRepo.of(self.wb)
        head = repo.head()
        try:
            auto = repo.app(head).auto_sync
        except REFUSALS as exc:
            auto = False
            if head != self.last_seen:
                self.say(f"{head[:7]}: sync policy unreadable, not syncing: {exc}")
        step = watch_step(head, self.last_seen, auto)
        self.last_seen = head
        if step == "sync":
            try:
                result = reconcile(self.wb, repo, self.runtime)
                self.say(f"{head[:7]} synced: {'; '.join(result.changes) or 'nothing to change'}")
            except WorkbenchError as exc:  # audited already; keep watching for the commit that fixes it
                self.say(f"{head[:7]} not synced: {exc}")
        elif step == "out_of_sync":
            self.say(f"new commit, auto-sync off: {status(self.wb, repo, self.runtime).line()}")
        return step

    def run(self, interval: float = 2.0, stop: threading.Event | None = None) -> None:
        """Poll every ``interval`` seconds until ``stop`` is set (Ctrl-C ends ``workbench gitops watch``)."""
        stop = stop or threading.Event()
        while True:
            self.poll()
            if stop.wait(interval):
                return
