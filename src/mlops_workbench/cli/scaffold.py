"""``workbench scaffold ci-project DIR``: write the Iris CI project used by lab 01."""

from __future__ import annotations

from pathlib import Path

import typer

from mlops_workbench import output
from mlops_workbench.ci import scaffold as scaffolds

app = typer.Typer(help="Write starter projects.", no_args_is_help=True)
console = output.console()


@app.command("ci-project")
def ci_project(
    dest: Path = typer.Argument(..., help="folder to create"),
    learner: bool = typer.Option(False, "--learner", help="omit the learner-written parts (tests and workflow steps)"),
    force: bool = typer.Option(False, "--force", help="overwrite files in a non-empty folder"),
) -> None:
    """An Iris model project: model code, tests, requirements.txt, Dockerfile, GitHub Actions workflow."""
    written = scaffolds.scaffold_ci_project(dest, learner=learner, force=force)
    console.print(f"[green]✔ wrote {len(written)} files to {dest}[/green]")
    if learner:
        console.print(f"Still to write: {', '.join(scaffolds.LEARNER_FILES)} and the steps of {scaffolds.WORKFLOW}.")
    console.print(
        f"Next: cd {dest} && workbench ci validate {scaffolds.WORKFLOW} && workbench ci run {scaffolds.WORKFLOW}"
    )
