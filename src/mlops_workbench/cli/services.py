"""``workbench ps`` and ``workbench down [NAME]``: list and stop the background services of the state folder."""

from __future__ import annotations

from typing import Annotated

import typer

from mlops_workbench import procs
from mlops_workbench.errors import Failed
from mlops_workbench.workbench import Workbench


def lab(
    port: Annotated[
        int | None, typer.Option(help="port (default: 8888 + WORKBENCH_PORT_OFFSET, or the next free one)")
    ] = None,
    browser: Annotated[bool, typer.Option(help="open a web browser")] = True,
) -> None:
    """JupyterLab on your copies of the notebooks under the state folder (what `make lab` runs; the tracked
    notebooks/ are copied once and never edited; adds --allow-root as root)."""
    wb = Workbench.from_env()
    import os

    from mlops_workbench.jupyter.lab import command
    from mlops_workbench.labs.copies import prepare

    for copy in prepare(wb):
        if copy.message:
            typer.echo(copy.message)
    if port is None:  # a taken default port moves to the next free one, said in one line on stderr
        port = procs.choose_port(wb, "jupyter").port
    argv = command(start=wb.layout.notebooks, port=port, open_browser=browser)
    typer.echo(" ".join(argv))
    os.execv(argv[0], argv)


def ps() -> None:
    """List the workbench services running under the state folder (name, pid, URL)."""
    wb = Workbench.from_env()
    services = procs.running(wb)
    if not services:
        typer.echo(f"nothing running under {wb.home}")
        return
    rows = [("NAME", "PID", "URL", "LOG")] + [(s.name, str(s.pid), s.url, s.log) for s in services]
    widths = [max(len(row[i]) for row in rows) for i in range(3)]  # every column as wide as its longest value
    for row in rows:
        padded = zip(row, widths, strict=False)  # the fourth cell (the log path) is not padded
        typer.echo("  ".join(cell.ljust(width) for cell, width in padded) + "  " + row[3])


def down(
    name: Annotated[str | None, typer.Argument(help="one service (see `workbench ps`); default: all")] = None,
) -> None:
    """Stop one workbench service by name (e.g. lab03-serve, mlflow), or every one of the state folder."""
    wb = Workbench.from_env()
    home = wb.home
    if name is None:
        stopped = procs.stop_all(wb)
        typer.echo("stopped: " + ", ".join(stopped) if stopped else f"nothing was running under {home}")
        return
    if procs.stop(wb, name):
        typer.echo(f"stopped {name}")
        return
    names = [s.name for s in procs.running(wb)]
    raise Failed(
        f"No service '{name}' is running under {home}; running: {', '.join(names) or 'none'}. See `workbench ps`."
    )
