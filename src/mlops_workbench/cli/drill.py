"""``workbench drill list|start|status|hint|check|reset|validate``: timed incident drills graded by state."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import typer
from rich.table import Table

from mlops_workbench import output
from mlops_workbench.cli import drill_interview
from mlops_workbench.errors import InputError, verdict
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:  # the drills are imported by the commands that use them
    from mlops_workbench.drills.spec import DrillReport

app = typer.Typer(
    help="Timed broken-system drills for interview practice, graded by the state you leave behind.",
    no_args_is_help=True,
)
app.add_typer(drill_interview.app, name="interview")
console = output.console()


def _say_left_out(left_out: dict[str, str]) -> None:
    for name, why in left_out.items():
        console.print(f"[yellow]left out {name}[/yellow]: it {why}")


@app.command("list")
def list_drills(
    shuffle: bool = typer.Option(
        False, "--shuffle", help="random order, names hidden, only the drills whose tools are installed"
    ),
    seed: int | None = typer.Option(None, "--seed", help="the order's seed (with --shuffle)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Every drill with its neutral title, par and whether it wants a post-mortem."""
    from mlops_workbench.drills import catalog

    names = catalog.names(shuffle=shuffle, seed=seed)
    if shuffle:
        ok, left_out = catalog.runnable()
        names = [n for n in names if n in ok]
        if not as_json:
            _say_left_out(left_out)
    specs = [catalog.get(n).spec for n in names]
    rows: list[dict[str, Any]] = [
        {
            "name": None if shuffle else s.name,
            "handle": s.handle,
            "title": s.title(),
            "incident": s.incident,
            "minutes": s.minutes,
        }
        for s in specs
    ]
    if as_json:
        typer.echo(json.dumps(rows, indent=1))
        return
    table = Table(
        title="drills (`workbench drill start NAME`, or `--shuffle` for a random one)"
        if not shuffle
        else "drills, names hidden (`workbench drill start incident-N`)"
    )
    for col in ("start", "title", "post-mortem", "par"):
        table.add_column(col)
    for row in rows:
        table.add_row(
            row["name"] or row["handle"], row["title"], "yes" if row["incident"] else "-", f"{row['minutes']}m"
        )
    console.print(table)


@app.command("start")
def start(
    name: str | None = typer.Argument(
        None, help="drill name, or its neutral handle incident-N to keep the name hidden (see `workbench drill list`)"
    ),
    shuffle: bool = typer.Option(
        False, "--shuffle", help="a random drill whose tools are installed, its name hidden until you pass it"
    ),
    seed: int | None = typer.Option(
        None,
        "--seed",
        min=0,
        help="what to break (and, with --shuffle, which "
        "drill): the same seed breaks the same thing again; default: a new one",
    ),
) -> None:
    """Break the system (hidden setup), then start the clock."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import catalog, session, variants

    if name is None and not shuffle:
        raise InputError("name a drill (`workbench drill list`) or pass --shuffle for a random one")
    seed = variants.new_seed() if seed is None else seed
    blind = shuffle
    if name is None:
        name, left_out = catalog.pick(seed)
        _say_left_out(left_out)
    else:
        name, blind = catalog.resolve(name)
    drill = catalog.get(name)
    console.print(f"setting up {drill.spec.handle} (breaking things)...")
    state = session.start(wb, name, blind=blind, seed=seed)
    info = session.status(wb)
    console.print(
        f"[bold]{info['title']}[/bold] (par {drill.spec.minutes} min, seed {state.seed}, set up in "
        f"{state.setup_seconds:.0f}s)"
    )
    console.print(info["brief"])
    console.print(
        "The clock runs. `workbench drill status` shows the details, `workbench drill hint` helps (each hint "
        "costs points), `workbench drill check` grades."
    )


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """The running drill: title, brief, time against par, hints, services, where to write the post-mortem."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import session

    info = session.status(wb)
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    table = Table(title=info["title"])
    table.add_column("field")
    table.add_column("value")
    for key, value in info.items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("hint")
def hint() -> None:
    """The next hint, from a nudge to the fix; each costs more points than the one before."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import session

    text, number, total, cost = session.hint(wb)
    console.print(f"hint {number}/{total} ({'-' if cost else ''}{cost:g} points): {text}")


def score_table(report: DrillReport) -> Table:
    from mlops_workbench.drills.debrief import score_rows

    table = Table(title=f"{report.title or report.drill}: {'PASSED' if report.passed else 'NOT YET'}")
    for col in ("part", "points", "how"):
        table.add_column(col)
    if report.score is not None:  # session.check() always scores; only reports older than scores have none
        for part, points, how in score_rows(report.score):
            table.add_row(part, points, how)
    return table


@app.command("check")
def check(as_json: bool = typer.Option(False, "--json", help="print the JSON report instead of the debrief")) -> None:
    """Grade the state you left; writes the JSON report and prints the score and a debrief. Exit 1 when a check
    fails. A passing check stops the clock and every service the drill started."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import interview, session

    running = session.current(wb)
    report = interview.check(wb)
    if as_json:
        typer.echo(report.model_dump_json(indent=1))
    else:
        console.print(score_table(report))
        output.say(session.debrief(report))
        if running is not None and running.interview is not None and report.passed:
            if interview.current(wb) is None:
                drill_interview.say_scorecard(interview.folder(wb, running.interview))
            else:
                drill_interview.announce(wb)
    verdict(report.passed)


@app.command("reset")
def reset(
    name: str | None = typer.Argument(None, help="default: the running drill"),
    every: bool = typer.Option(False, "--all", help="every drill that left a folder or services"),
) -> None:
    """Stop the drill's services and remove its model and folder."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import session

    if name and every:
        raise InputError("name one drill or pass --all, not both")
    done = session.reset(wb, name=name, every=every)
    console.print(f"reset {', '.join(done)}" if done else "nothing to reset: no drill is running or left a folder")


@app.command("validate")
def validate(
    names: list[str] | None = typer.Argument(None, help="drills to validate (default: all)"),
    thorough: bool = typer.Option(
        False, "--thorough", help="every destructive fix on every variant, not only on the first"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Instructors: prove that every variant of every drill fails broken, passes fixed and fails torn down after the
    fix, and that every destructive fix fails."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import validate as v

    results = v.validate(wb, names, say=console.print, thorough=thorough)
    if as_json:
        typer.echo(json.dumps([r.model_dump() for r in results], indent=1))
    bad = [r.drill for r in results if not r.ok]
    output.final(
        f"[{'red' if bad else 'green'}]{len(results) - len(bad)}/{len(results)} drills valid"
        f"{': ' + ', '.join(bad) + ' NOT valid' if bad else ''}"
    )
    verdict(not bad)
