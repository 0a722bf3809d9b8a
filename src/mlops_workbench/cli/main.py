"""``workbench``: the command line of mlops-workbench.

Each command group lives in its own module under ``mlops_workbench.cli`` and is
registered here. This is the one place that turns errors into exit codes:
commands raise a :class:`WorkbenchError` (or end on a bad verdict with
:class:`~mlops_workbench.errors.Failed`), its message goes to stderr and the
command exits with the error's ``exit_code`` (see :mod:`mlops_workbench.errors`
for the convention). No command module raises ``typer.Exit`` itself. Any other
exception is a bug and keeps its traceback. Background services are started
through this CLI too (``python -m mlops_workbench.cli.main serve ...``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from typer.core import TyperGroup

from mlops_workbench import output
from mlops_workbench.cli import (
    ci,
    doctor,
    drill,
    gitops,
    k8s,
    labs,
    mlflow,
    monitor,
    progress,
    registry,
    reproduce,
    rollout,
    scaffold,
    serve,
    services,
)
from mlops_workbench.errors import Failed, WorkbenchError

if TYPE_CHECKING:  # typer ships its own copy of click; TyperGroup.invoke is typed with that copy's Context
    from typer._click import Context


def report(exc: WorkbenchError) -> int:
    """Print what went wrong on stderr and return the exit code of ``exc``: an error is one red ``error:`` line; a
    bad verdict (:class:`Failed`) prints its message, if any, as it is (its command already said the rest)."""
    message = escape(str(exc))
    if isinstance(exc, Failed):
        if message:
            output.error_console().print(message)
    else:
        output.error_console().print(f"[red]error:[/red] {message}")
    return exc.exit_code


class WorkbenchGroup(TyperGroup):
    """The root command group: turns a :class:`WorkbenchError` into its message and exit code."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except WorkbenchError as exc:
            raise typer.Exit(report(exc)) from None


app = typer.Typer(
    cls=WorkbenchGroup,
    name="workbench",
    help="Hands-on CI/CD for machine-learning artifacts: labs, pipeline, registry, serving, canary rollouts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)


@app.callback()
def main(
    ctx: typer.Context,
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="also show other libraries' warnings and download bars (MLflow, DVC, ...)"
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="print only errors and the final verdict line (the exit code says the rest)"
    ),
) -> None:
    """Hands-on CI/CD for machine-learning artifacts: labs, pipeline, registry, serving, canary rollouts."""
    if verbose and quiet:
        raise typer.BadParameter("--verbose and --quiet contradict each other: pass one of them.")
    output.new_command()
    if verbose:
        output.set_verbose(True)
    ctx.with_resource(output.terse_while(quiet))
    ctx.with_resource(output.quiet())  # for the whole command; levels come back when it ends


# setup and labs
app.command("doctor")(doctor.doctor)
app.command("lab")(services.lab)
app.command("ps")(services.ps)
app.command("down")(services.down)
app.add_typer(labs.app, name="labs")
app.command("grade")(labs.grade)
app.command("pipeline")(labs.pipeline)
app.command("progress")(progress.progress)
# lab 01: CI basics
app.add_typer(ci.app, name="ci")
app.add_typer(scaffold.app, name="scaffold")
# labs 02-03: tracking, versioning, registry, serving
app.add_typer(mlflow.app, name="mlflow")
app.command("reproduce")(reproduce.reproduce)
app.add_typer(registry.app, name="registry")
app.command("serve")(serve.serve)
# lab 04: canary rollout
app.add_typer(rollout.app, name="rollout")
app.command("router")(rollout.router)
app.command("load")(rollout.load)
# lab 05: the same canary on kind (Argo Rollouts + Gateway API)
app.add_typer(k8s.app, name="k8s")
app.add_typer(k8s.cluster_app, name="cluster")
# lab 07: production monitoring, alerts and retraining
app.add_typer(monitor.app, name="monitor")
# lab 08: GitOps rollback (the deployment repository applied to the local runtime; Argo CD on kind)
app.add_typer(gitops.app, name="gitops")
# interview practice: timed incident drills
app.add_typer(drill.app, name="drill")

if __name__ == "__main__":
    app()
