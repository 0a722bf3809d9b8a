"""``workbench reproduce RUN_ID``: rebuild a logged run from its lineage and compare its metrics."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlops_workbench import output
from mlops_workbench.errors import Failed
from mlops_workbench.workbench import Workbench

console = output.console()


def reproduce(
    run_id: str = typer.Argument(..., help="MLflow run id logged with versioning.log_model_run."),
    home_dir: Path | None = typer.Option(None, "--home", help="State folder (default: WORKBENCH_HOME or .workbench/)."),
    tolerance: float = typer.Option(1e-9, "--tolerance", help="Largest absolute metric difference that still matches."),
) -> None:
    """Restore the run's commit and DVC data in a scratch folder, retrain, and report whether metrics match.

    Exit code 0 when reproduced, 1 when not (the causes are listed), 2 when the run cannot be rebuilt.
    """
    wb = Workbench.from_env(home_dir)
    from mlops_workbench.versioning.reproduction import reproduce as run_reproduction

    with console.status(f"Reproducing run {run_id} ..."):
        report = run_reproduction(wb, run_id, tolerance=tolerance)
    table = Table(title=f"Run {run_id} @ {report.commit[:10]}")
    for column in ("metric", "original", "reproduced", "diff", ""):
        table.add_column(column)
    for m in report.metrics:
        table.add_row(
            m.name,
            f"{m.original:.6g}",
            "-" if m.reproduced is None else f"{m.reproduced:.6g}",
            "-" if m.diff is None else f"{m.diff:+.3g}",
            "[green]ok[/green]" if m.matched else "[red]differs[/red]",
        )
    console.print(table)
    for reason in report.reasons:
        console.print(f"- {reason}")
    console.print(f"scratch checkout: {report.workdir}")
    if report.matched:
        output.final("[green]Reproduced exactly.[/green]")
    else:
        output.final(f"[red]Not reproduced[/red] (causes: {', '.join(report.causes)}).")
        raise Failed()
