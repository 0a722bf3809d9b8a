"""Lab workspaces: a folder that is its own git + DVC repository, never the project checkout.

A workspace keeps code and ``params.yaml`` in git, data in DVC (pushed to a
local-folder remote, by default the shared ``<home>/dvc-remote``) and its pipeline in
``dvc.yaml``. Every git and DVC command runs through :class:`Workspace`, which
refuses to act unless the folder is its own repository, so a half-initialised
workspace can never fall through to the project repo above it. Git identity
comes from environment variables, so no global git configuration is needed.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench import paramspec, safeyaml, settings, tools
from mlops_workbench.errors import InputError, WorkbenchError
from mlops_workbench.workbench import Workbench

GIT_IDENTITY = {
    "GIT_AUTHOR_NAME": "Workbench Learner",
    "GIT_AUTHOR_EMAIL": "learner@workbench.invalid",
    "GIT_COMMITTER_NAME": "Workbench Learner",
    "GIT_COMMITTER_EMAIL": "learner@workbench.invalid",
}
REMOTE_NAME = "local"
DATA = "data/iris.csv"
MODEL_DIR = "model"
MODEL_FILE = "model/model.pkl"
METRICS = "metrics.json"
RESULT_FILES = ("dvc.lock",)
"""Files that record results, not inputs: changing them does not make a run's inputs dirty."""
GITIGNORE = "__pycache__/\n.ipynb_checkpoints/\n"


class WorkspaceError(WorkbenchError, RuntimeError):
    """A git or DVC command failed in a workspace, or the folder is not a workspace."""


def _env() -> dict[str, str]:
    env = {**os.environ}
    for key, value in GIT_IDENTITY.items():
        env.setdefault(key, value)
    env["DVC_NO_ANALYTICS"] = "1"
    env["GIT_TERMINAL_PROMPT"] = "0"
    # stage commands say `python ...`: make that this interpreter
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def run(cmd: list[str], cwd: Path, *, check: bool = True, ceiling: Path | None = None) -> str:
    """Run ``cmd`` in ``cwd`` and return its output; raises :class:`WorkspaceError` with the output on failure.

    ``ceiling`` stops git from discovering a repository above that folder.
    """
    env = _env()
    if ceiling is not None:
        env["GIT_CEILING_DIRECTORIES"] = str(ceiling)
    proc = tools.call(cmd, cwd=cwd, env=env, timeout=None)
    if check and proc.returncode != 0:
        shown = " ".join(["dvc", *cmd[3:]] if cmd[:3] == [sys.executable, "-m", "dvc"] else cmd)
        raise WorkspaceError(
            f"`{shown}` failed in {cwd} (exit {proc.returncode}):\n{(proc.stderr or proc.stdout).strip()}\n"
            "Read the message above, fix the cause (missing file, typo in the command, uncommitted state) and rerun the cell."
        )
    return (proc.stdout + proc.stderr).rstrip()


@dataclass(frozen=True)
class Workspace:
    """A git + DVC repository of its own (a lab workspace)."""

    path: Path

    def _require(self, marker: str, tool: str) -> None:
        if not (self.path / marker).is_dir():
            first = "ws.git('init', '-b', 'main')" if tool == "git" else "ws.dvc('init')"
            raise WorkspaceError(
                f"{self.path} is not a {tool} repository of its own (no {marker}/): make it one first with {first} "
                "(or mlops_workbench.versioning.init_workspace(path), which runs git init and dvc init)."
            )

    def git(self, *args: str, check: bool = True) -> str:
        """Run ``git ARGS`` in the workspace (never in a repository above it); ``ws.git("init")`` makes it one."""
        if args[:1] != ("init",):
            self._require(".git", "git")
        return run(["git", "-c", "commit.gpgsign=false", *args], self.path, check=check, ceiling=self.path.parent)

    def dvc(self, *args: str, check: bool = True) -> str:
        """Run ``dvc ARGS`` in the workspace with this Python's DVC, e.g. ``ws.dvc("add", "data/iris.csv")``.

        ``ws.dvc("init")`` needs the git repository first (``ws.git("init")``): DVC keeps its config in git.
        """
        if args[:1] != ("init",):
            self._require(".dvc", "DVC")
        self._require(".git", "git")
        return run([sys.executable, "-m", "dvc", *args], self.path, check=check, ceiling=self.path.parent)

    def head(self) -> str:
        """The full commit hash of HEAD."""
        return self.git("rev-parse", "HEAD")

    def commit(self, message: str, *paths: str) -> str:
        """Stage ``paths`` (everything when none) and commit; returns HEAD (unchanged when nothing changed)."""
        self.git("add", "--all", *(["--", *paths] if paths else []))
        if not self.git("diff", "--cached", "--name-only"):
            return self.head()
        self.git("commit", "--quiet", "-m", message)
        return self.head()

    def changed_files(self, include_results: bool = False) -> list[str]:
        """Files that differ from HEAD (modified, staged or untracked); results like dvc.lock only if asked."""
        out = self.git("status", "--porcelain=v1", "--untracked-files=all")
        files = [line[3:].split(" -> ")[-1].strip('"') for line in out.splitlines() if line.strip()]
        if include_results:
            return files
        results = set(RESULT_FILES) | set(self.stage_outputs())
        return [f for f in files if f not in results]

    def stage_outputs(self) -> list[str]:
        """Every ``outs`` and ``metrics`` path declared in ``dvc.yaml``."""
        spec = self.path / "dvc.yaml"
        if not spec.exists():
            return []
        stages = (yaml.safe_load(spec.read_text()) or {}).get("stages", {})
        paths: list[str] = []
        for stage in stages.values():
            for key in ("outs", "metrics", "plots"):
                for entry in stage.get(key, []) or []:
                    paths.append(next(iter(entry)) if isinstance(entry, dict) else str(entry))
        return paths

    def remote_url(self, rev: str | None = None) -> str:
        """The URL of the default DVC remote ("" when none); a relative folder is resolved as DVC does, from .dvc/.

        With ``rev`` (e.g. "HEAD"): the remote a clone of that commit sees (its committed ``.dvc/config`` only).
        """
        config = configparser.ConfigParser()
        if rev is None:
            config.read([self.path / ".dvc" / "config", self.path / ".dvc" / "config.local"])
        else:
            config.read_string(self.git("show", f"{rev}:.dvc/config") if self.has(".dvc/config", rev) else "")
        name = config.get("core", "remote", fallback="")
        url = config.get(f"'remote \"{name}\"'", "url", fallback="") if name else ""
        if url and "://" not in url and not Path(url).is_absolute():
            return str((self.path / ".dvc" / url).resolve())
        return url

    def has(self, path: str, rev: str = "HEAD") -> bool:
        """True when ``path`` is committed at ``rev``."""
        return self.git("cat-file", "-t", f"{rev}:{path}", check=False) in ("blob", "tree")

    def params(self) -> dict[str, Any]:
        """The workspace's ``params.yaml`` ({} when missing), every section the code uses type-checked."""
        data = self._read_params()
        paramspec.check(data, self.path / "params.yaml")
        return data

    def _read_params(self) -> dict[str, Any]:
        """The file as written, unchecked, so :meth:`set_params` can repair a bad value."""
        path = self.path / "params.yaml"
        if not path.exists():
            return {}
        data = safeyaml.load(path, what=f"params file {path}") or {}
        if not isinstance(data, dict):
            raise InputError(
                f"{path} must be a mapping of sections (prepare:, train:, ...), not "
                f"{type(data).__name__}: rewrite it with versioning.write_params(ws)."
            )
        return data

    def set_params(self, **sections: dict[str, Any]) -> dict[str, Any]:
        """Update sections of ``params.yaml`` key by key (not committed); returns the whole file's content.

        The result is checked before it is written: a bad value leaves the file as it was.
        """
        data = self._read_params()
        for name, values in sections.items():
            current = data.get(name)
            data[name] = {**(current if isinstance(current, dict) else {}), **values}
        paramspec.check(data, f"{self.path / 'params.yaml'} (after set_params)")
        (self.path / "params.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
        return data

    def dvc_md5(self, target: str, rev: str | None = None) -> str | None:
        """The md5 DVC recorded for ``target`` in ``target.dvc`` (None when not tracked); with ``rev`` (e.g.
        "HEAD"), as that commit records it rather than the working tree."""
        meta = self.path / f"{target}.dvc"
        if rev is not None:
            text = self.git("show", f"{rev}:{target}.dvc") if self.has(f"{target}.dvc", rev) else ""
        else:
            text = meta.read_text() if meta.exists() else ""
        outs = (yaml.safe_load(text) or {}).get("outs", []) if text else []
        return outs[0].get("md5") if outs else None


def stale_inputs(ws: Workspace) -> list[str]:
    """Inputs that changed since ``dvc repro`` last ran a stage (per ``dvc.lock``), without starting DVC.

    Non-empty means the outputs (model, metrics) were not produced from the current inputs.
    """
    lock = ws.path / "dvc.lock"
    if not lock.exists():
        return ["dvc.lock (never reproduced)"] if (ws.path / "dvc.yaml").exists() else []
    params, stale = ws.params(), []
    for stage in ((yaml.safe_load(lock.read_text()) or {}).get("stages") or {}).values():
        for dep in stage.get("deps", []):
            path = ws.path / dep["path"]
            if path.is_file() and dep.get("md5") and file_md5(path) != dep["md5"]:
                stale.append(dep["path"])
        for key, value in (stage.get("params") or {}).get("params.yaml", {}).items():
            if _param(params, key) != value:
                stale.append(f"params.yaml:{key}")
    return stale


def _param(params: dict[str, Any], key: str) -> Any:
    """The value of ``key`` in params, where ``train.seed`` names ``seed`` inside section ``train`` (as in ``-p``)."""
    if key in params:
        return params[key]
    section, _, rest = key.partition(".")
    return _param(params[section], rest) if rest and isinstance(params.get(section), dict) else None


def locked_md5(lock_text: str | None, path: str) -> str | None:
    """The md5 a ``dvc.lock`` (its text) records for ``path`` as a dependency of any stage; None when no stage
    depends on it or the text is not a lock file."""
    try:
        lock = yaml.safe_load(lock_text or "") or {}
    except yaml.YAMLError:
        return None
    stages = lock.get("stages") if isinstance(lock, dict) else None
    for stage in stages.values() if isinstance(stages, dict) else []:
        for dep in stage.get("deps") or [] if isinstance(stage, dict) else []:
            if isinstance(dep, dict) and dep.get("path") == path:
                return dep.get("md5")
    return None


def file_md5(path: Path) -> str:
    """md5 of a file's bytes: what DVC 3 records for a single file."""
    digest = hashlib.md5()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def remote_has(remote: Path | str, md5: str) -> bool:
    """True when a DVC 3 local remote holds the object with hash ``md5``."""
    return (Path(remote) / "files" / "md5" / md5[:2] / md5[2:]).is_file()


def default_remote(wb: Workbench) -> Path:
    """The shared local-folder DVC remote ``<home>/dvc-remote``."""
    return wb.layout.dvc_remote


def _refuse_project(path: Path) -> None:
    try:
        project = settings.project_root()
    except FileNotFoundError:
        return
    if path == project or path in project.parents:
        raise WorkspaceError(
            f"{path} is the project checkout (or holds it): a workspace must be a folder of its own, "
            "e.g. <WORKBENCH_HOME>/workspaces/<lab>."
        )


def empty_folder(path: Path | str) -> Workspace:
    """The folder ``path`` emptied (created when missing) with a ``.gitignore`` for Python caches: no repository yet.

    Lab 02 starts here, so a rerun of the lab starts from nothing; the learner then runs ``ws.git("init")`` and
    ``ws.dvc("init")``. Refuses the project checkout and the folders above it.
    """
    path = Path(path).resolve()
    _refuse_project(path)
    if path.exists():
        for child in path.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    (path / ".gitignore").write_text(GITIGNORE)
    return Workspace(path)


def init_workspace(
    wb: Workbench,
    path: Path | str,
    remote: Path | str | None = None,
    reset: bool = False,
    with_remote: bool = True,
    shared_cache: bool = False,
) -> Workspace:
    """Make ``path`` a git + DVC repository of its own, by default with a local-folder default remote.

    Idempotent: an existing workspace is kept (``reset=True`` empties the folder
    first). The remote defaults to :func:`default_remote` and is created.
    ``with_remote=False`` leaves the remote to the caller (lab 02's learner runs
    ``dvc remote add --default`` themselves).

    ``shared_cache=True`` keeps DVC's cache in the state folder (``Layout.dvc_cache``, set in the untracked
    ``.dvc/config.local``) instead of inside the workspace, so it outlives a reset: a workspace rebuilt with the
    same data, params and code gets each stage's outputs back from DVC's run cache instead of running the stage
    again. For workspaces the workbench rebuilds itself (drills), never for a learner's: lab 02 grades which
    stages DVC runs.
    """
    if remote is not None and not with_remote:
        raise InputError("init_workspace: pass either remote=FOLDER or with_remote=False, not both; drop one of them.")
    path = Path(path).resolve()
    _refuse_project(path)
    if reset and path.exists():
        for child in path.iterdir():
            shutil.rmtree(child) if child.is_dir() and not child.is_symlink() else child.unlink()
    path.mkdir(parents=True, exist_ok=True)
    if not (path / ".git").is_dir():
        run(["git", "init", "--quiet", "-b", "main"], path)
    ws = Workspace(path)
    if not (path / ".dvc").is_dir():
        run([sys.executable, "-m", "dvc", "init", "--quiet"], path, ceiling=path.parent)
    config = {"core": {"analytics": "false"}}
    if with_remote:
        remote_dir = Path(remote).resolve() if remote else default_remote(wb)
        remote_dir.mkdir(parents=True, exist_ok=True)
        config = {
            "core": {"analytics": "false", "remote": REMOTE_NAME},
            f"'remote \"{REMOTE_NAME}\"'": {"url": str(remote_dir)},
        }
    _configure(path / ".dvc" / "config", config)
    if shared_cache:
        wb.layout.dvc_cache.mkdir(parents=True, exist_ok=True)
        _configure(path / ".dvc" / "config.local", {"cache": {"dir": str(wb.layout.dvc_cache)}})
    gitignore = path / ".gitignore"
    if not gitignore.exists():
        gitignore.write_text(GITIGNORE)
    ws.commit(f"Initialise workspace: git + DVC{' with a local remote' if with_remote else ''}")
    return ws


def _configure(file: Path, sections: dict[str, dict[str, str]]) -> None:
    """Write ``sections`` into a DVC config file (``.dvc/config``, or ``.dvc/config.local`` for ``--local``) as
    ``dvc config`` / ``dvc remote add --default`` would, without paying a DVC start-up per setting."""
    config = configparser.ConfigParser()
    config.read(file)
    for section, values in sections.items():
        if not config.has_section(section):
            config.add_section(section)
        for key, value in values.items():
            config.set(section, key, value)
    with open(file, "w") as fh:
        config.write(fh)


def open_workspace(path: Path | str) -> Workspace:
    """The workspace at ``path``; raises with the fix when it is not one."""
    ws = Workspace(Path(path).resolve())
    ws._require(".git", "git")
    ws._require(".dvc", "DVC")
    return ws
