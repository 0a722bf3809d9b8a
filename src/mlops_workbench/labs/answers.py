"""Answer functions: package calls that do an exercise for the learner, found in the answer cells' syntax trees.

A lab's ``lab.yaml`` names them (``answer_functions``); :func:`scan` reads every
code cell of a submission with :mod:`ast`, follows imports and simple aliases
(``import x.y as z``, ``from x import y as z``, ``from x import *``,
``z = x.y``, ``getattr(x, "y")``, ``importlib.import_module("x.y")``) and
reports each reference to one of them in a learner-editable cell, called or not.
Names are bound from every cell (the read-only setup cell imports the package
for the learner) but only editable cells are reported. A learner's own function
of the same name is never flagged: only a name bound to the package path counts.
"""

from __future__ import annotations

import ast
import importlib
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

PACKAGE = "mlops_workbench"
MAX_REPAIRS = 50
"""Lines a cell may have that Python cannot parse (magics IPython could not turn into Python) before it is skipped."""


class Banned(Protocol):
    call: str
    cells: list[str]
    instead: str


@dataclass(frozen=True)
class Violation:
    """A reference to answer function ``call`` in ``cell`` at ``line`` (1-based, in the cell's source)."""

    call: str
    cell: str
    line: int
    cells: tuple[str, ...]
    instead: str

    @property
    def short(self) -> str:
        """``registry.promote`` for ``mlops_workbench.registry.promote``."""
        return self.call.removeprefix(PACKAGE + ".")

    @property
    def message(self) -> str:
        return (
            f"`{self.short}` (cell '{self.cell}', line {self.line}) does the exercise for you: "
            f"{self.instead.rstrip('.')}."
        )


def resolve(call: str) -> Any:
    """The object at dotted path ``call`` (a module, or an attribute of one); raises ImportError/AttributeError."""
    parts = call.split(".")
    for split in range(len(parts), 0, -1):
        module_name = ".".join(parts[:split])
        try:
            obj: Any = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and not module_name.startswith(exc.name):
                raise  # the module exists but imports something that does not
            continue
        for attr in parts[split:]:
            obj = getattr(obj, attr)
        return obj
    raise ImportError(f"no module named {parts[0]!r}")


def aliases(call: str) -> set[str]:
    """Every dotted path in the loaded package modules that holds the same object as ``call`` (``call`` included).

    ``mlops_workbench.versioning.log_model_run`` is also ``...versioning.lineage.log_model_run``.
    """
    obj = resolve(call)
    found = {call}
    top = call.split(".")[0]
    for name, module in list(sys.modules.items()):
        if module is None or not (name == top or name.startswith(top + ".")):
            continue
        for attr, value in list(vars(module).items()):
            if value is obj:
                found.add(f"{name}.{attr}")
    return found


def _python(source: str) -> str:
    """The cell as Python: IPython magics and shell escapes turned into calls when IPython is there."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
    except ImportError:
        return source
    try:
        return TransformerManager().transform_cell(source)
    except Exception:  # noqa: BLE001 - a cell IPython cannot read is parsed as written
        return source


def parse(source: str) -> ast.Module:
    """The cell's syntax tree; lines Python cannot parse are blanked (so line numbers stay), never an exception."""
    lines = _python(source).splitlines()
    for _ in range(MAX_REPAIRS):
        try:
            return ast.parse("\n".join(lines))
        except SyntaxError as exc:
            number = (exc.lineno or 0) - 1
            if not 0 <= number < len(lines) or not lines[number].strip():
                break
            indent = lines[number][: len(lines[number]) - len(lines[number].lstrip())]
            lines[number] = indent + "pass"
        except (ValueError, RecursionError, MemoryError):  # null bytes, absurd nesting
            break
    return ast.Module(body=[], type_ignores=[])


_CODE_MAGICS = {"time", "timeit", "prun", "capture", "debug", "writefile"}
"""Magics whose body is Python the kernel runs or (``%%writefile x.py``, how learners write modules) imports later."""


def _magic_code(node: ast.Call) -> str | None:
    """The Python inside ``%time ...``/``%%capture`` once IPython turned them into ``run_*_magic`` calls."""
    func = node.func
    if not (isinstance(func, ast.Attribute) and func.attr in ("run_line_magic", "run_cell_magic")):
        return None
    args = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
    if len(args) < 2 or args[0] not in _CODE_MAGICS:
        return None
    return args[-1]


class _Bindings:
    """Which names stand for which package paths, over the whole notebook (flow-insensitive)."""

    def __init__(self) -> None:
        self.names: dict[str, set[str]] = {}
        self.own: set[str] = set()  # names the learner defines or assigns themself
        self.stars: set[str] = set()

    def bind(self, name: str, path: str) -> None:
        self.names.setdefault(name, set()).add(path)

    def paths(self, node: ast.AST) -> set[str]:
        """The dotted package paths an expression may stand for."""
        if isinstance(node, ast.Name):
            found = set(self.names.get(node.id, ()))
            if node.id not in self.own:  # a star import is shadowed by the learner's own definition
                found |= {f"{module}.{node.id}" for module in self.stars}
            return found
        if isinstance(node, ast.Attribute):
            return {f"{base}.{node.attr}" for base in self.paths(node.value)}
        if isinstance(node, ast.Call):
            func = node.func
            const = [a.value for a in node.args if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            if isinstance(func, ast.Name) and func.id == "getattr" and len(node.args) >= 2 and const:
                return {f"{base}.{const[0]}" for base in self.paths(node.args[0])}
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if name == "import_module" and const:
                return {const[0]}
            if name == "__import__" and const:  # the top package, or the module itself with a fromlist
                return {const[0], const[0].split(".")[0]}
        return set()

    def collect(self, tree: ast.AST) -> None:
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.asname:
                        self.bind(alias.asname, alias.name)
                    else:
                        self.bind(alias.name.split(".")[0], alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                for alias in node.names:
                    if alias.name == "*":
                        self.stars.add(node.module)
                    else:
                        self.bind(alias.asname or alias.name, f"{node.module}.{alias.name}")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                self.own.add(node.name)
            elif isinstance(node, ast.arg):
                self.own.add(node.arg)
            elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.NamedExpr)) and node.value is not None:
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        self.own.add(target.id)
        # aliases by assignment (`r = registry`), repeated so chains of them resolve
        for _ in range(3):
            for node in ast.walk(tree):
                if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
                    for path in self.paths(node.value):
                        self.bind(node.targets[0].id, path)


def _references(tree: ast.AST, bindings: _Bindings, offset: int = 0) -> Iterable[tuple[set[str], int]]:
    """Each package path referenced in ``tree`` (imports included) with its line."""
    for node in ast.walk(tree):
        line = getattr(node, "lineno", 1) + offset
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield {alias.name}, line
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield {f"{node.module}.{alias.name}" for alias in node.names if alias.name != "*"}, line
        elif isinstance(node, (ast.Name, ast.Attribute)) and isinstance(node.ctx, ast.Load):
            yield bindings.paths(node), line
        elif isinstance(node, ast.Call):
            yield bindings.paths(node), line
            code = _magic_code(node)
            if code is not None:
                inner = parse(code)
                bindings.collect(inner)
                yield from _references(inner, bindings, line - 1)


def scan(
    cells: Mapping[str, str], functions: Iterable[Banned], editable: Iterable[str] | None = None, expand: bool = False
) -> list[Violation]:
    """The references to ``functions`` in the ``editable`` cells (default: all) of ``cells`` (id -> source).

    Imports anywhere in ``cells`` count for every cell. ``expand`` also matches every other path that holds the
    same object (:func:`aliases`; imports the package), as the grader does.
    """
    functions = list(functions)
    if not functions:
        return []
    trees = {cell_id: parse(source) for cell_id, source in cells.items()}
    bindings = _Bindings()
    for tree in trees.values():
        bindings.collect(tree)
    wanted = set(cells if editable is None else editable)
    targets = [(f, aliases(f.call) if expand else {f.call}) for f in functions]
    found: dict[tuple[str, str], Violation] = {}
    for cell_id, tree in trees.items():
        if cell_id not in wanted:
            continue
        for paths, line in _references(tree, bindings):
            for function, names in targets:
                if any(p in names or any(p.startswith(n + ".") for n in names) for p in paths):
                    key = (function.call, cell_id)
                    if key not in found or line < found[key].line:
                        found[key] = Violation(function.call, cell_id, line, tuple(function.cells), function.instead)
    return sorted(found.values(), key=lambda v: (list(cells).index(v.cell), v.line, v.call))
