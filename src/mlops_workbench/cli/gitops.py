"""``workbench gitops init|sync|rollback|status|watch``: the deployment repository applied to the local runtime."""

from __future__ import annotations

import json

import typer

from mlops_workbench import output
from mlops_workbench.errors import verdict
from mlops_workbench.workbench import Workbench

app = typer.Typer(
    help="GitOps on the local runtime: a git repository of desired state, synced like Argo CD.", no_args_is_help=True
)


@app.command("init")
def init(
    stable: str = typer.Option(..., "--stable", help="registered version to serve as stable"),
    model: str | None = typer.Option(None, "--model", help="registered model (default: params.yaml)"),
    canary: str | None = typer.Option(None, "--canary", help="a second version behind the router"),
    weight: float = typer.Option(0.0, "--weight", help="percent of traffic to --canary"),
    auto_sync: bool = typer.Option(False, "--auto-sync/--manual-sync", help="app.yaml's autoSync"),
) -> None:
    """Create the deployment repository (desired.yaml, app.yaml) with a first commit; an existing one is kept."""
    wb = Workbench.from_env()
    from mlops_workbench import paramspec
    from mlops_workbench.gitops import init_repo

    existed = (wb.layout.deployments / ".git").is_dir()
    given = {"version": canary, "weight": weight} if canary else None
    repo = init_repo(wb, stable, model or paramspec.model_name(), auto_sync=auto_sync, canary=given)
    kept = "kept the existing " if existed else ""
    output.final(f"{kept}deployment repository {repo.path} at {repo.head()[:7]}: change it with commits")


@app.command("sync")
def sync() -> None:
    """Apply the desired state at HEAD to the local runtime (start or replace servers, set the router weight)."""
    wb = Workbench.from_env()
    from mlops_workbench import gitops

    result = gitops.reconcile(wb)
    for change in result.changes:
        output.say(f"  {change}")
    output.final(f"synced {result.revision[:7]}: {len(result.changes)} change(s), {result.status}")


@app.command("rollback")
def rollback(revision: str = typer.Argument(..., help="an older commit of the deployment repository")) -> None:
    """Apply an older commit without changing git (refused while autoSync is on; leaves the app OutOfSync)."""
    wb = Workbench.from_env()
    from mlops_workbench import gitops

    result = gitops.rollback(wb, revision)
    for change in result.changes:
        output.say(f"  {change}")
    output.final(f"rolled back to {result.revision[:7]}: {result.status} (git still says HEAD: revert it to agree)")


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Synced or OutOfSync against HEAD, with the commit, the health and the differences. Exit 1 unless Synced."""
    wb = Workbench.from_env()
    from mlops_workbench import gitops

    found = gitops.status(wb)
    if as_json:
        typer.echo(json.dumps(found.model_dump(), indent=1))
    else:
        output.final(found.line())
    verdict(found.sync == "Synced")


@app.command("watch")
def watch(interval: float = typer.Option(2.0, "--interval", min=0.2, help="seconds between looks at HEAD")) -> None:
    """Reconcile every new commit (when app.yaml says autoSync: true; else report it). Stop with Ctrl-C."""
    from mlops_workbench.gitops import Watcher

    try:
        Watcher(Workbench.from_env(), say=output.say).run(interval)
    except KeyboardInterrupt:
        output.final("watch stopped")
