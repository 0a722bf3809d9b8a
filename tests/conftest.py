"""Shared fixtures: an isolated state folder per test, and a project root for the CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("WORKBENCH_PROJECT", str(ROOT))


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """A fresh WORKBENCH_HOME; every service started under it is stopped afterwards."""
    from mlops_workbench import procs

    path = tmp_path / "home"
    path.mkdir()
    monkeypatch.setenv("WORKBENCH_HOME", str(path))
    yield path
    procs.stop_all(path)
