"""Run every benchmark: ``python -m benchmarks`` (or one: ``python -m benchmarks grading``; the list:
``python -m benchmarks --list``)."""

from __future__ import annotations

import ast
import importlib
import pkgutil
import sys
from pathlib import Path

HERE = Path(__file__).parent


def known() -> list[str]:
    """The benchmarks: every module here but those starting with ``_``."""
    return sorted(m.name for m in pkgutil.iter_modules([str(HERE)]) if not m.name.startswith("_"))


def summary(name: str) -> str:
    """The first line of benchmark ``name``'s docstring, read without importing it."""
    doc = ast.get_docstring(ast.parse((HERE / f"{name}.py").read_text())) or ""
    return doc.splitlines()[0] if doc else ""


def main(names: list[str]) -> int:
    if names and names[0] in ("-h", "--help", "--list"):
        print(__doc__)
        for name in known():
            print(f"  {name:<14} {summary(name)}")
        return 0
    if names and names[0] not in known():
        # a typo must not start every benchmark (fresh_clone alone takes a quarter of an hour)
        print(f"no benchmark called {names[0]!r}; known: {', '.join(known())}", file=sys.stderr)
        return 2
    # `python -m benchmarks fresh_clone demo`: names of benchmarks first; the rest are that benchmark's own
    # arguments (it reads them from sys.argv)
    modules = [n for n in names if n in known()] or known()
    for name in modules:
        print(f"== {name} ==", flush=True)
        run(name)
    return 0


def run(name: str) -> None:
    importlib.import_module(f"benchmarks.{name}").main()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
