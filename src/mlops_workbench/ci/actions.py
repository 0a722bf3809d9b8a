"""What ``workbench ci run`` does with ``uses:`` steps, and with ``${{ }}`` expressions.

Local stand-ins exist only where the meaning is clear on one machine:
``actions/checkout`` (the project is already here), ``actions/setup-python``
(check the local Python version), ``actions/cache`` (nothing to restore).
Every other action is skipped with the reason, never faked.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_workbench.ci.docker import engine

EXPR_RX = re.compile(r"\$\{\{\s*(.+?)\s*\}\}")
NAME_RX = re.compile(r"^[A-Za-z_][\w-]*(\.[\w-]+|\[\s*'[^']*'\s*\])*$")


@dataclass
class ActionOutcome:
    status: str  # passed | warning | skipped
    reason: str


def action_name(uses: str) -> str:
    """``actions/setup-python@v5`` -> ``actions/setup-python``."""
    return uses.split("@", 1)[0].strip().lower()


def local_python() -> str:
    return ".".join(map(str, sys.version_info[:3]))


def setup_python(with_: dict[str, Any], project: Path) -> ActionOutcome:
    """Compare the requested ``python-version`` with the Python running the steps."""
    wanted = str(with_.get("python-version") or "").strip()
    if not wanted and with_.get("python-version-file"):
        version_file = project / str(with_["python-version-file"])
        wanted = version_file.read_text().strip().splitlines()[0] if version_file.is_file() else ""
    here = local_python()
    cache = f"; cache: {with_['cache']} is a no-op locally" if with_.get("cache") else ""
    if not wanted:
        return ActionOutcome("warning", f"no python-version given; steps use the local Python {here}{cache}")
    plain = wanted.lstrip("~^=v").replace(".x", "").rstrip(".*")
    if here == plain or here.startswith(plain + "."):
        return ActionOutcome("passed", f"local Python {here} matches python-version {wanted}{cache}")
    return ActionOutcome(
        "warning",
        f"workflow asks for Python {wanted} but the local Python is {here}: results may differ on GitHub{cache}",
    )


def run_action(uses: str, with_: dict[str, Any], project: Path) -> ActionOutcome:
    """The local meaning of a ``uses:`` step."""
    name = action_name(uses)
    if name == "actions/checkout":
        return ActionOutcome("passed", f"no-op: the project is already here ({project})")
    if name == "actions/setup-python":
        return setup_python(with_, project)
    if name == "actions/cache":
        return ActionOutcome("passed", "no-op: there is no remote cache locally")
    if name.startswith("docker/"):
        probe = engine()
        if not probe.available:
            return ActionOutcome("skipped", f"`{uses}` needs Docker: {probe.reason}")
        return ActionOutcome("skipped", f"`{uses}` runs only on GitHub's runners; build locally with `docker build`")
    if name.startswith("./") or name.startswith("docker://"):
        return ActionOutcome("skipped", f"`{uses}` (local or container action) is not emulated by `workbench ci run`")
    return ActionOutcome("skipped", f"`{uses}` runs only on GitHub's runners; `workbench ci run` does not emulate it")


class Expressions:
    """Evaluate ``${{ }}`` for the contexts a local run can know; anything else becomes ``''`` with a note."""

    def __init__(self, contexts: dict[str, Any]):
        self.contexts = contexts
        self.notes: list[str] = []

    def lookup(self, expr: str) -> Any:
        if not NAME_RX.match(expr):
            raise KeyError(expr)
        node: Any = self.contexts
        for part in re.split(r"\.|\[\s*'|'\s*\]", expr):
            if not part:
                continue
            if not isinstance(node, dict) or part not in node:
                raise KeyError(expr)
            node = node[part]
        return node

    def render(self, value: Any) -> Any:
        """Substitute expressions in a string (recursively in lists and dicts)."""
        if isinstance(value, dict):
            return {k: self.render(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.render(v) for v in value]
        if not isinstance(value, str):
            return value

        def one(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("secrets."):
                self.notes.append(f"${{{{ {expr} }}}} is empty locally (secrets live on GitHub)")
                return ""
            try:
                found = self.lookup(expr)
            except KeyError:
                self.notes.append(f"${{{{ {expr} }}}} cannot be evaluated locally and became ''")
                return ""
            return "" if found is None else str(found).lower() if isinstance(found, bool) else str(found)

        return EXPR_RX.sub(one, value)
