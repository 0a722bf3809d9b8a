"""``workbench serve``: run the model server (uvicorn + FastAPI) for one model URI."""

from __future__ import annotations

import typer

from mlops_workbench import output
from mlops_workbench.serving import paths
from mlops_workbench.serving.faults import Faults
from mlops_workbench.settings import DefaultPort
from mlops_workbench.workbench import Workbench


def serve(
    model_uri: str | None = typer.Option(
        None,
        "--model-uri",
        help="models:/name@alias, models:/name/N, runs:/... "
        "or a path (default: models:/<registry.model_name>@production)",
    ),
    port: int = typer.Option(DefaultPort("serve"), "--port", help="port on 127.0.0.1 (or --host)"),
    host: str = typer.Option("127.0.0.1", "--host"),
    name: str | None = typer.Option(
        None,
        "--name",
        help="model name shown by /version for unregistered URIs (default: params.yaml registry.model_name)",
    ),
    watch_interval: float = typer.Option(
        0.0, "--watch-interval", help=f"seconds between alias checks (0: only {paths.RELOAD})"
    ),
    fault_error_rate: float = typer.Option(
        0.0, "--fault-error-rate", help="fraction of prediction requests answered 500"
    ),
    fault_latency_ms: float = typer.Option(0.0, "--fault-latency-ms", help="milliseconds added to each prediction"),
    fault_crash_after: int = typer.Option(None, "--fault-crash-after", help="exit after this many prediction requests"),
    fault_seed: int = typer.Option(0, "--fault-seed", help="seed of the fault RNG"),
    allow_faults: bool = typer.Option(False, "--allow-faults", help="accept POST /admin/faults (labs and drills)"),
) -> None:
    """Serve a model: /predict, /invocations (MLflow protocol), /health, /version, /metrics, /admin/* (bearer
    token of the state folder: <state folder>/admin-token). Every prediction goes to the state folder's prediction
    log (<state folder>/monitoring/predictions.db)."""
    wb = Workbench.from_env()
    import uvicorn

    from mlops_workbench import procs
    from mlops_workbench.monitoring.predictions import PredictionLog
    from mlops_workbench.monitoring.recorder import PredictionRecorder
    from mlops_workbench.serving.server import create_app

    procs.ensure_free(wb, "serve", port, host)  # before the model loads: a taken port fails at once, saying why
    output.log_to_stderr()
    faults = Faults(
        error_rate=fault_error_rate, latency_ms=fault_latency_ms, crash_after=fault_crash_after, seed=fault_seed
    )
    app = create_app(
        wb,
        model_uri,
        name=name,
        faults=faults,
        watch_interval=watch_interval or None,
        allow_faults=allow_faults,
        recorder=PredictionRecorder(PredictionLog(wb)),
    )
    server = app.state.server
    typer.echo(f"serving {server.uri} (version {server.model.version}) on http://{host}:{port}")
    uvicorn.run(app, host=host, port=port, log_level="warning", access_log=False)
