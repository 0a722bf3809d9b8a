"""The grader's own files, kept as they were while a submission runs.

The notebook runs as the same user as the grader, so it could rewrite the lab's
``checks.py`` or the package the checks import. The checks that grade a run are
loaded before it starts, and :func:`snapshot` keeps the lab folder and the
package in memory; :func:`restore` puts back every file the run changed, added
or deleted (before any check runs, so a check never imports a rewritten module)
and names them, so the grader can refuse the submission.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import mlops_workbench

PACKAGE_DIR = Path(mlops_workbench.__file__).resolve().parent
MAX_FILE_BYTES = 20 << 20
"""Files above this size are compared by size and time only (a lab folder holds nothing that large)."""


def _cache(path: Path) -> bool:
    return "__pycache__" in path.parts


@dataclass
class Snapshot:
    roots: tuple[Path, ...]
    files: dict[Path, bytes | tuple[int, int]]
    caches: dict[Path, bytes]


def _content(path: Path) -> bytes | tuple[int, int]:
    stat = path.stat()
    return (stat.st_size, stat.st_mtime_ns) if stat.st_size > MAX_FILE_BYTES else path.read_bytes()


def _walk(roots: tuple[Path, ...]) -> list[Path]:
    return [p for root in roots if root.is_dir() for p in root.rglob("*") if p.is_file() or p.is_symlink()]


def snapshot(*roots: Path) -> Snapshot:
    """Keep every file under ``roots`` (the lab folder, the package) as it is now."""
    roots = tuple(Path(r).resolve() for r in roots)
    files: dict[Path, bytes | tuple[int, int]] = {}
    caches: dict[Path, bytes] = {}
    for path in _walk(roots):
        if path.is_file():
            (caches if _cache(path) else files)[path] = _content(path)
    return Snapshot(roots, files, caches)


def restore(snap: Snapshot, aside: Path) -> list[str]:
    """Undo every change under the snapshot's roots; return the changed files, relative to their root.

    What the run wrote is moved under ``aside`` first (``aside/<root>/<path>``), so an edit someone made by hand
    while the grading ran is never lost.

    Compiled files (``__pycache__``) written since are deleted rather than reported: Python writes them
    itself and rebuilds them from the restored sources; a changed one that existed before is reported.
    """
    changed: list[str] = []
    now = set(_walk(snap.roots))

    def name(path: Path) -> str:
        root = next((r for r in snap.roots if path.is_relative_to(r)), path.parent)
        return f"{root.name}/{path.relative_to(root)}"

    def put_aside(path: Path) -> None:
        if path.is_file() and not path.is_symlink():
            target = aside / name(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(path.read_bytes())
        path.unlink(missing_ok=True)

    for path in sorted(now):
        if _cache(path):
            before = snap.caches.get(path)
            if before is None or not path.is_file() or path.read_bytes() != before:
                if before is not None:
                    changed.append(name(path))
                path.unlink(missing_ok=True)
        elif path not in snap.files:
            changed.append(name(path))
            put_aside(path)
    for path, before in snap.files.items():
        if not path.is_file() or _content(path) != before:
            changed.append(name(path))
            if isinstance(before, bytes):
                put_aside(path)
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_bytes(before)
    return sorted(set(changed))
