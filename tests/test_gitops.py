"""The GitOps reconciler with a fake runtime (real git, real audit log): the pure plan, the desired state's errors,
sync, the two Argo CD traps (rollback refused under auto-sync; a rollback without it stays OutOfSync until git is
reverted), the watcher, and bad input that changes nothing live."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from mlops_workbench.cli.main import app
from mlops_workbench.errors import InputError, NotFoundError, RegistryError
from mlops_workbench.gitops import (
    Action,
    DeploymentRepo,
    DesiredState,
    DesiredStateError,
    LiveState,
    Served,
    SyncRefused,
    Watcher,
    init_repo,
    plan,
    reconcile,
    rollback,
    status,
)
from mlops_workbench.gitops import reconciler as rec
from mlops_workbench.gitops.plan import health, watch_step
from mlops_workbench.gitops.spec import APP, DESIRED, AppConfig, desired_text, parse
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditOutcome
from mlops_workbench.workbench import Workbench


def desired(stable="1", canary=None):
    return DesiredState.model_validate({"model": "iris", "stable": stable, "canary": canary})


def served(version):
    return Served(version=str(version), uri=f"models:/iris/{version}")


def kinds(actions):
    return [(a.kind, a.version, a.weight) for a in actions]


# --- the pure plan --------------------------------------------------------------------------------------------


def test_plan_from_nothing_starts_stable_then_router_then_canary():
    assert kinds(plan(desired("1"), LiveState())) == [("serve_stable", "1", None), ("start_router", None, None)]
    assert kinds(plan(desired("1", {"version": 2, "weight": 10}), LiveState())) == [
        ("serve_stable", "1", None),
        ("start_router", None, None),
        ("deploy_canary", "2", None),
        ("set_weight", None, 10.0),
    ]


@pytest.mark.parametrize(
    "live, want, expected",
    [
        (LiveState(router=True, stable=served(1), weight=0), desired("1"), []),
        (LiveState(router=True, stable=served(2), weight=0), desired("1"), [("serve_stable", "1", None)]),
        (  # same version, but through the alias: git pins versions, so the server is replaced
            LiveState(router=True, stable=Served(version="1", uri="models:/iris@production"), weight=0),
            desired("1"),
            [("serve_stable", "1", None)],
        ),
        (
            LiveState(router=True, stable=served(1), canary=served(2), weight=5),
            desired("1"),
            [("stop_canary", None, None)],
        ),
        (LiveState(router=True, stable=served(1), weight=5), desired("1"), [("set_weight", None, 0.0)]),
        (
            LiveState(router=True, stable=served(1), canary=served(2), weight=5),
            desired("1", {"version": 2, "weight": 50}),
            [("set_weight", None, 50.0)],
        ),
        (
            LiveState(router=True, stable=served(1), canary=served(2), weight=5),
            desired("1", {"version": 3, "weight": 5}),
            [("deploy_canary", "3", None), ("set_weight", None, 5.0)],
        ),
        (
            LiveState(router=False, stable=served(1), canary=served(2)),
            desired("1", {"version": 2, "weight": 20}),
            [("start_router", None, None), ("set_weight", None, 20.0)],
        ),
        (  # promotion by git: the new stable is served before the old canary leaves
            LiveState(router=True, stable=served(1), canary=served(2), weight=100),
            desired("2"),
            [("serve_stable", "2", None), ("stop_canary", None, None)],
        ),
    ],
)
def test_plan_changes_only_what_differs(live, want, expected):
    assert kinds(plan(want, live)) == expected


def test_actions_health_and_watch_steps_in_words():
    assert (
        str(Action(kind="serve_stable", version="2", uri="models:/iris/2"))
        == "serve version 2 as stable (models:/iris/2)"
    )
    assert str(Action(kind="set_weight", weight=12.5)) == "send 12.5% of traffic to the canary"
    assert str(Action(kind="stop_canary")) == "stop the canary"
    assert health(LiveState()) == "Missing"
    assert health(LiveState(router=True, stable=served(1))) == "Healthy"
    assert health(LiveState(router=True)) == "Degraded"
    assert watch_step("a", "a", True) == "idle"
    assert watch_step("b", "a", True) == "sync"
    assert watch_step("b", None, False) == "out_of_sync"


# --- what the files may say ------------------------------------------------------------------------------------


def test_every_bad_field_is_listed_with_its_fix():
    text = "model: iris\nstabel: 1\ncanary:\n  version: v2\n  weight: 150\n"
    with pytest.raises(DesiredStateError) as err:
        parse(text, DesiredState, "desired.yaml at abc")
    message = str(err.value)
    assert message.startswith("desired.yaml at abc cannot be applied")
    assert "stabel: no such field" in message and "Did you mean 'stable'" in message
    assert "stable: missing; add it" in message
    assert "canary.version" in message and "a registered version number" in message
    assert "canary.weight: 150 is not a number at most 100" in message
    with pytest.raises(DesiredStateError, match="autosync: no such field.*Did you mean 'autoSync'"):
        parse("autosync: true\n", AppConfig, "app.yaml")
    with pytest.raises(DesiredStateError, match="is the stable version"):
        parse("model: iris\nstable: 2\ncanary: {version: 2, weight: 5}\n", DesiredState, "desired.yaml")
    with pytest.raises(DesiredStateError, match="not a mapping"):
        parse("- 1\n", DesiredState, "desired.yaml")
    assert parse(desired_text(desired(3)), DesiredState, "x") == desired("3")


# --- sync, traps and bad input against a fake runtime ------------------------------------------------------------


class FakeRuntime:
    """The local runtime as plain state: applying an action changes what live() answers."""

    def __init__(self, versions=("1", "2", "3")):
        self.state = LiveState()
        self.applied: list[Action] = []
        self.versions = set(versions)
        self.busy_reason: str | None = None

    def live(self):
        return self.state

    def apply(self, action, model):
        self.applied.append(action)
        s = self.state
        update = {
            "serve_stable": lambda: {"stable": Served(version=action.version, uri=action.uri)},
            "start_router": lambda: {"router": True, "weight": 0.0},
            "deploy_canary": lambda: {"canary": Served(version=action.version, uri=action.uri), "weight": 0.0},
            "set_weight": lambda: {"weight": action.weight},
            "stop_canary": lambda: {"canary": None, "weight": 0.0},
        }[action.kind]()
        self.state = s.model_copy(update=update)

    def registered(self, model):
        if model != "iris":
            raise RegistryError(f"There is no registered model '{model}'.")
        return self.versions

    def busy(self):
        return self.busy_reason


@pytest.fixture
def fake():
    return FakeRuntime()


def commit(repo, message, stable=None, canary=None, auto=None, raw=None):
    files = {}
    if stable is not None or raw is not None:
        files[DESIRED] = raw if raw is not None else desired_text(desired(stable, canary))
    if auto is not None:
        files[APP] = f"autoSync: {'true' if auto else 'false'}\n"
    return repo.commit(message, files)


def gitops_lines(home):
    return [
        e
        for e in audit.read(Workbench.from_env(home))
        if e.action in (AuditAction.GITOPS_SYNC, AuditAction.GITOPS_ROLLBACK)
    ]


def test_sync_applies_head_audits_it_and_a_second_sync_changes_nothing(home, fake, wb):
    repo = init_repo(wb, 1, "iris")
    result = reconcile(wb, repo, fake)
    assert result.status == "Synced" and result.revision == repo.head()
    assert result.changes == ["serve version 1 as stable (models:/iris/1)", "start the router"]
    assert fake.state.stable == served(1) and fake.state.router
    again = reconcile(wb, repo, fake)
    assert again.changes == [] and len(fake.applied) == 2
    [first, second] = gitops_lines(home)
    assert (first.action, first.outcome, first.revision, first.version) == (
        AuditAction.GITOPS_SYNC,
        AuditOutcome.SYNCED,
        repo.head(),
        "1",
    )
    assert first.changes == result.changes and first.reason == "Deploy iris version 1 as stable"
    assert second.changes == [] and second.serving == "1"
    found = status(wb, repo, fake)
    assert (found.sync, found.health, found.revision, found.synced_revision, found.auto_sync) == (
        "Synced",
        "Healthy",
        repo.head(),
        repo.head(),
        False,
    )


def test_uncommitted_edits_change_nothing(home, fake, wb):
    repo = init_repo(wb, 1, "iris")
    reconcile(wb, repo, fake)
    (repo.path / DESIRED).write_text(desired_text(desired(2)))
    assert reconcile(wb, repo, fake).changes == [] and fake.state.stable == served(1)
    assert status(wb, repo, fake).sync == "Synced"


def test_an_unregistered_version_is_refused_and_nothing_changes_live(home, fake, wb):
    repo = init_repo(wb, 1, "iris")
    reconcile(wb, repo, fake)
    before, applied = fake.state, len(fake.applied)
    bad = commit(repo, "deploy version 9", stable=9, canary={"version": 2, "weight": 10})
    with pytest.raises(
        DesiredStateError, match=r"names version 9 of 'iris', which is not registered \(versions: 1, 2, 3\)"
    ):
        reconcile(wb, repo, fake)
    assert fake.state == before and len(fake.applied) == applied
    refused = gitops_lines(home)[-1]
    assert (refused.outcome, refused.revision, refused.model) == (AuditOutcome.REFUSED, bad, "iris")
    assert "not registered" in refused.error
    assert status(wb, repo, fake).sync == "OutOfSync"
    repo.git("revert", "--no-edit", "HEAD")
    assert status(wb, repo, fake).sync == "Synced"
    with pytest.raises(DesiredStateError, match="stable: missing"):
        commit(repo, "broken", raw="model: iris\n")
        reconcile(wb, repo, fake)
    assert status(wb, repo, fake).sync == "Unknown" and "stable: missing" in status(wb, repo, fake).error
    commit(repo, "other model", raw="model: roses\nstable: 1\n")
    with pytest.raises(RegistryError, match="roses"):
        reconcile(wb, repo, fake)
    assert fake.state == before


def test_trap_one_rollback_is_refused_while_auto_sync_is_on(home, fake, wb):
    repo = init_repo(wb, 1, "iris", auto_sync=True)
    good = reconcile(wb, repo, fake).revision
    commit(repo, "deploy version 2", stable=2)
    reconcile(wb, repo, fake)
    with pytest.raises(SyncRefused, match="rollback cannot be initiated when auto-sync is enabled") as err:
        rollback(wb, good[:7], repo, fake)
    assert "git revert" in str(err.value)
    assert fake.state.stable == served(2), "a refused rollback changes nothing live"
    refused = gitops_lines(home)[-1]
    assert (refused.action, refused.outcome, refused.revision) == (
        AuditAction.GITOPS_ROLLBACK,
        AuditOutcome.REFUSED,
        good,
    )
    # the GitOps way: revert the bad commit and sync
    repo.git("revert", "--no-edit", "HEAD")
    assert status(wb, repo, fake).sync == "OutOfSync"
    result = reconcile(wb, repo, fake)
    assert result.changes == ["serve version 1 as stable (models:/iris/1)"] and result.status == "Synced"


def test_trap_two_rollback_without_auto_sync_stays_out_of_sync_until_git_is_reverted(home, fake, wb):
    repo = init_repo(wb, 1, "iris", auto_sync=False)
    good = reconcile(wb, repo, fake).revision
    bad = commit(repo, "deploy version 2 as canary", stable=1, canary={"version": 2, "weight": 50})
    reconcile(wb, repo, fake)
    assert fake.state.canary == served(2) and fake.state.weight == 50
    result = rollback(wb, "HEAD~1", repo, fake)
    assert result.revision == good and result.changes == ["stop the canary"]
    assert result.status == "OutOfSync" and fake.state.canary is None
    found = status(wb, repo, fake)
    assert (found.sync, found.revision, found.synced_revision) == ("OutOfSync", bad, good)
    assert found.differences == ["deploy version 2 as canary (models:/iris/2)", "send 50% of traffic to the canary"]
    assert "OutOfSync at " + bad[:7] in found.line() and "last synced " + good[:7] in found.line()
    repo.git("revert", "--no-edit", "HEAD")  # git catches up with the cluster: Synced without a sync
    assert status(wb, repo, fake).sync == "Synced"
    assert reconcile(wb, repo, fake).changes == []


def test_a_sync_during_a_canary_rollout_is_refused(home, fake, wb):
    repo = init_repo(wb, 1, "iris")
    fake.busy_reason = "canary rollout r1 is under way"
    with pytest.raises(SyncRefused, match="under way"):
        reconcile(wb, repo, fake)
    assert fake.applied == [] and gitops_lines(home)[-1].outcome is AuditOutcome.REFUSED


def test_the_watcher_syncs_new_commits_only_under_auto_sync(home, fake, wb):
    said: list[str] = []
    repo = init_repo(wb, 1, "iris", auto_sync=True)
    watcher = Watcher(wb, fake, said.append)
    assert watcher.poll() == "sync" and fake.state.stable == served(1)
    assert watcher.poll() == "idle"
    commit(repo, "deploy version 2", stable=2)
    assert watcher.poll() == "sync" and fake.state.stable == served(2)
    commit(repo, "deploy version 9", stable=9)
    assert watcher.poll() == "sync" and fake.state.stable == served(2)  # refused: nothing changed live
    assert "not synced" in said[-1] and "not registered" in said[-1]
    assert watcher.poll() == "idle"  # the refused commit is not retried at every poll
    repo.git("revert", "--no-edit", "HEAD")
    commit(repo, "manual sync from now on", auto=False)
    assert watcher.poll() == "out_of_sync" and "auto-sync off" in said[-1] and "Synced" in said[-1]
    commit(repo, "deploy version 3", stable=3)
    assert watcher.poll() == "out_of_sync" and fake.state.stable == served(2)
    assert "OutOfSync" in said[-1] and "serve version 3" in said[-1]


def test_missing_repository_and_unknown_revision_name_the_fix(home, fake, wb):
    with pytest.raises(NotFoundError, match="workbench gitops init"):
        reconcile(wb, None, fake)
    repo = init_repo(wb, 1, "iris")
    with pytest.raises(InputError, match="not a commit of .*Deploy iris version 1"):
        rollback(wb, "no-such-commit", repo, fake)
    refused = gitops_lines(home)[-1]
    assert (refused.outcome, refused.revision) == (AuditOutcome.REFUSED, "no-such-commit")
    with pytest.raises(InputError, match="not a git revision"):
        repo.resolve("--all")
    (repo.path / APP).unlink()
    repo.ws.commit("drop the sync policy")
    with pytest.raises(NotFoundError, match="has no app.yaml"):
        rollback(wb, "HEAD~1", repo, fake)
    assert DeploymentRepo.of(wb) == repo and init_repo(wb, 2, "iris") == repo  # an existing repo is kept


def test_cli_sync_rollback_status_exit_codes(home, fake, monkeypatch):
    monkeypatch.setattr(rec, "LocalRuntime", lambda wb: fake)
    runner = CliRunner()
    result = runner.invoke(app, ["gitops", "init", "--stable", "1", "--model", "iris", "--auto-sync"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["gitops", "status"]).exit_code == 1  # nothing runs yet: OutOfSync
    result = runner.invoke(app, ["gitops", "sync"])
    assert result.exit_code == 0 and "Synced" in result.output, result.output
    result = runner.invoke(app, ["gitops", "status", "--json"])
    assert result.exit_code == 0 and '"sync": "Synced"' in result.output
    result = runner.invoke(app, ["gitops", "rollback", "HEAD"])
    assert result.exit_code == 2 and "auto-sync is enabled" in result.output
    result = runner.invoke(app, ["gitops", "init", "--stable", "v1"])
    assert result.exit_code == 0 and "kept the existing" in result.output  # whatever was asked


def test_a_sync_waits_for_another_and_gives_up_with_the_fix(home, fake, monkeypatch, wb):
    repo = init_repo(wb, 1, "iris")
    monkeypatch.setattr(rec, "LOCK_TIMEOUT", 0.2)
    with audit.lock(wb, "gitops"):  # another sync holds it
        with pytest.raises(SyncRefused, match="Another sync or rollback"):
            reconcile(wb, repo, fake)
    assert fake.applied == []
    assert reconcile(wb, repo, fake).status == "Synced"
