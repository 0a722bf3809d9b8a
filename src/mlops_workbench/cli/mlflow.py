"""``workbench mlflow up | down | status | ui``: the embedded MLflow tracking server."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlops_workbench import output, tracking
from mlops_workbench.workbench import Workbench

app = typer.Typer(help="Run the embedded MLflow tracking server (sqlite store, local artifacts).", no_args_is_help=True)
console = output.console()

HomeOption = typer.Option(None, "--home", help="State folder (default: WORKBENCH_HOME or .workbench/).")


@app.command()
def up(
    port: int | None = typer.Option(
        None, "--port", "-p", help="Port on 127.0.0.1 (default: 5000 + WORKBENCH_PORT_OFFSET, or the next free one)."
    ),
    home_dir: Path | None = HomeOption,
) -> None:
    """Start the tracking server, or report the one already running."""
    wb = Workbench.from_env(home_dir)
    url = tracking.up(wb, port=port)
    console.print(f"MLflow tracking server: [bold]{url}[/bold]")
    console.print(
        "workbench commands find it by themselves; for MLflow's own tools and your code: "
        f"export MLFLOW_TRACKING_URI={url}"
    )


@app.command()
def down(home_dir: Path | None = HomeOption) -> None:
    """Stop the tracking server."""
    wb = Workbench.from_env(home_dir)
    if tracking.down(wb):
        console.print("MLflow tracking server stopped.")
    else:
        console.print("MLflow tracking server was not running.")


@app.command()
def status(home_dir: Path | None = HomeOption) -> None:
    """Show whether the server runs, where it keeps its data and what it holds."""
    wb = Workbench.from_env(home_dir)
    report = tracking.status(wb)
    table = Table(show_header=False, title="MLflow tracking server")
    table.add_row("running", "[green]yes[/green]" if report.running else "[red]no[/red]")
    for key in ("url", "pid", "backend_store", "artifacts", "log", "experiments", "registered_models"):
        value = getattr(report, key)
        table.add_row(key.replace("_", " "), "-" if value is None else str(value))
    console.print(table)
    if not report.running:
        console.print("Start it with: workbench mlflow up")


@app.command()
def ui(
    home_dir: Path | None = HomeOption,
    browser: bool = typer.Option(True, "--browser/--no-browser", help="Open a browser when a display exists."),
) -> None:
    """Print the MLflow UI address (and the Jupyter proxy path on Binder/JupyterHub)."""
    wb = Workbench.from_env(home_dir)
    links = tracking.ui(wb, open_browser=browser)
    console.print(f"MLflow UI: [bold]{links.url}[/bold]")
    if links.proxy_path:
        console.print(f"Through the Jupyter server (Binder/JupyterHub): [bold]{links.proxy_path}[/bold]")
    if links.opened:
        console.print("Opened in your browser.")
