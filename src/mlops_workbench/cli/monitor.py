"""``workbench monitor up | down | status``: lab 07's drift metrics, alert rules, Alertmanager and webhook."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from mlops_workbench import output, settings
from mlops_workbench.errors import InputError
from mlops_workbench.workbench import Workbench

app = typer.Typer(
    help="Production monitoring: drift metrics, alert rules through Alertmanager (or the fallback), the webhook.",
    no_args_is_help=True,
)
console = output.console()

HomeOption = typer.Option(None, "--home", help="State folder (default: WORKBENCH_HOME or .workbench/).")
ScorerOption = typer.Option(
    None, "--scorer", help="drift scorer, package.module:function (default: none, no drift gauges)"
)
OnFiringOption = typer.Option(
    None, "--on-firing", help="action per newly firing alert group, package.module:function (default: record only)"
)


def _model_targets(values: list[str]) -> dict[str, str] | None:
    if not values:
        return None
    bad = [v for v in values if "=" not in v or ":" not in v.partition("=")[2]]
    if bad:
        raise InputError(f"--model {', '.join(bad)}: write ROLE=HOST:PORT, e.g. --model stable=127.0.0.1:8000.")
    return dict(v.split("=", 1) for v in values)


@app.command()
def up(
    rules: Path | None = typer.Option(None, "--rules", help="alert rule file (default: the reference rules)"),
    scorer: str | None = ScorerOption,
    on_firing: str | None = OnFiringOption,
    router: str | None = typer.Option(None, "--router", help="router HOST:PORT to scrape (default: the rollout's)"),
    model: list[str] = typer.Option(
        [], "--model", help="model server ROLE=HOST:PORT to scrape, repeatable (default: the rollout's)"
    ),
    port: int | None = typer.Option(None, "--port", help="monitor port (default: 9095 + WORKBENCH_PORT_OFFSET)"),
    home_dir: Path | None = HomeOption,
) -> None:
    """Start the monitor service and Alertmanager routing to its webhook (or the fallback, saying why)."""
    wb = Workbench.from_env(home_dir)
    from mlops_workbench.monitoring import rules as rule_files
    from mlops_workbench.monitoring import stack

    report = stack.up(
        wb,
        rules_path=rules or rule_files.REFERENCE,
        scorer=scorer,
        on_firing=on_firing,
        router=router,
        models=_model_targets(model),
        port=port,
    )
    _show(report)


@app.command()
def down(home_dir: Path | None = HomeOption) -> None:
    """Stop the monitor and Alertmanager (and Prometheus, unless a rollout still uses it)."""
    wb = Workbench.from_env(home_dir)
    from mlops_workbench.monitoring import stack

    stopped = stack.down(wb)
    console.print("stopped: " + ", ".join(stopped) if stopped else "nothing of the monitoring was running")


@app.command()
def status(home_dir: Path | None = HomeOption) -> None:
    """Show how alerts are routed now and how many notifications the webhook has accepted."""
    wb = Workbench.from_env(home_dir)
    from mlops_workbench.monitoring import stack

    _show(stack.status(wb))


def _show(report: object) -> None:
    table = Table(show_header=False, title="monitoring")
    for key in ("alerting", "reason", "monitor", "alertmanager", "prometheus", "received"):
        value = getattr(report, key)
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


@app.command(hidden=True)
def serve(
    port: int = typer.Option(settings.DefaultPort("monitor"), "--port"),
    scorer: str | None = ScorerOption,
    on_firing: str | None = OnFiringOption,
    fallback_rules: Path | None = typer.Option(None, "--fallback-rules", help="evaluate these rules in-process"),
    scrape: list[str] = typer.Option([], "--scrape", help="base URL whose /metrics the fallback reads"),
    eval_interval: float = typer.Option(1.0, "--eval-interval"),
    group_wait: float = typer.Option(1.0, "--group-wait"),
    group_interval: float = typer.Option(2.0, "--group-interval"),
    repeat_interval: float = typer.Option(60.0, "--repeat-interval"),
) -> None:
    """The monitor service process (`workbench monitor up` starts it)."""
    wb = Workbench.from_env()
    import uvicorn

    from mlops_workbench import procs
    from mlops_workbench.monitoring import exporter, service
    from mlops_workbench.monitoring.alertmanager import Timing

    procs.ensure_free(wb, "monitor", port)
    output.log_to_stderr()
    timing = Timing(group_wait, group_interval, repeat_interval)
    fallback = service.Fallback(fallback_rules, scrape, eval_interval, timing) if fallback_rules else None
    app_ = service.create_app(
        wb,
        exporter.resolve(scorer, "--scorer") if scorer else exporter.no_scores,  # type: ignore[arg-type]
        exporter.resolve(on_firing, "--on-firing") if on_firing else None,
        fallback=fallback,
        self_url=f"http://127.0.0.1:{port}",
    )
    typer.echo(f"monitor on http://127.0.0.1:{port} ({'fallback alerting' if fallback else 'Alertmanager'})")
    uvicorn.run(app_, host="127.0.0.1", port=port, log_level="warning", access_log=False)
