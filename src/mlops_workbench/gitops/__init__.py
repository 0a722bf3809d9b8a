"""GitOps for the local runtime: a deployment repository (git) is the one source of what serves.

The learner's repository under the state folder (``wb.layout.deployments``) holds ``desired.yaml``
(model, stable version, optional canary and weight) and ``app.yaml`` (``autoSync``). The reconciler applies HEAD
to the local runtime (model servers and router, through the local rollout backend) the way Argo CD applies git to
a cluster on the kind path (``deploy/k8s/argocd``), with the same two traps: a manual rollback is refused while
auto-sync is on, and a rollback with auto-sync off leaves the app OutOfSync until git is reverted.

``spec`` reads the two files, ``plan`` is the pure diff, ``repo`` the git side, ``runtime`` the live side and
``reconciler`` the sync, rollback, status and watcher.
"""

from mlops_workbench.gitops.plan import Action, LiveState, Served, plan
from mlops_workbench.gitops.reconciler import AppStatus, SyncResult, Watcher, reconcile, rollback, status
from mlops_workbench.gitops.repo import DeploymentRepo, init_repo
from mlops_workbench.gitops.runtime import LocalRuntime, Runtime
from mlops_workbench.gitops.spec import AppConfig, Canary, DesiredState, DesiredStateError, SyncRefused

__all__ = [
    "Action",
    "AppConfig",
    "AppStatus",
    "Canary",
    "DeploymentRepo",
    "DesiredState",
    "DesiredStateError",
    "LiveState",
    "LocalRuntime",
    "Runtime",
    "Served",
    "SyncRefused",
    "SyncResult",
    "Watcher",
    "init_repo",
    "plan",
    "reconcile",
    "rollback",
    "status",
]
