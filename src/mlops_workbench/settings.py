"""Where things live: the project checkout, the state folder and ``params.yaml``."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

HOME_ENV = "WORKBENCH_HOME"
PROJECT_ENV = "WORKBENCH_PROJECT"


def project_root() -> Path:
    """The checkout holding ``labs/`` and ``params.yaml``.

    ``WORKBENCH_PROJECT`` wins; otherwise the nearest folder above the current
    directory, then above this package, that has a ``labs/`` folder.
    """
    if os.environ.get(PROJECT_ENV):
        return Path(os.environ[PROJECT_ENV]).resolve()
    for start in (Path.cwd(), Path(__file__).resolve()):
        for folder in (start, *start.parents):
            if (folder / "labs").is_dir() and (folder / "params.yaml").is_file():
                return folder
    raise FileNotFoundError(
        "Cannot find the mlops-workbench checkout (a folder with labs/ and params.yaml). "
        f"Run from inside the checkout or set {PROJECT_ENV}=/path/to/mlops-workbench."
    )


def home() -> Path:
    """The state folder (``WORKBENCH_HOME``, default ``.workbench/`` in the project), created if missing."""
    raw = os.environ.get(HOME_ENV)
    if raw:
        path = Path(raw).expanduser()
    else:
        try:
            path = project_root() / ".workbench"
        except FileNotFoundError:
            path = Path.cwd() / ".workbench"
    path = path.resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def load_params(section: str | None = None, path: Path | None = None) -> dict[str, Any]:
    """Read ``params.yaml`` (the project's unless ``path`` is given); one section if named."""
    path = path or project_root() / "params.yaml"
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist: restore it from git (git checkout -- params.yaml).") from None
    if section is None:
        return data
    if section not in data:
        raise KeyError(f"{path} has no '{section}' section; known sections: {', '.join(sorted(data)) or 'none'}.")
    return data[section]
