"""``workbench registry``: list versions, run the gate, approve, promote, roll back, read the audit log and a
version's lineage chain."""

from __future__ import annotations

import typer
from rich.table import Table

from mlops_workbench import output
from mlops_workbench.alias import Alias
from mlops_workbench.errors import verdict
from mlops_workbench.workbench import Workbench

app = typer.Typer(
    help="Model registry: versions, quality gate, promotion by alias, rollback, audit log.", no_args_is_help=True
)
console = output.console()


NameOption = typer.Option(None, "--name", help="registered model name (default: params.yaml registry.model_name)")


def _name(name: str | None) -> str:
    from mlops_workbench import paramspec

    return name or paramspec.model_name()


@app.command("list")
def list_versions(name: str | None = NameOption) -> None:
    """Versions with aliases, metrics, lineage and their last approval."""
    wb = Workbench.from_env()
    name = _name(name)
    from mlops_workbench.registry.panel import version_rows

    table = Table(title=f"registered model '{name}'", show_lines=True)
    for col in ("version", "aliases", "run", "metrics", "latency", "cost / 1k", "lineage", "last approval", "created"):
        table.add_column(col, overflow="fold")  # long values wrap in their cell: nothing is cut off
    for r in version_rows(wb, name):
        table.add_row(
            r.version + (" (rolled back)" if r.rolled_back else ""),
            ", ".join(r.aliases),
            r.run_id or "",
            "\n".join(f"{k}={v}" for k, v in sorted(r.metrics.items())),
            r.latency(),
            r.cost(),
            "\n".join(f"{k}={v}" for k, v in r.lineage.items()),
            f"{r.approved_for} by {r.approved_by}: {r.reason}" if r.approved_by else "",
            r.created,
        )
    console.print(table)


@app.command()
def gate(version: str, name: str | None = NameOption) -> None:
    """Run the quality gate for VERSION against production (rules: params.yaml `registry`)."""
    wb = Workbench.from_env()
    name = _name(name)
    from mlops_workbench import registry

    result = registry.quality_gate(wb, name, version)
    output.final(("[green]" if result.passed else "[red]") + result.summary() + "[/]")
    verdict(result.passed)


IDENTITY = "default: git config user.email, else your login name"


@app.command()
def approve(
    version: str,
    reason: str = typer.Option(..., "--reason", help="what you checked before approving"),
    who: str | None = typer.Option(None, "--as", help=f"who approves ({IDENTITY})"),
    alias: str = typer.Option(Alias.PRODUCTION.value, "--alias", help="the alias the approval is for"),
    name: str | None = NameOption,
) -> None:
    """Approve VERSION ahead of its promotion (second-person approvals: the promotion is asked for by someone else,
    params.yaml registry.second_approval); recorded as tags and in the audit log."""
    wb = Workbench.from_env()
    name = _name(name)
    from mlops_workbench import registry

    review = registry.approve(wb, name, version, approver=who, reason=reason, alias=alias)
    console.print(f"[green]{review.approver} approved {name} v{version} for '{alias}'.[/]")


@app.command()
def promote(
    version: str,
    alias: str = typer.Option(Alias.PRODUCTION.value, "--alias", help="staging, canary or production"),
    reason: str = typer.Option(..., "--reason", help="why this version should serve"),
    who: str | None = typer.Option(
        None,
        "--as",
        "--approver",
        help=f"who promotes ({IDENTITY}); with registry.second_approval the approval must be someone else's",
    ),
    name: str | None = NameOption,
) -> None:
    """Point ALIAS at VERSION (production runs the gate first); recorded as tags and in the audit log."""
    wb = Workbench.from_env()
    name = _name(name)
    from mlops_workbench import registry

    mv = registry.promote(wb, name, version, alias, approver=who, reason=reason, requester=who)
    console.print(f"[green]{name} v{mv.version} is now '{alias}'.[/]")


@app.command()
def rollback(
    reason: str = typer.Option("rollback", "--reason"),
    who: str | None = typer.Option(None, "--as", "--approver", help=f"who rolls back ({IDENTITY})"),
    name: str | None = NameOption,
) -> None:
    """Point production back at the `previous` version."""
    wb = Workbench.from_env()
    name = _name(name)
    from mlops_workbench import registry

    mv = registry.rollback(wb, name, approver=who, reason=reason)
    console.print(f"[green]{name} production rolled back to v{mv.version}.[/]")


@app.command()
def audit(last: int = typer.Option(20, "--last", help="entries to show")) -> None:
    """The last entries of the registry audit log (<home>/audit/registry.jsonl)."""
    wb = Workbench.from_env()
    from mlops_workbench.registry import audit as audit_log

    table = Table(title=str(audit_log.log_path(wb)))
    for col in ("time", "action", "model", "version", "alias", "outcome", "approver", "requester", "reason"):
        table.add_column(col)
    for e in audit_log.read(wb)[-last:]:
        values = (e.ts, e.action, e.model, e.version, e.alias, e.outcome, e.approver, e.requester, e.reason)
        table.add_row(*(str(value or "") for value in values))
    console.print(table)


@app.command()
def watch() -> None:
    """Record alias changes made outside the workbench (a bare MlflowClient, the MLflow UI) in the audit log: starts
    the monitor service, whose receiver checks MLflow's HMAC signature, and registers the tracking server's
    webhook for alias events (idempotent)."""
    wb = Workbench.from_env()
    from mlops_workbench.monitoring import registry_watch

    url = registry_watch.watch(wb)
    console.print(f"[green]MLflow delivers alias changes to {url}; out-of-band ones go to the audit log.[/]")


@app.command()
def lineage(version: str, name: str | None = NameOption) -> None:
    """The lineage chain of VERSION: cause (alert or data commit), data commit, run, and every audit step
    (retrain, gate, shadow, canary, promotions)."""
    wb = Workbench.from_env()
    from mlops_workbench.monitoring.chain import format_chain, lineage_chain

    for line in format_chain(lineage_chain(wb, version, _name(name))):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
