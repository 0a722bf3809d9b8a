"""``workbench rollout start|status|abort|promote|continue|resume|fault|timeline|down``, ``workbench router``,
``workbench load``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal, get_args

import typer
from rich.table import Table

from mlops_workbench import output
from mlops_workbench.errors import InputError, verdict
from mlops_workbench.rollout.state import RolloutPhase
from mlops_workbench.serving import paths
from mlops_workbench.settings import DefaultPort
from mlops_workbench.workbench import Workbench

app = typer.Typer(
    help="Canary rollouts on the local runtime: steps, analysis, automatic rollback.", no_args_is_help=True
)
console = output.console()
MetricsChoice = Literal["auto", "prometheus", "direct"]
"""The backend's MetricsMode, spelled out again: importing the backend would cost every `workbench` process seconds."""
METRICS_MODES = get_args(MetricsChoice)


@app.command("start")
def start(
    candidate: str = typer.Option(..., "--candidate", help="registry version of the model to roll out"),
    policy: str = typer.Option("default", "--policy", help="policy YAML file, or a packaged profile: default, demo"),
    metrics: MetricsChoice = typer.Option(
        "auto", "--metrics", help="auto (Prometheus if installed), prometheus or direct"
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        help="registered model name (default: params.yaml registry.model_name); stable serves its production alias",
    ),
) -> None:
    """Deploy CANDIDATE as canary, walk the policy steps with analysis, then promote or roll back."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import ops
    from mlops_workbench.rollout import policy as pol

    spec = pol.load(policy)
    state = ops.start(wb, spec, candidate, metrics=metrics, model_name=model, say=console.print)
    promoted = state.phase == RolloutPhase.PROMOTED
    colour = "green" if promoted else "red"
    output.final(f"[{colour}]{state.phase}[/{colour}]: {state.reason}")
    verdict(promoted)


@app.command("resume")
def resume(metrics: MetricsChoice = typer.Option("auto", "--metrics")) -> None:
    """Continue a rollout whose controller was stopped (or abort it if its canary is gone)."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import ops

    state = ops.resume(wb, metrics=metrics, say=console.print)
    console.print(f"{state.phase if state else 'no rollout'}: {state.reason if state else ''}")


@app.command("status")
def status(as_json: bool = typer.Option(False, "--json")) -> None:
    """Phase, step, weight and measurement counts of the current rollout, and what it waits for at a pause without a
    duration."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import ops

    info = ops.status(wb)
    if as_json:
        typer.echo(json.dumps(info, indent=1))
        return
    table = Table(title="rollout")
    table.add_column("field")
    table.add_column("value")
    for key, value in info.items():
        table.add_row(key, str(value))
    console.print(table)


@app.command("abort")
def abort(reason: str = typer.Option("aborted by operator", "--reason")) -> None:
    """Roll back now: canary weight 0, canary stopped, aliases untouched."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import ops

    state = ops.abort(wb, reason=reason)
    console.print(f"{state.phase if state else 'no rollout'}")


@app.command("promote")
def promote(reason: str = typer.Option("promoted by operator", "--reason")) -> None:
    """Promote the candidate fully now, skipping the steps left (Argo's `promote --full`; operator override, still
    through the registry and its audit log). To end only the current pause, use `continue`."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import ops

    state = ops.promote(wb, reason=reason)
    console.print(f"{state.phase if state else 'no rollout'}: {state.reason if state else ''}")


@app.command("continue")
def continue_(
    reason: str = typer.Option("continued by operator", "--reason"),
    wait: float = typer.Option(10.0, "--wait", min=0, help="seconds to wait for the controller to go on"),
) -> None:
    """End the current pause now and go on with the next steps (Argo's plain `promote`): the way past a pause
    without a duration. The analysis keeps running; `promote` skips every step left instead."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import ops

    console.print(ops.proceed(wb, reason=reason, wait_s=wait))


@app.command("fault")
def fault(
    error_rate: float = typer.Option(0.0, "--error-rate"),
    latency_ms: float = typer.Option(0.0, "--latency-ms"),
    crash_after: int | None = typer.Option(None, "--crash-after"),
) -> None:
    """Inject faults into the running canary (logged as the incident's onset)."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import ops

    applied = ops.inject_fault(wb, {"error_rate": error_rate, "latency_ms": latency_ms, "crash_after": crash_after})
    console.print(f"canary faults: {applied.model_dump()}")


@app.command("timeline")
def timeline(out: Path = typer.Option(Path("rollout-timeline.png"), "--out")) -> None:
    """Draw the last rollout's incident timeline and print time to detect/restore and blast radius."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import events
    from mlops_workbench.rollout import timeline as tl

    evs = events.read(wb)
    fig = tl.plot(evs)
    fig.savefig(out, dpi=110, bbox_inches="tight")
    console.print(json.dumps(tl.incident(evs), indent=1))
    console.print(f"timeline written to {out}")


@app.command("down")
def down() -> None:
    """Stop every rollout process (canary, router, Prometheus, stable)."""
    wb = Workbench.from_env()
    from mlops_workbench.rollout import ops

    console.print(f"stopped: {', '.join(ops.down(wb)) or 'nothing was running'}")


def router(
    stable: str = typer.Option(..., "--stable", help="URL of the stable model server"),
    canary: str | None = typer.Option(None, "--canary", help="URL of the canary model server"),
    weight: float = typer.Option(0.0, "--weight", help="canary traffic share, 0-100"),
    port: int = typer.Option(DefaultPort("router"), "--port"),
    seed: int = typer.Option(0, "--seed", help="seed of the weighted choice"),
) -> None:
    """Weighted reverse proxy (stable/canary) with /admin/weights, a shadow upstream (/admin/shadow) and Prometheus
    /metrics."""
    from mlops_workbench import procs
    from mlops_workbench.rollout.router import serve

    if not 0 <= weight <= 100:
        raise InputError(f"--weight must be from 0 to 100, got {weight:g}")
    procs.ensure_free(Workbench.from_env(), "router", port)
    serve(stable, canary, weight, port, seed)


def load(
    url: str = typer.Option(..., "--url", help="router or server base URL"),
    rps: float = typer.Option(20.0, "--rps"),
    duration: float = typer.Option(10.0, "--duration", help="seconds"),
    seed: int = typer.Option(0, "--seed"),
    path: str = typer.Option(paths.PREDICT, "--path"),
    out: Path | None = typer.Option(None, "--out", help="write every outcome as JSONL"),
) -> None:
    """Open-loop seeded load of Iris-like requests; prints outcomes per upstream."""
    from mlops_workbench.rollout.load import run

    result = run(url, rps, duration, seed, path)
    table = Table(title=f"load {url}{path}: {rps:g} rps for {duration:g}s (seed {seed})")
    for col in ("upstream", "requests", "errors", "error rate", "p50 ms", "p99 ms"):
        table.add_column(col)
    for name, s in result.summary().items():
        table.add_row(
            name,
            str(s["requests"]),
            str(s["errors"]),
            f"{s['error_rate']:.2%}",
            f"{s['p50_ms']:.1f}",
            f"{s['p99_ms']:.1f}",
        )
    console.print(table)
    if out:
        out.write_text("".join(json.dumps(r) + "\n" for r in result.to_records()))
