"""Pydantic's validation errors as one line per bad field a learner can act on.

Each line says where the field is (``train.C``), what the file holds there, what it should hold (taken from the
error and the field's own description) and, for a misspelled or unknown field, which fields exist. Values are
shown shortened, so a huge value in a file never makes a huge message.
"""

from __future__ import annotations

import difflib
import types
import typing
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from mlops_workbench.errors import InputError

M = TypeVar("M", bound=BaseModel)

SHOWN = 60
"""Characters of a bad value quoted in a message."""

_EXPECTED = {
    "float_type": "a number",
    "float_parsing": "a number",
    "finite_number": "a finite number",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "text",
    "list_type": "a list, like [a, b]",
    "dict_type": "a mapping of key: value lines",
    "model_type": "a mapping of key: value lines",
    "model_attributes_type": "a mapping of key: value lines",
}
_BOUNDS = {
    "greater_than": ("gt", "greater than"),
    "greater_than_equal": ("ge", "at least"),
    "less_than": ("lt", "less than"),
    "less_than_equal": ("le", "at most"),
}


def shown(value: Any) -> str:
    """``repr(value)``, cut to :data:`SHOWN` characters. A list or mapping is quoted only when it is short and
    flat (``[1, 2]``), else described: the repr of a nested one could be megabytes long, or nested deeper than
    Python's recursion limit."""
    if isinstance(value, (list, dict)):
        items = value.values() if isinstance(value, dict) else value
        if len(value) > 10 or any(isinstance(item, (list, dict)) for item in items):
            return (
                f"a list of {len(value)} item(s)"
                if isinstance(value, list)
                else f"an object with {len(value)} field(s)"
            )
    text = repr(value)
    return text if len(text) <= SHOWN else text[:SHOWN] + "..."


def _submodel(annotation: Any) -> type[BaseModel] | None:
    """The model inside ``annotation`` (``Train``, ``Train | None``, ``list[Train]``), if there is one."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType, list, tuple):
        return next((m for arg in typing.get_args(annotation) if (m := _submodel(arg)) is not None), None)
    return None


def field_names(model: type[BaseModel]) -> list[str]:
    """The names a file uses for ``model``'s fields (their aliases where the model has them, e.g. ``setWeight``)."""
    return [field.alias or name for name, field in model.model_fields.items()]


def _field(model: type[BaseModel], part: str) -> Any:
    return model.model_fields.get(part) or next((f for f in model.model_fields.values() if f.alias == part), None)


def model_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model that holds the field at ``loc`` (list indexes are stepped over; names or aliases)."""
    for part in loc:
        if model is None:
            return None
        if isinstance(part, str):
            field = _field(model, part)
            model = _submodel(field.annotation) if field is not None else None
    return model


def suggestion(name: Any, model: type[BaseModel] | None) -> str:
    """`` Did you mean 'setWeight'?`` for a misspelt field of ``model``, else an empty string."""
    if model is None:
        return ""
    close = difflib.get_close_matches(str(name), field_names(model), n=1, cutoff=0.6)
    return f" Did you mean '{close[0]}'?" if close else ""


def _expected(error: ErrorDetails) -> str | None:
    """What the field should hold, in words, when pydantic's error says so; None for other errors."""
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "literal_error":
        return f"one of {ctx.get('expected', '')}"
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"a number {words} {ctx.get(key)}"
    return _EXPECTED.get(kind)


def _quoted_number(value: Any) -> bool:
    try:
        return isinstance(value, str) and bool(value.strip()) and float(value) == float(value)
    except ValueError:
        return False


def describe(err: ValidationError, model: type[BaseModel] | None = None, prefix: str = "") -> list[str]:
    """One ``  - where: ...`` line per error of ``err`` (raised by ``model``); ``prefix`` is put before each path."""
    lines: list[str] = []
    for error in err.errors():
        loc = tuple(p for p in error["loc"] if not str(p).startswith("function-"))
        where = prefix + ".".join(map(str, loc)) if loc else prefix.rstrip(".") or "(top level)"
        owner = model_at(model, loc[:-1])
        field = _field(owner, loc[-1]) if owner is not None and loc and isinstance(loc[-1], str) else None
        about = f" About {loc[-1]}: {field.description}." if field is not None and field.description else ""
        value = shown(error.get("input"))
        if error["type"] == "extra_forbidden":
            known = f" Known fields here: {', '.join(field_names(owner))}." if owner is not None else ""
            hint = suggestion(loc[-1], owner) if loc else ""
            lines.append(
                f"  - {where}: no such field (it holds {value}); remove it or correct its spelling.{hint}{known}"
            )
        elif error["type"] == "missing":
            lines.append(f"  - {where}: missing; add it.{about}")
        elif (expected := _expected(error)) is not None:
            unquote = " without quotes (quoted, it is text)" if _quoted_number(error.get("input")) else ""
            lines.append(f"  - {where}: {value} is not {expected}; write {expected} there{unquote}.{about}")
        else:
            lines.append(f"  - {where}: {error['msg'].removeprefix('Value error, ')} (it holds {value}).{about}")
    return lines


def validated(model: type[M], data: Any, source: str, fix: str = "fix each one, then check again") -> M:
    """``data`` as ``model``, else :class:`InputError`: ``<source> has N bad field(s); <fix>:`` and one line per
    bad field (:func:`describe`)."""
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = describe(err, model)
        raise InputError(f"{source} has {len(lines)} bad field(s); {fix}:\n" + "\n".join(lines)) from None
