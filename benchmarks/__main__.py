"""Run every benchmark: ``python -m benchmarks`` (or one: ``python -m benchmarks grading``)."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from pathlib import Path


def main(names: list[str]) -> int:
    here = Path(__file__).parent
    known = sorted(m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_"))
    # `python -m benchmarks fresh_clone demo`: names of benchmarks first; the rest are that benchmark's own
    # arguments (it reads them from sys.argv)
    modules = [n for n in names if n in known] or known
    for name in modules:
        print(f"== {name} ==", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
