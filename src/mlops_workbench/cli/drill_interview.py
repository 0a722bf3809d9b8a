"""``workbench drill interview --count N --seed S`` (then ``status``, ``next``, ``stop``): drills in a row under one
clock, ending with a scorecard."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mlops_workbench import output
from mlops_workbench.workbench import Workbench

app = typer.Typer(
    help="N random drills in a row, one clock, a scorecard (HTML and JSON) at the end.", invoke_without_command=True
)
console = output.console()


def announce(wb: Workbench) -> None:
    """Say what the interview is on now: the next drill's title and brief, or where its scorecard went."""
    from mlops_workbench.drills import interview, session

    running = interview.current(wb)
    state = session.current(wb)
    if running is not None and state is not None and state.finished is None:
        info = session.status(wb)
        console.print(
            f"[bold]drill {running.current + 1}/{len(running.slots)}: {info['title']}[/bold] "
            f"(par {info['par_s'] // 60} min)"
        )
        console.print(info["brief"])


def say_scorecard(folder: Path) -> None:
    card = json.loads((folder / "scorecard.json").read_text())
    console.print(
        f"[bold]interview over[/bold]: score {card['score']:.1f}/100, {card['passed']}/{len(card['rows'])} "
        f"drills passed. Scorecard: {folder / 'scorecard.html'} (and scorecard.json)"
    )


@app.callback()
def interview(
    ctx: typer.Context,
    count: int = typer.Option(3, "--count", min=1, help="how many drills"),
    seed: int | None = typer.Option(
        None, "--seed", min=0, help="which drills and what they break: the same seed sets the same interview again"
    ),
) -> None:
    """Start an interview: the first drill is set up at once and the clock starts. A passing `workbench drill check`
    moves on to the next drill; `interview next` gives one up, `interview stop` ends early."""
    if ctx.invoked_subcommand is not None:
        return
    from mlops_workbench.drills import interview as iv

    wb = Workbench.from_env()
    console.print(f"setting up an interview of {count} drill(s)...")
    running, left_out = iv.start(wb, count, seed)
    for name, why in left_out.items():
        console.print(f"[yellow]left out {name}[/yellow]: it {why}")
    console.print(
        f"interview {running.id} (seed {running.seed}); `workbench drill check` grades the drill in front "
        "of you, `workbench drill hint` helps (for points)."
    )
    announce(wb)


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """The drill under way, the interview's clock, the results so far."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import interview as iv

    info = iv.status(wb)
    if as_json:
        typer.echo(json.dumps(info, indent=1, default=str))
        return
    console.print(
        f"interview {info['interview']}: drill {info['drill']}/{info['drills']}, clock "
        f"{info['clock_s'] / 60:.1f} min of a par of {info['par_s'] / 60:.0f} min"
    )
    for done in info["done"]:
        console.print(f"  {done['title']}: {done['outcome']}, {done['score']:.1f} points")


@app.command("next")
def next_drill() -> None:
    """Give up the drill under way (graded as it stands) and go on to the next one."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import interview as iv

    folder = iv.give_up(wb)
    if folder is not None:
        say_scorecard(folder)
    else:
        announce(wb)


@app.command("stop")
def stop() -> None:
    """End the interview now (the drill under way is graded as it stands) and write the scorecard."""
    wb = Workbench.from_env()
    from mlops_workbench.drills import interview as iv

    say_scorecard(iv.stop(wb))
