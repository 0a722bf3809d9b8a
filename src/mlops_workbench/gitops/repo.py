"""The learner's deployment repository: a git repository of its own under the state folder.

Git runs through :class:`~mlops_workbench.versioning.workspace.Workspace` (never in a repository above it, with a
default identity). The reconciler reads files *at a commit* (``git show REV:desired.yaml``), never the work tree,
so an uncommitted edit changes nothing live, as with Argo CD.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_workbench.errors import InputError, NotFoundError
from mlops_workbench.gitops.spec import APP, DESIRED, AppConfig, DesiredState, app_text, desired_text, parse, validated
from mlops_workbench.versioning.workspace import Workspace, WorkspaceError
from mlops_workbench.workbench import Workbench

README = """# Deployment repository

The desired state of the local runtime, applied by `workbench gitops sync` (or on every commit by
`workbench gitops watch` when app.yaml says `autoSync: true`). Change it with a commit; undo a change
with `git revert <commit>` and a sync. `workbench gitops status` says whether the runtime matches HEAD.
"""


@dataclass(frozen=True)
class DeploymentRepo:
    """The git repository at ``path`` holding ``desired.yaml`` and ``app.yaml``."""

    path: Path

    @classmethod
    def of(cls, wb: Workbench) -> DeploymentRepo:
        """The state folder's deployment repository; :class:`NotFoundError` with the fix when there is none."""
        repo = cls(wb.layout.deployments)
        if not (repo.path / ".git").is_dir():
            raise NotFoundError(
                f"There is no deployment repository at {repo.path}: create it with "
                "`workbench gitops init --stable VERSION` (or gitops.init_repo in a notebook)."
            )
        return repo

    @property
    def ws(self) -> Workspace:
        return Workspace(self.path)

    def git(self, *args: str) -> str:
        return self.ws.git(*args)

    def head(self) -> str:
        return self.resolve("HEAD")

    def resolve(self, revision: str) -> str:
        """The full sha of ``revision`` (a sha, branch, tag or ``HEAD~1``); InputError listing recent commits."""
        if not revision.strip() or revision.startswith("-"):
            raise InputError(f"{revision!r} is not a git revision: pass a commit sha such as one of {self.recent()}.")
        try:
            return self.git("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}").strip()
        except WorkspaceError:
            raise InputError(
                f"{revision!r} is not a commit of {self.path}: pick one of {self.recent()} (`git log --oneline`)."
            ) from None

    def recent(self, n: int = 5) -> str:
        return ", ".join(self.git("log", f"-{n}", "--format=%h %s").splitlines()) or "none"

    def subject(self, revision: str) -> str:
        return self.git("log", "-1", "--format=%s", revision).strip()

    def read(self, revision: str, name: str) -> str:
        """The committed text of ``name`` at ``revision``; NotFoundError with the fix when that commit lacks it."""
        if name not in self.git("ls-tree", "--name-only", revision, "--").splitlines():
            raise NotFoundError(
                f"Commit {revision[:12]} of {self.path} has no {name}: restore it (`git checkout <commit> -- {name}`) "
                "and commit."
            )
        return self.git("show", f"{revision}:{name}") + "\n"

    def desired(self, revision: str) -> DesiredState:
        return parse(self.read(revision, DESIRED), DesiredState, f"{DESIRED} at {revision[:12]}")

    def app(self, revision: str) -> AppConfig:
        return parse(self.read(revision, APP), AppConfig, f"{APP} at {revision[:12]}")

    def commit(self, message: str, files: dict[str, str]) -> str:
        """Write ``files`` (name -> text) and commit them; returns HEAD."""
        for name, text in files.items():
            (self.path / name).write_text(text)
        return self.ws.commit(message, *files)


def init_repo(
    wb: Workbench, stable: str | int, model: str, auto_sync: bool = False, canary: dict[str, object] | None = None
) -> DeploymentRepo:
    """Create the deployment repository with a first desired state (``stable``, optional ``canary``) and sync policy.

    An existing repository is left as it is and returned: its history is the learner's."""
    path = wb.layout.deployments
    if (path / ".git").is_dir():
        return DeploymentRepo(path)
    given = {"model": model, "stable": stable, **({"canary": canary} if canary else {})}
    state = validated(given, DesiredState, "the desired state given to init")
    config = validated({"autoSync": auto_sync}, AppConfig, "the sync policy given to init")
    path.mkdir(parents=True, exist_ok=True)
    repo = DeploymentRepo(path)
    repo.git("init", "--quiet", "-b", "main")
    repo.commit(
        f"Deploy {model} version {state.stable} as stable",
        {DESIRED: desired_text(state), APP: app_text(config), "README.md": README},
    )
    return repo
