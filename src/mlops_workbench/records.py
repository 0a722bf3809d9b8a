"""Shared plumbing of the typed log records (the registry audit log and the rollout event log).

Each log has its own module that owns its record model; this one only holds what both need:
a strict model base, the durable append of one line, and a one-line description of why a line does not fit
its model.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, ValidationError

from mlops_workbench import fielderrors

SCHEMA_VERSION = 1
"""The ``v`` written on every new line; lines written before records were versioned have none and read as 1."""


class Record(BaseModel):
    """A log line: unknown keys are refused, so a typo never slips into an append-only file."""

    model_config = ConfigDict(extra="forbid")

    ALWAYS: ClassVar[frozenset[str]] = frozenset({"v"})
    """Fields every line holds, even when they took their default."""

    v: int = SCHEMA_VERSION

    def line(self) -> dict[str, Any]:
        """The JSON object written for this record: the :attr:`ALWAYS` fields, then the fields it was given."""
        return {
            **self.model_dump(mode="json", include=set(self.ALWAYS)),
            **self.model_dump(mode="json", exclude_unset=True),
        }


def problems(err: ValidationError, model: type[BaseModel]) -> str:
    """Pydantic's field errors as one readable line (``decision: missing; add it; weight: ...``)."""
    return "; ".join(line.strip().removeprefix("- ").rstrip(".") for line in fielderrors.describe(err, model))


def append_line(path: Path, record: Record) -> None:
    """Write ``record`` as one JSON line at the end of ``path`` and flush it to disk before returning. The caller
    holds whatever lock keeps writers from interleaving (a file lock across processes, a thread lock within one)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(record.line()) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
