"""The package's shape: no import circle (lazy imports inside functions included) and no arrow up the lifecycle.

Packages are layered in the order the course teaches them; a module may import from its own layer or a lower one.
An import that has to go up is a sign the code sits in the wrong place: move it, or pass a function down.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "mlops_workbench"

# Lower layers first. A module's layer is that of its top-level module or package under mlops_workbench.
LAYERS = [
    "errors fielderrors safeyaml settings workbench paramspec records alias output procs tools",
    "data train evaluate figures tracking tracking_server tracking_store datastats",
    "versioning ci",
    "registry",
    "serving",
    "rollout k8s gitops strategies",
    "monitoring",
    "drills labs jupyter",
    "doctor cli",
]
LAYER = {name: n for n, names in enumerate(LAYERS) for name in names.split()}


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """The project modules ``name`` imports anywhere in its file (an imported package counts as its __init__)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            wanted = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parent, base] if base else parent)
            wanted = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in wanted:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                targets.add(target)
    return targets


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, known) for name, path in known.items()}


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    """One import circle as a path that ends where it starts, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYER.get(parts[1]) if len(parts) > 1 else None


def test_no_import_circle_even_through_lazy_imports():
    cycle = find_cycle(graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_every_top_level_module_has_a_layer():
    tops = {name.split(".")[1] for name in modules() if name.count(".") >= 1}
    assert tops <= set(LAYER), f"give these a layer in LAYERS: {sorted(tops - set(LAYER))}"


def test_no_import_goes_up_the_lifecycle():
    up = [
        f"{a} (layer {layer(a)}) imports {b} (layer {layer(b)})"
        for a, targets in graph().items()
        for b in targets
        if layer(a) is not None and layer(b) is not None and layer(b) > layer(a)  # type: ignore[operator]
    ]
    assert up == []


def test_the_checks_see_a_lazy_import_a_circle_and_an_upward_arrow(tmp_path):
    lazy = tmp_path / "settings.py"
    lazy.write_text("def f():\n    from mlops_workbench import cli\n    from .cli import main\n")
    assert imports("mlops_workbench.settings", lazy, modules()) == {"mlops_workbench.cli", "mlops_workbench.cli.main"}
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert layer("mlops_workbench.cli.main") == len(LAYERS) - 1 and layer("mlops_workbench.settings") == 0
