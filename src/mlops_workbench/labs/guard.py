"""Did the submission touch the grader's own files?

The notebook runs as the same user as the grader, so it could rewrite the lab's ``checks.py`` or the package the
checks import. The checks that grade a run are loaded before it starts, :func:`snapshot` takes the digest of every
file in the lab folder and the package, and :func:`changes` names every file the run changed, added or deleted, so
the grader can refuse the submission without running a check.

Nothing is written back: the grader never edits a source tree, which may be a developer's checkout with work in
progress (an edit made while a grading runs is named, not undone). The only files removed are compiled caches
(``__pycache__``) that are new or changed since the snapshot: Python rebuilds them from the sources, which are
checked, so a forged cache can never stand in for a checked source.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import mlops_workbench

PACKAGE_DIR = Path(mlops_workbench.__file__).resolve().parent


def _cache(path: Path) -> bool:
    return "__pycache__" in path.parts


def _digest(path: Path) -> str | None:
    """The file's sha256; None when it vanished since it was listed (another grading deleting a cache it wrote)."""
    try:
        with path.open("rb") as stream:
            return hashlib.file_digest(stream, "sha256").hexdigest()
    except FileNotFoundError:
        return None


def _walk(roots: tuple[Path, ...]) -> list[Path]:
    return [p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file()]


@dataclass(frozen=True)
class Snapshot:
    roots: tuple[Path, ...]
    digests: dict[Path, str]


def snapshot(*roots: Path) -> Snapshot:
    """The digest of every file under ``roots`` (the lab folder, the package) as it is now."""
    resolved = tuple(Path(r).resolve() for r in roots)
    digests = {path: _digest(path) for path in _walk(resolved)}
    return Snapshot(resolved, {path: digest for path, digest in digests.items() if digest is not None})


def _name(snap: Snapshot, path: Path) -> str:
    root = next((r for r in snap.roots if path.is_relative_to(r)), path.parent)
    return f"{root.name}/{path.relative_to(root)}"


def changes(snap: Snapshot) -> list[str]:
    """The files under the snapshot's roots that were changed, added or deleted since, relative to their root.

    Compiled caches that are new or changed are deleted instead of named (see the module's docstring)."""
    changed: set[str] = set()
    for path in _walk(snap.roots):
        before, now = snap.digests.get(path), _digest(path)
        if now is None or (before is not None and now == before):
            continue  # unchanged, or gone since the listing (a deletion is counted below)
        if _cache(path):
            path.unlink(missing_ok=True)
        else:
            changed.add(_name(snap, path))
    changed.update(_name(snap, path) for path in snap.digests if not _cache(path) and not path.is_file())
    return sorted(changed)
