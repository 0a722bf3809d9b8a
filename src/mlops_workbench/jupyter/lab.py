"""Start JupyterLab the way ``make lab`` does (``workbench lab``), as one tested command line.

JupyterLab is rooted at the project and opens the learner's copies of the notebooks under the state folder
(``.workbench/notebooks/``, made by :func:`mlops_workbench.labs.copies.prepare`; the tracked ``notebooks/`` stay
as released), or ``notebooks/`` when asked to; with a state folder outside the project it is rooted there. Hidden folders are served
(``ContentsManager.allow_hidden``) so the learner's own files under the state folder
(``.workbench/workspaces/<lab>/``: ``iris-ci/``, ``policy.yaml``) open in the file browser
by path, and each lab prints that path when it starts. As root (containers) it adds
``--allow-root``, without which Jupyter refuses to start.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from mlops_workbench import settings

PAGE_PREFIX = "/lab/tree"


def command(
    project: Path | None = None,
    *,
    start: Path | None = None,
    port: int | None = None,
    token: str | None = None,
    open_browser: bool = True,
    config: Path | None = None,
    uid: int | None = None,
) -> list[str]:
    """The ``jupyter lab`` command line opening ``start`` (default: the project's ``notebooks/``); ``token=""``
    disables the token, for tests on loopback only.

    ``port`` is where JupyterLab listens on 127.0.0.1, exactly (no retries): ``workbench lab`` passes its default,
    8888 + ``WORKBENCH_PORT_OFFSET`` or the next free port (:func:`mlops_workbench.procs.choose_port`). Without it
    Jupyter picks a port itself."""
    project = Path(project or settings.project_root()).resolve()
    folder = Path(start).resolve() if start is not None else project / "notebooks"
    root = project if folder.is_relative_to(project) else folder.parent
    page = f"{PAGE_PREFIX}/{folder.relative_to(root).as_posix()}"
    args = [
        str(Path(sys.executable).with_name("jupyter")),
        "lab",
        f"--ServerApp.root_dir={root}",
        f"--ServerApp.default_url={page}",
        "--ContentsManager.allow_hidden=True",
    ]
    if (os.geteuid() if uid is None else uid) == 0:
        args.append("--allow-root")
    if port is not None:
        args += [f"--ServerApp.port={port}", "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1"]
    if token is not None:
        args.append(f"--IdentityProvider.token={token}")
    if not open_browser:
        args.append("--no-browser")
    if config is not None:
        args.append(f"--config={config}")
    return args


def workspace_path(workspace: Path, project: Path | None = None) -> str | None:
    """Where a lab workspace opens in JupyterLab's file browser (relative to the project), or None if outside."""
    try:
        return Path(workspace).resolve().relative_to(Path(project or settings.project_root()).resolve()).as_posix()
    except ValueError:
        return None
