"""The learner's records (a post-mortem, an answer): parsed into their pydantic model, every bad field named."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from mlops_workbench.errors import InputError
from mlops_workbench.fielderrors import validated


def parse_record(data: Any, model: type[BaseModel], source: str, drill: str) -> BaseModel:
    """``data`` as the record ``model``, else :class:`InputError` listing each bad field, what it expects, the fix."""
    fields = ", ".join(model.model_fields)
    if not isinstance(data, dict):
        raise InputError(
            f"{source} must be a YAML mapping of the fields {fields} (one 'field: value' line each), "
            f"not {'an empty file' if data is None else type(data).__name__}. Rewrite it, or call "
            f"mlops_workbench.drills.record(lab.wb, '{drill}', ...)."
        )
    return validated(model, data, source)
