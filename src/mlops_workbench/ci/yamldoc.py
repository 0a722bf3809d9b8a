"""YAML the way GitHub Actions reads it, with a map from document paths back to line numbers.

PyYAML follows YAML 1.1, where the key ``on`` would become ``True``; GitHub
treats it as the string ``"on"``. :class:`WorkflowLoader` keeps only
``true``/``false`` as booleans. :class:`YamlDoc` keeps the composed node tree
so any JSON path (``["jobs", "build", "steps", 2]``) maps to a 1-based line.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench.errors import InputError, NotFoundError


class WorkflowLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans (``on``/``yes``/``off`` stay strings)."""


WorkflowLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
WorkflowLoader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


class YamlError(InputError):
    """The file is not valid YAML; ``line`` is 1-based."""

    def __init__(self, message: str, line: int | None):
        super().__init__(message)
        self.line = line


@dataclass
class YamlDoc:
    """A parsed YAML document and its node tree (for line numbers)."""

    data: Any
    root: yaml.Node | None
    path: Path | None = None

    @classmethod
    def parse(cls, text: str, path: Path | None = None) -> YamlDoc:
        try:
            root = yaml.compose(text, Loader=WorkflowLoader)
            data = yaml.load(text, Loader=WorkflowLoader)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            line = mark.line + 1 if mark else None
            raise YamlError(f"not valid YAML: {exc.problem or exc}", line) from None
        return cls(data=data, root=root, path=path)

    @classmethod
    def read(cls, path: Path | str) -> YamlDoc:
        path = Path(path)
        if not path.is_file():
            raise NotFoundError(f"{path} does not exist: check the path (workflows live in .github/workflows/).")
        return cls.parse(path.read_text(), path)

    def node(self, path: Iterable[Any], key: bool = False) -> yaml.Node | None:
        """The deepest node along ``path``; with ``key``, a mapping entry's key node instead of its value."""
        node, found = self.root, self.root
        for part in path:
            if isinstance(node, yaml.MappingNode):
                match = next(((k, v) for k, v in node.value if k.value == str(part)), None)
                if match is None:
                    return found
                found, node = (match[0] if key else match[1]), match[1]
            elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
                found = node = node.value[part]
            else:
                return found
        return found

    def line(self, path: Iterable[Any], key: bool = True) -> int | None:
        """1-based line of ``path`` (of its key when it is a mapping entry); the nearest parent if missing."""
        node = self.node(list(path), key=key)
        return node.start_mark.line + 1 if node is not None else None


def dotted(path: Iterable[Any]) -> str:
    """``["jobs", "build", "steps", 2]`` -> ``jobs.build.steps[2]``."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out
