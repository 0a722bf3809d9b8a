"""``workbench monitor up | down | status``: lab 07's drift metrics, alert rules, Alertmanager and webhook."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from pydantic import BaseModel
from rich.table import Table

from mlops_workbench import output, settings
from mlops_workbench.errors import InputError
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlops_workbench.monitoring.autoretrain import RetrainWiring
    from mlops_workbench.monitoring.watch import Watch

M = TypeVar("M", bound=BaseModel)

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
WatchOption = typer.Option(
    None, "--watch", help="score the prediction log of this registered model (drift of its latest window)"
)
WatchVersionOption = typer.Option(None, "--watch-version", help="the version to watch (default: production's)")
WindowLastOption = typer.Option(None, "--window-last", help="the window: the last N predictions (default 300)")
WindowSecondsOption = typer.Option(None, "--window-seconds", help="the window: the predictions of the last T seconds")
RetrainWorkspaceOption = typer.Option(
    None, "--retrain-workspace", help="retrain this git + DVC workspace on each newly firing alert group"
)
RetrainModelOption = typer.Option(None, "--retrain-model", help="registered model the retrain joins")
RetrainEvaluationOption = typer.Option(
    None, "--retrain-evaluation", help="labelled CSV (Iris features and species) the gate judges the candidate on"
)


def _watch(model: str | None, version: str | None, last: int | None, seconds: float | None) -> Watch | None:
    from mlops_workbench.monitoring.watch import Watch

    if model is None:
        if version is not None or last is not None or seconds is not None:
            raise InputError("--watch-version and --window-* need --watch MODEL: name the model to score.")
        return None
    return _valid(Watch, "--watch", model=model, version=version, last=last, seconds=seconds)


def _retrain(workspace: Path | None, model: str | None, evaluation: Path | None) -> RetrainWiring | None:
    from mlops_workbench.monitoring.autoretrain import RetrainWiring

    given = {"--retrain-workspace": workspace, "--retrain-model": model, "--retrain-evaluation": evaluation}
    if all(v is None for v in given.values()):
        return None
    missing = [name for name, value in given.items() if value is None]
    if missing:
        raise InputError(f"The retrain wiring also needs {', '.join(missing)}: give all three --retrain-* options.")
    return _valid(RetrainWiring, "--retrain-*", workspace=workspace, model=model, evaluation=evaluation)


def _valid(kind: type[M], what: str, **fields: object) -> M:
    from pydantic import ValidationError

    try:
        return kind.model_validate(fields)
    except ValidationError as err:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in err.errors())
        raise InputError(f"{what}: {problems}.") from None


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
    watch: str | None = WatchOption,
    watch_version: str | None = WatchVersionOption,
    window_last: int | None = WindowLastOption,
    window_seconds: float | None = WindowSecondsOption,
    retrain_workspace: Path | None = RetrainWorkspaceOption,
    retrain_model: str | None = RetrainModelOption,
    retrain_evaluation: Path | None = RetrainEvaluationOption,
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
        watching=_watch(watch, watch_version, window_last, window_seconds),
        retrain=_retrain(retrain_workspace, retrain_model, retrain_evaluation),
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


@app.command()
def prune(
    keep_days: float = typer.Option(..., "--keep-days", min=0, help="keep the predictions of this many last days"),
    home_dir: Path | None = HomeOption,
) -> None:
    """Delete older predictions (and their labels) from the state folder's prediction log."""
    import time

    from mlops_workbench.monitoring.predictions import PredictionLog, moment

    wb = Workbench.from_env(home_dir)
    cutoff = moment(time.time() - keep_days * 86400)
    store = PredictionLog(wb)
    if not store.path.is_file():
        console.print(f"no prediction log at {store.path}: nothing to prune")
        return
    gone = store.prune(cutoff)
    store.close()
    console.print(f"removed {gone} predictions logged before {cutoff:%Y-%m-%d %H:%M} UTC from {store.path}")


def _show(report: object) -> None:
    table = Table(show_header=False, title="monitoring")
    for key in ("alerting", "reason", "scorer", "monitor", "alertmanager", "prometheus", "received"):
        value = getattr(report, key)
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


@app.command(hidden=True)
def serve(
    port: int = typer.Option(settings.DefaultPort("monitor"), "--port"),
    scorer: str | None = ScorerOption,
    on_firing: str | None = OnFiringOption,
    watch: str | None = WatchOption,
    watch_version: str | None = WatchVersionOption,
    window_last: int | None = WindowLastOption,
    window_seconds: float | None = WindowSecondsOption,
    retrain_workspace: Path | None = RetrainWorkspaceOption,
    retrain_model: str | None = RetrainModelOption,
    retrain_evaluation: Path | None = RetrainEvaluationOption,
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
    from mlops_workbench.monitoring import autoretrain, exporter, service
    from mlops_workbench.monitoring.alertmanager import Timing
    from mlops_workbench.monitoring.watch import LogScorer

    procs.ensure_free(wb, "monitor", port)
    output.log_to_stderr()
    timing = Timing(group_wait, group_interval, repeat_interval)
    fallback = service.Fallback(fallback_rules, scrape, eval_interval, timing) if fallback_rules else None
    watching = _watch(watch, watch_version, window_last, window_seconds)
    wiring = _retrain(retrain_workspace, retrain_model, retrain_evaluation)
    drift_scorer: exporter.Scorer = exporter.no_scores
    if watching is not None:
        drift_scorer = LogScorer(wb, watching)
    elif scorer:
        drift_scorer = exporter.resolve(scorer, "--scorer")  # type: ignore[assignment]
    action = autoretrain.action(wb, wiring) if wiring is not None else None
    app_ = service.create_app(
        wb,
        drift_scorer,
        action or (exporter.resolve(on_firing, "--on-firing") if on_firing else None),
        fallback=fallback,
        self_url=f"http://127.0.0.1:{port}",
    )
    typer.echo(f"monitor on http://127.0.0.1:{port} ({'fallback alerting' if fallback else 'Alertmanager'})")
    uvicorn.run(app_, host="127.0.0.1", port=port, log_level="warning", access_log=False)
