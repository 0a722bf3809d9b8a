"""``workbench drill list|start|status|hint|check|reset|validate``: timed incident drills graded by state."""

from __future__ import annotations

import json
import random
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from mlops_workbench.errors import InputError

app = typer.Typer(help="Timed broken-system drills for interview practice, graded by the state you leave behind.",
                  no_args_is_help=True)
console = Console()


@app.command("list")
def list_drills(shuffle: bool = typer.Option(False, "--shuffle", help="random order, for practice"),
                as_json: bool = typer.Option(False, "--json")) -> None:
    """Every drill with its category and time budget."""
    from mlops_workbench.drills import catalog

    drills = [catalog.get(n).spec for n in catalog.names(shuffle=shuffle)]
    if as_json:
        typer.echo(json.dumps([d.model_dump(include={"name", "title", "category", "incident", "minutes"})
                               for d in drills], indent=1))
        return
    table = Table(title="drills (`workbench drill start NAME`)")
    for col in ("name", "title", "root cause", "post-mortem", "budget"):
        table.add_column(col)
    for d in drills:
        table.add_row(d.name, d.title, "?" if shuffle else d.category, "yes" if d.incident else "-", f"{d.minutes}m")
    console.print(table)


@app.command("start")
def start(name: Optional[str] = typer.Argument(None, help="drill name (see `workbench drill list`)"),
          shuffle: bool = typer.Option(False, "--shuffle", help="start a random drill without showing its name first")) -> None:
    """Break the system (hidden setup), then start the clock."""
    from mlops_workbench.drills import catalog, session

    if name is None and not shuffle:
        raise InputError("name a drill (`workbench drill list`) or pass --shuffle for a random one")
    if name is None:
        name = random.choice(catalog.names())
    console.print(f"setting up '{name}' (breaking things)...")
    state = session.start(name)
    drill = catalog.get(name)
    console.print(f"[bold]{drill.spec.title}[/bold] ({drill.spec.minutes} min budget, set up in {state.setup_seconds:.0f}s)")
    console.print(drill.spec.brief)
    console.print("The clock runs. `workbench drill status` shows the details, `workbench drill check` grades.")


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """The running drill: brief, time used, services, where to write the post-mortem."""
    from mlops_workbench.drills import session

    info = session.status()
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    table = Table(title=f"drill {info['drill']}")
    table.add_column("field")
    table.add_column("value")
    for key, value in info.items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("hint")
def hint() -> None:
    """The next hint (the report counts them)."""
    from mlops_workbench.drills import session

    text, number, total = session.hint()
    console.print(f"hint {number}/{total}: {text}")


@app.command("check")
def check(as_json: bool = typer.Option(False, "--json", help="print the JSON report instead of the debrief")) -> None:
    """Grade the state you left; writes the JSON report and prints a debrief. Exit 1 when a check fails."""
    from mlops_workbench.drills import session

    report = session.check()
    typer.echo(report.model_dump_json(indent=1) if as_json else session.debrief(report))
    raise typer.Exit(0 if report.passed else 1)


@app.command("reset")
def reset(name: Optional[str] = typer.Argument(None, help="default: the running drill")) -> None:
    """Stop the drill's services and remove its model and folder."""
    from mlops_workbench.drills import session

    done = session.reset(name=name)
    console.print(f"reset {done}" if done else "no drill is running")


@app.command("validate")
def validate(names: Optional[list[str]] = typer.Argument(None, help="drills to validate (default: all)"),
             as_json: bool = typer.Option(False, "--json")) -> None:
    """Instructors: prove every drill fails broken, passes fixed, and fails every destructive fix."""
    from mlops_workbench.drills import validate as v

    results = v.validate(names, say=console.print)
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in results], indent=1))
    bad = [r.drill for r in results if not r.ok]
    console.print(f"[{'red' if bad else 'green'}]{len(results) - len(bad)}/{len(results)} drills valid"
                  f"{': ' + ', '.join(bad) + ' NOT valid' if bad else ''}")
    raise typer.Exit(1 if bad else 0)
