"""Load a function from a Python file the learner wrote (``%%writefile``), for the notebook and for checks.

Hidden checks call a learner's function on planted inputs in the grader's own
process, so the function must live in a file in the lab workspace, not only in
the kernel. Each call imports the file afresh: the learner rewrites it between runs.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any


def load_module(path: Path | str, name: str | None = None) -> ModuleType:
    """The Python file ``path`` freshly imported; with ``name`` it is also registered under that name in
    ``sys.modules`` (dataclasses and pickling look a module up by name), else it is named after the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist: run the %%writefile cell that writes it.")
    spec = importlib.util.spec_from_file_location(name or path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} is not a Python file: give it the .py suffix.")
    module = importlib.util.module_from_spec(spec)
    if name:
        sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def load_function(path: Path | str, name: str) -> Callable[..., Any]:
    """Function ``name`` of the Python file ``path``, freshly imported (the module is named after the file)."""
    path = Path(path)
    func: object = getattr(load_module(path), name, None)
    if not callable(func):
        raise AttributeError(f"{path} defines no function {name}(): keep the `def {name}(...)` line of the exercise.")
    return func
