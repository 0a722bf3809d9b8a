"""The learner's working copies of the notebooks, under the state folder (what ``make lab`` opens).

``notebooks/*.ipynb`` are tracked release files: answers typed into them would dirty the checkout and be lost to
the next release. :func:`prepare` copies each one once to ``<state folder>/notebooks/`` and never overwrites a
copy the learner has changed: when a newer release arrives, an untouched copy is replaced, and a changed one is
kept with the new release put beside it (``NN-slug.new.ipynb``) and a message saying so.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from mlops_workbench import settings
from mlops_workbench.workbench import Workbench

Status = Literal["copied", "current", "updated", "newer"]


@dataclass(frozen=True)
class Copy:
    lab: str
    path: Path
    status: Status
    update: Path | None = None

    @property
    def message(self) -> str | None:
        """A line for the learner when something changed; None when the copy is current."""
        if self.status == "copied":
            return f"{self.lab}: your copy is {self.path}"
        if self.status == "updated":
            return f"{self.lab}: a newer release replaced your copy {self.path} (you had not changed it)"
        if self.status == "newer" and self.update is not None:  # a newer release always names its file
            return (
                f"{self.lab}: a newer release is in {self.update}; your work in {self.path} is kept as it is. "
                f"To switch, copy your answers into the new notebook and rename it to {self.path.name}; "
                f"to stay on yours, delete {self.update.name}."
            )
        return None


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _write_new(path: Path, data: bytes) -> None:
    """Create ``path`` with ``data``; never replaces a file that appeared meanwhile (FileExistsError)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("xb") as handle:
        handle.write(data)


def _origin(path: Path) -> dict[str, str | None]:
    """``{"copied_from": sha, "offered": sha or None}``; an empty record when missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {"copied_from": None, "offered": None}
    return {key: data.get(key) if isinstance(data, dict) else None for key in ("copied_from", "offered")}


def _record(path: Path, copied_from: str, offered: str | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"copied_from": copied_from, "offered": offered}) + "\n")


def prepare_one(release: Path, layout: settings.StateLayout) -> Copy:
    """Make or refresh the working copy of one released notebook (see the module's docstring)."""
    lab = release.stem
    data = release.read_bytes()
    released = _sha(data)
    copy, origin, update = layout.notebook(lab), layout.notebook_origin(lab), layout.notebook_update(lab)
    if not copy.exists():
        _write_new(copy, data)
        _record(origin, released)
        if update.is_file() and update.read_bytes() == data:
            update.unlink()  # the learner started over from the release offered earlier
        return Copy(lab, copy, "copied")
    record = _origin(origin)
    known = record["copied_from"]
    if known is None or known == released or (record["offered"] == released and not update.exists()):
        # current; a copy made before origins were recorded; or the learner took the offered release (moved
        # their answers into it and renamed it, or deleted it): the copy counts as made from this release
        if known != released:
            _record(origin, released)
        return Copy(lab, copy, "current")
    if _sha(copy.read_bytes()) == known:  # untouched since it was copied: nothing of the learner's to lose
        copy.write_bytes(data)
        _record(origin, released)
        update.unlink(missing_ok=True)
        return Copy(lab, copy, "updated")
    if not update.is_file() or update.read_bytes() != data:
        update.write_bytes(data)
    _record(origin, known, offered=released)
    return Copy(lab, copy, "newer", update)


def prepare(wb: Workbench, project: Path | None = None) -> list[Copy]:
    """Working copies of every notebook in ``<project>/notebooks/`` under ``<home>/notebooks/``; the tracked
    notebooks are only read."""
    project = Path(project or settings.project_root())
    layout = wb.layout
    return [prepare_one(path, layout) for path in sorted((project / "notebooks").glob("*.ipynb"))]
