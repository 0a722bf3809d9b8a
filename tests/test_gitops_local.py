"""GitOps revert-and-sync on the real local runtime: a real MLflow tracking server with two registered versions,
real `workbench serve` processes and router. A commit deploys v2, `git revert` + sync brings v1 back, and git, the
router and auto-sync agree at the end; a commit naming an unregistered version changes nothing live."""

from __future__ import annotations

import pytest

from mlops_workbench import procs, tracking
from mlops_workbench.alias import Alias
from mlops_workbench.gitops import DesiredState, DesiredStateError, Watcher, init_repo, reconcile, status
from mlops_workbench.gitops.spec import DESIRED, desired_text
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditOutcome
from mlops_workbench.rollout import prepare
from mlops_workbench.rollout.backends.local import STABLE, LocalBackend
from mlops_workbench.serving.client import RouterClient
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("gitops-home")
    try:
        yield home, prepare.ensure_versions(Workbench.from_env(home), roles=("stable", "candidate"))
    finally:
        for cleanup in (procs.stop_all, tracking.down):
            try:
                cleanup(Workbench.from_env(home))
            except Exception:  # noqa: BLE001 - the next step still has to run
                pass
    assert not procs.running(Workbench.from_env(home))


def versions_answering(home) -> set[str]:
    """The model versions that answer 20 predictions sent through the router (every one must succeed)."""
    router = RouterClient.of(
        Workbench.from_env(home), LocalBackend(Workbench.from_env(home), metrics="direct").router_url
    )
    replies = [router.send(ROWS) for _ in range(20)]
    assert all(r.status == 200 for r in replies), [(r.status, r.text[:200]) for r in replies if r.status != 200]
    return {str(r.json()["version"]) for r in replies}


def production(home) -> str:
    return str(tracking.client(Workbench.from_env(home)).get_model_version_by_alias("iris", Alias.PRODUCTION).version)


def test_revert_and_sync_brings_v1_back_and_everything_agrees(env):
    home, v = env
    wb = Workbench.from_env(home)
    said: list[str] = []
    repo = init_repo(wb, v.stable, "iris", auto_sync=True)
    watcher = Watcher(wb, say=said.append)

    assert watcher.poll() == "sync", said
    assert versions_answering(home) == {v.stable}

    v2 = repo.commit("Deploy version 2", {DESIRED: desired_text(DesiredState(model="iris", stable=v.candidate))})
    assert watcher.poll() == "sync", said
    assert versions_answering(home) == {v.candidate}
    assert status(Workbench.from_env(home), repo).sync == "Synced"

    repo.git("revert", "--no-edit", "HEAD")
    assert watcher.poll() == "sync", said
    assert versions_answering(home) == {v.stable}
    end = status(Workbench.from_env(home), repo)
    assert (end.sync, end.health, end.auto_sync, end.differences) == ("Synced", "Healthy", True, [])
    assert end.revision == repo.head() == end.synced_revision != v2
    assert LocalBackend(Workbench.from_env(home), metrics="direct").weight() == 0

    # bad input: an unregistered version is refused before anything live changes
    stable_pid = procs.get(Workbench.from_env(home), STABLE).pid
    repo.commit("Deploy version 99", {DESIRED: desired_text(DesiredState(model="iris", stable="99"))})
    with pytest.raises(
        DesiredStateError, match=rf"version 99 of 'iris', which is not registered \(versions: .*{v.candidate}"
    ):
        reconcile(Workbench.from_env(home), repo)
    assert procs.get(Workbench.from_env(home), STABLE).pid == stable_pid and versions_answering(home) == {v.stable}
    assert production(home) == v.stable, "the reconciler never moves registry aliases"

    lines = [e for e in audit.read(Workbench.from_env(home)) if e.action is AuditAction.GITOPS_SYNC]
    assert [(e.outcome, e.version) for e in lines] == [
        (AuditOutcome.SYNCED, v.stable),
        (AuditOutcome.SYNCED, v.candidate),
        (AuditOutcome.SYNCED, v.stable),
        (AuditOutcome.REFUSED, None),
    ]
    assert lines[1].revision == v2 and lines[2].serving == v.candidate
