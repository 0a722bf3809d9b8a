"""The empty MLflow store that new tracking servers start from: the first new store of an MLflow version is kept
in :func:`settings.cache_dir` (:func:`keep_empty`), and every later one starts as a copy (:func:`seed`) instead of
running MLflow's fifty-odd schema migrations. Only a speed-up: on any error MLflow builds the store itself."""

from __future__ import annotations

import os
import shutil
import sqlite3
from contextlib import closing, suppress
from pathlib import Path

from mlops_workbench import settings


def empty_store() -> Path:
    """Where the empty sqlite store of the installed MLflow version is kept (made by the first new store)."""
    from importlib.metadata import version

    return settings.cache_dir() / f"mlflow-{version('mlflow')}-empty.db"


def seed(db: Path) -> bool | None:
    """Copy the empty store to ``db`` if ``db`` is new: True if copied, False if new and no copy exists yet,
    None if ``db`` already existed."""
    if db.exists():
        return None
    template = empty_store()
    if not template.is_file():
        return False
    partial = db.with_name(f"{db.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(template, partial)
        os.replace(partial, db)
    except OSError:  # only a speed-up: MLflow builds the store itself
        with suppress(OSError):
            partial.unlink(missing_ok=True)
        return False
    return True


def keep_empty(db: Path) -> None:
    """Keep a copy of the new store ``db`` (just started, still empty) as :func:`empty_store`. Only a speed-up:
    a store that already holds anything (experiments, runs, models) is never kept, and any error is ignored."""
    template = empty_store()
    if template.exists():
        return
    partial = template.with_name(f"{template.name}.{os.getpid()}.part")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        with closing(sqlite3.connect(db)) as source, closing(sqlite3.connect(partial)) as copy:
            source.backup(copy)
            counts = [
                copy.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # noqa: S608 (fixed names)
                for table in ("experiments", "runs", "registered_models", "logged_models")
            ]
        if counts == [1, 0, 0, 0]:  # the Default experiment only
            os.replace(partial, template)
    except (OSError, sqlite3.Error):
        pass
    finally:
        with suppress(OSError):
            partial.unlink(missing_ok=True)
