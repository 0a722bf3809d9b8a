"""``workbench``: the command line of mlops-workbench.

Each command group lives in its own module under ``mlops_workbench.cli`` and is
registered here.
"""

from __future__ import annotations

import typer

from mlops_workbench.cli import ci, doctor, drill, labs, mlflow, registry, reproduce, rollout, scaffold, serve

app = typer.Typer(
    name="workbench",
    help="Hands-on CI/CD for machine-learning artifacts: labs, pipeline, registry, serving, canary rollouts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

# setup and labs
app.command("doctor")(doctor.doctor)
app.add_typer(labs.app, name="labs")
app.command("grade")(labs.grade)
app.command("pipeline")(labs.pipeline)
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
app.add_typer(drill.app, name="drill")

if __name__ == "__main__":
    app()
