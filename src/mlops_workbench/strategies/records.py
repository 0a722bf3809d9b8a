"""The strategies' typed inputs: a value checked against its pydantic model, every bad field named with its fix."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mlops_workbench.errors import InputError
from mlops_workbench.fielderrors import describe

M = TypeVar("M", bound=BaseModel)


def checked(model: type[M], what: str, **fields: Any) -> M:
    """``model(**fields)``, or :class:`InputError` naming ``what`` and listing each bad field and what it expects."""
    try:
        return model.model_validate(fields)
    except ValidationError as err:
        lines = describe(err, model)
        raise InputError(
            f"{what}: {len(lines)} bad value(s); fix each one and call again:\n" + "\n".join(lines)
        ) from None
