"""The learner's check log: one JSON line per ``start()`` and ``check()`` in a live notebook.

:mod:`mlops_workbench.labs.session` appends to it and :mod:`mlops_workbench.labs.progress` reads it: it is how the
progress page knows where a learner stands before any grading, and how long they have worked on a lab. It is a
record of feedback, never a grade: the kernel writes it, so the grade still comes from the out-of-process grader.
Under the grader the notebook runs with the grader's own state folder, so graded runs never write to the learner's log.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError

from mlops_workbench.labs.report import CheckResult
from mlops_workbench.workbench import Workbench


class CheckEvent(BaseModel):
    """One line of the log: the lab was started, or public checks ran with these results."""

    model_config = ConfigDict(extra="forbid")
    at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC).replace(microsecond=0))
    lab: str
    kind: Literal["start", "check"]
    results: list[CheckResult] = []


def log_path(wb: Workbench, lab: str) -> Path:
    """``<home>/checks/<lab>.jsonl`` (:meth:`settings.StateLayout.check_log`)."""
    return wb.layout.check_log(lab)


def append(wb: Workbench, lab: str, kind: Literal["start", "check"], results: Sequence[CheckResult] = ()) -> None:
    """Add one event. Feedback must never fail because of its log, so a folder that cannot be written is skipped."""
    event = CheckEvent(lab=lab, kind=kind, results=[CheckResult(**r.model_dump()) for r in results])
    path = log_path(wb, lab)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:  # one write() per line in append mode: lines from two kernels at once never mix
            os.write(fd, (event.model_dump_json() + "\n").encode("utf-8"))
        finally:
            os.close(fd)
    except OSError:
        pass


def read(wb: Workbench, lab: str) -> tuple[list[CheckEvent], list[str]]:
    """The lab's events in the order written, and one problem per line that is not an event (it is skipped)."""
    path = log_path(wb, lab)
    if not path.is_file():
        return [], []
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as exc:
        return [], [f"{path} cannot be read ({exc.strerror}): give yourself read access to it, or delete it."]
    events, problems = [], []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            events.append(CheckEvent.model_validate_json(line))
        except ValidationError as exc:
            problems.append(
                f"{path}, line {number} is not a check record ({exc.errors()[0]['msg']}): it was skipped; "
                "delete that line to silence this."
            )
    return events, problems
