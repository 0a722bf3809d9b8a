"""``workbench``: the command line of mlops-workbench.

Each command group lives in its own module under ``mlops_workbench.cli`` and is
registered here.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="workbench",
    help="Hands-on CI/CD for machine-learning artifacts: labs, pipeline, registry, serving, canary rollouts.",
    no_args_is_help=True,
    pretty_exceptions_show_locals=False,
)

from mlops_workbench.cli import labs as _labs  # noqa: E402

app.add_typer(_labs.app, name="labs")
app.command("grade")(_labs.grade)
app.command("pipeline")(_labs.pipeline)

from mlops_workbench.cli import doctor as _doctor  # noqa: E402

app.command("doctor")(_doctor.doctor)

from mlops_workbench.cli import mlflow as _mlflow  # noqa: E402

app.add_typer(_mlflow.app, name="mlflow")

from mlops_workbench.cli import reproduce as _reproduce  # noqa: E402

app.command("reproduce")(_reproduce.reproduce)

from mlops_workbench.cli import serve as _serve  # noqa: E402

app.command("serve")(_serve.serve)

from mlops_workbench.cli import registry as _registry  # noqa: E402

app.add_typer(_registry.app, name="registry")

from mlops_workbench.cli import ci as _ci, scaffold as _scaffold  # noqa: E402

app.add_typer(_ci.app, name="ci")
app.add_typer(_scaffold.app, name="scaffold")

from mlops_workbench.cli import rollout as _rollout  # noqa: E402

app.add_typer(_rollout.app, name="rollout")
app.command("router")(_rollout.router)
app.command("load")(_rollout.load)

if __name__ == "__main__":
    app()
