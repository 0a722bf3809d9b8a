"""Reading YAML that a person wrote (policies, lab specs, params, records, manifests) without trusting it.

PyYAML's safe loader builds no Python objects beyond plain data, but it still reads a file of any size, recurses
once per level of nesting (a few thousand ``[`` end in RecursionError) and follows anchors and aliases (a "billion
laughs" document expands exponentially when walked, ``&a [*a]`` builds a list that contains itself). :func:`load`
closes all three before the data reaches a model: it measures the input before parsing, refuses anchors and
aliases by name, and stops at the first collection opened past ``max_depth``, all while walking the parser's
events in a loop, before the (recursive) loader runs. No file it reads ever needs an anchor.

Every refusal is an :class:`~mlops_workbench.errors.InputError` (or the caller's subclass of it) whose message
names the file, the problem and where to look, so the CLI prints one line and exits with code 2.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import yaml

from mlops_workbench.errors import InputError, WorkbenchError

MAX_BYTES = 1 << 20
"""Largest input :func:`load` parses by default (1 MB); the files it reads are a few kilobytes."""
MAX_DEPTH = 64
"""Most collections that may be open at once; the deepest file the workbench reads nests about a dozen."""
MAX_NODES = 100_000
"""Where aliases are allowed: most values the document may hold once every alias is expanded (a "billion
laughs" document holds a billion from a few lines)."""


class YamlInputError(InputError):
    """A YAML file that is too big, too deep, uses anchors or aliases, or is not YAML at all."""


_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
"""libyaml's safe loader when PyYAML was built with it (about six times faster), else the pure-Python one."""


class _Mark(Protocol):
    """Where an event starts: PyYAML's pure-Python ``yaml.Mark`` or libyaml's, which share these fields."""

    line: int
    column: int


def _where(mark: _Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "an unknown place"


def _too_deep(what: str, max_depth: int, mark: _Mark | None, error: type[WorkbenchError]) -> WorkbenchError:
    return error(
        f"{what} nests deeper than {max_depth} levels (at {_where(mark)}): no valid file comes close. "
        "Look for brackets or braces that never close, or restore the file."
    )


def _scan(text: str | bytes, what: str, max_depth: int, error: type[WorkbenchError], aliases: bool) -> int:
    """Walk the parser's events before any tree is built (a loop: nothing recurses); returns the document count.

    Refuses the first collection opened past ``max_depth``, so the loader that runs next recurses at most
    ``max_depth`` levels. Without ``aliases`` it refuses the first anchor or alias too. With them, it counts the
    values each anchored node stands for and refuses a document that would hold more than :data:`MAX_NODES`
    once expanded, or an alias to a node that is not finished (one that contains itself).
    """
    depth = documents = 0
    sizes: dict[str, int] = {}  # anchor -> values it stands for, once its node is complete
    defined: set[str] = set()
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, values so far) of every open collection
    total = 0
    for event in yaml.parse(text, Loader=_LOADER):
        anchor = getattr(event, "anchor", None)
        if not aliases and isinstance(event, yaml.AliasEvent):
            raise error(
                f"{what} uses the YAML alias '*{event.anchor}' at {_where(event.start_mark)}: this file never "
                "needs anchors or aliases. Write the value out in full where the alias stands."
            )
        if not aliases and anchor is not None:
            raise error(
                f"{what} defines the YAML anchor '&{anchor}' at {_where(event.start_mark)}: this file never "
                f"needs anchors or aliases. Delete '&{anchor}' and write out in full every value that uses it."
            )
        added = 0
        if anchor is not None and not isinstance(event, yaml.AliasEvent):  # an alias's "anchor" is the name it uses
            defined.add(anchor)
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > max_depth:
                raise _too_deep(what, max_depth, event.start_mark, error)
            open_nodes.append((anchor, 1))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            name, added = open_nodes.pop()
            if name is not None:
                sizes[name] = added
        elif isinstance(event, yaml.ScalarEvent):
            added = 1
            if anchor is not None:
                sizes[anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in defined:
                raise error(
                    f"{what}: the alias '*{event.anchor}' at {_where(event.start_mark)} names no anchor "
                    f"defined above it: define '&{event.anchor}' first, or write the value out."
                )
            if event.anchor not in sizes:
                raise error(
                    f"{what}: the alias '*{event.anchor}' at {_where(event.start_mark)} stands inside the "
                    "very value it names, so the value would contain itself. Write the value out instead."
                )
            added = sizes[event.anchor]
        elif isinstance(event, yaml.DocumentStartEvent):
            documents += 1
        if added:
            if open_nodes:
                name, count = open_nodes[-1]
                open_nodes[-1] = (name, count + added)
            total += added if not open_nodes else 0
            if sum(count for _, count in open_nodes) + total > MAX_NODES:
                raise error(
                    f"{what} would hold more than {MAX_NODES:,} values once its aliases are expanded "
                    f"(at {_where(event.start_mark)}): aliases that repeat aliases multiply. Write the "
                    "repeated values out, or repeat less."
                )
    return documents


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


def _too_big(what: str, max_bytes: int, size: int | None, error: type[WorkbenchError]) -> WorkbenchError:
    measured = f"{_megabytes(size)}, over" if size is not None else "larger than"
    return error(
        f"{what} is {measured} the {_megabytes(max_bytes)} limit for this file: such a file holds a few "
        "kilobytes of YAML. Check that it is the right file and cut it down to the settings it needs."
    )


def _bounded(source: str | bytes | Path, what: str, max_bytes: int, error: type[WorkbenchError]) -> str | bytes:
    """The input, refused before it is parsed (or, for a file, read in full) when it is over ``max_bytes``."""
    if isinstance(source, Path):
        size = source.stat().st_size
        if size > max_bytes:
            raise _too_big(what, max_bytes, size, error)
        with source.open("rb") as handle:
            data = handle.read(max_bytes + 1)  # a file that grew since, or a device, stops here
        if len(data) > max_bytes:
            raise _too_big(what, max_bytes, None, error)
        return data
    size = len(source) if isinstance(source, bytes) else len(source.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise _too_big(what, max_bytes, size, error)
    return source


def _documents(
    source: str | bytes | Path,
    what: str,
    max_bytes: int,
    max_depth: int,
    error: type[WorkbenchError],
    single: bool,
    aliases: bool = False,
) -> list[Any]:
    text = _bounded(source, what, max_bytes, error)
    try:
        documents = _scan(text, what, max_depth, error, aliases)
        if single and documents > 1:
            raise error(
                f"{what} holds {documents} YAML documents (separated by '---'); it must hold one. "
                "Delete the extra '---' lines."
            )
        return list(yaml.load_all(text, Loader=_LOADER))
    except WorkbenchError:
        raise
    except yaml.MarkedYAMLError as exc:
        problem, mark = exc.problem or exc.context or "unreadable text", exc.problem_mark or exc.context_mark
        if "nesting depth" in problem:  # libyaml's own bound, met while it looks ahead for a key
            raise _too_deep(what, max_depth, mark, error) from None
        if isinstance(exc, yaml.constructor.ConstructorError):  # a '!tag', or a list or mapping used as a key
            raise error(
                f"{what} cannot be read: {problem} at {_where(mark)}. Write plain text, numbers, lists "
                "and mappings there (no '!' tags, no lists or mappings as keys)."
            ) from None
        raise error(
            f"{what} is not valid YAML: {problem} at {_where(mark)}. Fix the indentation or quoting there."
        ) from None
    except yaml.YAMLError as exc:  # e.g. bytes that are not UTF-8 text, or control characters
        raise error(f"{what} is not valid YAML ({exc}). Save it as plain UTF-8 text.".replace("\n", " ")) from None
    except (ValueError, OverflowError) as exc:  # an impossible date such as 2024-02-30, an enormous integer
        raise error(
            f"{what} holds a value YAML cannot read ({exc}). Put quotes around it if it is meant as "
            "text, or correct it."
        ) from None


def load(
    source: str | bytes | Path,
    *,
    what: str,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    error: type[WorkbenchError] = YamlInputError,
) -> Any:
    """The one document in ``source``: a :class:`~pathlib.Path` is read from disk, ``str`` and ``bytes`` are YAML.

    ``what`` names the input in messages (``"policy file policy.yaml"``); ``error`` is the exception class raised
    for every problem (a missing file still raises :class:`FileNotFoundError`). An empty document gives ``None``.
    """
    docs = _documents(source, what, max_bytes, max_depth, error, single=True)
    return docs[0] if docs else None


def load_all(
    source: str | bytes | Path,
    *,
    what: str,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    error: type[WorkbenchError] = YamlInputError,
    aliases: bool = False,
) -> list[Any]:
    """Every document in ``source`` (empty ones included as ``None``), with the same limits as :func:`load`.

    ``aliases=True`` accepts anchors and aliases (Kubernetes manifests written by ``yaml.safe_dump`` carry
    them wherever one object appears twice), as long as the expanded document stays within :data:`MAX_NODES`.
    """
    return _documents(source, what, max_bytes, max_depth, error, single=False, aliases=aliases)
