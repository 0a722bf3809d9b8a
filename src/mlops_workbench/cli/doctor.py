"""``workbench doctor``: check this machine for the labs and say how to fix what is missing."""

from __future__ import annotations

import json

import typer
from rich.table import Table

from mlops_workbench import output
from mlops_workbench.errors import verdict
from mlops_workbench.workbench import Workbench

STYLE = {"OK": "green", "WARN": "yellow", "FAIL": "bold red"}


def doctor(
    as_json: bool = typer.Option(False, "--json", help="Print the results as a JSON list instead of a table."),
) -> None:
    """Check Python, the python3 kernel, pinned packages, git/dvc, ports, the state folder and optional tools."""
    wb = Workbench.from_env()
    from mlops_workbench import doctor as checks  # on use: every `workbench` process imports this module

    results = checks.run_all(wb)
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in results], indent=2))
    else:
        table = Table(title="workbench doctor", show_lines=False)
        for column in ("check", "status", "found", "fix"):
            table.add_column(column, overflow="fold")
        for r in results:
            table.add_row(r.name, f"[{STYLE[r.status]}]{r.status}[/]", r.detail, r.fix if r.status != "OK" else "")
        console = output.console()
        console.print(table)
        warns = sum(r.status == "WARN" for r in results)
        summary = "FAIL: fix the red lines above" if checks.failed(results) else f"ready ({warns} warnings)"
        output.final(f"[{'bold red' if checks.failed(results) else 'green'}]{summary}[/]")
    verdict(not checks.failed(results))
