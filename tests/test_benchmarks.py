"""The benchmarks (``make bench``) keep up with the package's API, checked without running one.

They start real servers for minutes, so nothing ran them when the ``Workbench`` refactor changed the calls they
make: they broke unseen. An import does not catch that (the calls are inside ``main``); mypy does, and ``make lint``
(part of ``make test``) now runs it on ``benchmarks/`` too. These tests cover what mypy cannot see: how
``python -m benchmarks`` finds and calls them.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NAMES = sorted(p.stem for p in (ROOT / "benchmarks").glob("*.py") if not p.stem.startswith("_"))


@pytest.fixture
def runner(monkeypatch):
    """``benchmarks/__main__.py`` as a module, refusing to run any benchmark (none may start here)."""
    monkeypatch.syspath_prepend(str(ROOT))
    module = importlib.import_module("benchmarks.__main__")

    def refuse(name):
        raise AssertionError(f"would have run the benchmark {name}")

    monkeypatch.setattr(module, "run", refuse)
    return module


def test_every_benchmark_imports_and_its_main_takes_no_required_argument():
    """`python -m benchmarks` imports each one and calls ``main()`` with no arguments."""
    code = (
        "import importlib, inspect, sys\n"
        "for name in sys.argv[1:]:\n"
        "    inspect.signature(importlib.import_module(f'benchmarks.{name}').main).bind()\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *NAMES], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_the_list_names_every_benchmark_and_runs_none(runner, capsys):
    assert NAMES and runner.known() == NAMES
    assert runner.main(["--list"]) == 0
    listed = capsys.readouterr().out
    for name in NAMES:
        assert f"  {name} " in listed and runner.summary(name) in listed


def test_an_unknown_name_runs_no_benchmark(runner, capsys):
    """A typo once meant every benchmark (a quarter of an hour): now it is an error naming the known ones."""
    assert runner.main(["servng"]) == 2
    assert "serving" in capsys.readouterr().err
