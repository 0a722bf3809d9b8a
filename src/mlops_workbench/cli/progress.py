"""``workbench progress``: where you stand in every lab and drill, read from your check()s, gradings and drill reports."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from mlops_workbench import output
from mlops_workbench.workbench import Workbench


def progress(
    as_json: Annotated[bool, typer.Option("--json", help="print the progress record as JSON")] = False,
    grades: Annotated[
        list[Path] | None,
        typer.Option("--grades", help="a folder `workbench grade --out` wrote to (repeatable; default: build/grades)"),
    ] = None,
) -> None:
    """Each lab's last grade, time spent against its estimate, failing checks and next step; then your drills.

    Counts your own work only; right after `make demo`, before any of yours, it shows the reference runs."""
    wb = Workbench.from_env()
    from mlops_workbench.labs.progress import build  # on use: every `workbench` process imports this module
    from mlops_workbench.labs.progress_view import print_progress

    record = build(wb, grades=grades)
    if as_json:
        typer.echo(record.model_dump_json(indent=1))
    else:
        print_progress(record, output.console())
