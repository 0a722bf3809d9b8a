"""``workbench ci validate|run|lint``: GitHub Actions workflows and Dockerfiles, checked and run offline."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape
from rich.table import Table

from mlops_workbench import output
from mlops_workbench.errors import Failed, NotFoundError, verdict

if TYPE_CHECKING:  # the checkers load when a command runs: every `workbench` process (servers too) imports this
    from mlops_workbench.ci.findings import Report

app = typer.Typer(help="Validate and run GitHub Actions workflows locally; lint Dockerfiles.", no_args_is_help=True)
console = output.console()
STYLE = {"error": "red", "warning": "yellow", "info": "cyan"}


def show(report: Report) -> None:
    """Findings as a table (or one green line when there are none)."""
    if not report.findings:
        output.final(f"[green]✔ {report.file}: no problems found[/green]")
        return
    table = Table(title=report.file, show_lines=False)
    for column in ("line", "severity", "rule", "problem", "fix"):
        table.add_column(column, overflow="fold")
    for f in report.findings:
        color = STYLE[f.severity]
        table.add_row(str(f.line or ""), f"[{color}]{f.severity}[/{color}]", f.rule, escape(f.message), escape(f.fix))
    console.print(table)
    verdict = "[green]✔ valid[/green]" if report.ok else f"[red]✘ {len(report.errors)} error(s)[/red]"
    output.final(f"{report.file}: {verdict}")


@app.command()
def validate(
    paths: list[Path] = typer.Argument(..., help="workflow files (or folders such as .github/workflows)"),
    require: str = typer.Option(
        "",
        help="what the workflow must do, comma-separated: push,install,test,train,build "
        "(missing ones become errors instead of warnings)",
    ),
    json_out: bool = typer.Option(False, "--json", help="print findings as JSON"),
) -> None:
    """Schema-validate workflows offline, check they trigger on push, install, test, train and build,
    and audit them with zizmor (offline): actions pinned by SHA, least-privilege permissions, no persisted token."""
    from mlops_workbench.ci import workflow

    wanted = [r.strip() for r in require.split(",") if r.strip()]
    files = [f for p in paths for f in (sorted([*p.glob("*.yml"), *p.glob("*.yaml")]) if p.is_dir() else [p])]
    if not files:
        raise NotFoundError(f"No workflow files in {', '.join(map(str, paths))}.")
    ok = True
    for path in files:
        report = workflow.validate(path, require=wanted)
        if json_out:
            print(report.model_dump_json(indent=2))
        else:
            show(report)
        ok = ok and report.ok
    verdict(ok)


@app.command()
def run(
    path: Path = typer.Argument(..., help="the workflow file, e.g. .github/workflows/ci.yml"),
    project: Path | None = typer.Option(
        None, help="project folder the steps run in (default: the one holding .github/)"
    ),
    timeout: float = typer.Option(600, help="seconds a step may run unless it sets timeout-minutes"),
) -> None:
    """Run the workflow's steps locally, in order, with a green/red line per step."""
    from mlops_workbench.ci import runner

    result = runner.run_workflow(path, project, timeout=timeout, console=console)
    counts = {s: sum(r.status == s for r in result.steps) for s in ("passed", "warning", "skipped", "failed")}
    summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
    output.final(("[green]✔ workflow green[/green]" if result.ok else "[red]✘ workflow red[/red]") + f" ({summary})")
    verdict(result.ok)


@app.command()
def lint(dockerfile: Path = typer.Argument(Path("Dockerfile"), help="Dockerfile or the folder holding it")) -> None:
    """Lint a Dockerfile with hadolint; exits non-zero on hadolint warnings or errors."""
    from mlops_workbench.ci import docker

    report = docker.lint(dockerfile)
    show(report)
    verdict(report.ok)


@app.command()
def build(
    context: Path = typer.Argument(Path("."), help="build context holding the Dockerfile"),
    tag: str = typer.Option("iris-model:local", help="image tag"),
) -> None:
    """docker build when an engine is reachable; otherwise say why it is skipped (exit 0)."""
    from mlops_workbench.ci import docker

    result = docker.build(context, tag)
    color = {"passed": "green", "failed": "red", "skipped": "yellow"}[result.status]
    output.final(f"[{color}]{result.status}: {result.reason}[/{color}]")
    if result.status == "failed":
        console.print(result.output[-3000:], markup=False)
        raise Failed()
