"""``workbench k8s`` (render, validate, apply, status, abort, promote, analysis-server) and
``workbench cluster`` (up, down, status): the kind scale path."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from mlops_workbench import output
from mlops_workbench.errors import verdict

app = typer.Typer(
    help="The rollout policy as Argo Rollouts + Gateway API manifests, validated offline.", no_args_is_help=True
)
cluster_app = typer.Typer(
    help="A local kind cluster with Envoy Gateway, Argo Rollouts and the model server.", no_args_is_help=True
)


@app.command("render")
def render_cmd(
    policy: str = typer.Option("demo", "--policy", help="policy YAML file, or a packaged profile: default, demo"),
    out: Path | None = typer.Option(None, "--out", help="write the files to this folder (default: print them)"),
) -> None:
    """Turn a rollout policy into the Rollout's canary steps, AnalysisTemplates and the policy ConfigMap."""
    from mlops_workbench.k8s import render
    from mlops_workbench.rollout import policy as pol

    loaded = pol.load(policy)
    if out is None:
        typer.echo("---\n".join(render.texts(loaded, policy).values()), nl=False)
        return
    for path in render.write(loaded, out, policy):
        typer.echo(f"wrote {path}")


@app.command("validate")
def validate_cmd(
    files: list[Path] = typer.Argument(None, help="manifest files validated together (default: every overlay)"),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Schemas (strict field names) and cross-references, offline. Exit 1 when any error is found."""
    from mlops_workbench.k8s import validate as v

    if files:
        findings = v.validate(v.load_files(files), source=", ".join(map(str, files)))
    else:
        findings = [f for overlay in v.overlays() for f in v.validate_overlay(overlay)]
    if as_json:
        typer.echo(json.dumps([f.model_dump() for f in findings], indent=2))
    else:
        for f in findings:
            output.say(f"{f.severity.upper()}: {f}")
        output.final(f"{len(v.errors(findings))} error(s), {len(findings) - len(v.errors(findings))} warning(s)")
    verdict(not v.errors(findings))


@app.command("apply")
def apply_cmd(overlay: str = typer.Option("kind", "--overlay")) -> None:
    """kubectl apply -k deploy/k8s/overlays/OVERLAY on the kind cluster, then wait for it."""
    from mlops_workbench.k8s import cluster

    cluster.apply(overlay, say=typer.echo)


@app.command("status")
def status_cmd() -> None:
    """Rollout phase, step, HTTPRoute weights and AnalysisRun phases."""
    from mlops_workbench.k8s import cluster

    typer.echo(json.dumps(cluster.status(), indent=2))


@app.command("abort")
def abort_cmd() -> None:
    """kubectl argo rollouts abort: canary weight back to 0 (the spec still names the new image)."""
    from mlops_workbench.k8s import cluster

    typer.echo(cluster.abort())


@app.command("promote")
def promote_cmd() -> None:
    """kubectl argo rollouts promote: skip the current pause."""
    from mlops_workbench.k8s import cluster

    typer.echo(cluster.promote())


@app.command("analysis-server")
def analysis_server(
    policy: str = typer.Option(..., "--policy"),
    prometheus: str = typer.Option("http://prometheus.workbench.svc:9090", "--prometheus"),
    port: int = typer.Option(8080, "--port"),
    host: str = typer.Option("127.0.0.1", "--host", help="address to bind (the cluster's Deployment passes 0.0.0.0)"),
) -> None:
    """Serve the Argo `web` metric provider (the in-cluster analysis endpoint)."""
    import uvicorn

    from mlops_workbench.k8s import analysis_app
    from mlops_workbench.rollout import policy as pol

    app_ = analysis_app.create_app(pol.load(policy), analysis_app.prometheus_query(prometheus))
    uvicorn.run(app_, host=host, port=port, log_level="warning")


@cluster_app.command("up")
def up(
    build: bool = typer.Option(True, "--build/--no-build", help="build the images (else they must exist)"),
    manifests: Path | None = typer.Option(
        None,
        "--manifests",
        help="lab 05's output folder: apply your Rollout strategy and AnalysisTemplates instead of the repository's",
    ),
) -> None:
    """kind create cluster, build and load the images, install Envoy Gateway + Argo Rollouts, apply the overlay."""
    from mlops_workbench.k8s import cluster

    cluster.up(say=typer.echo, build=build, manifests=manifests)


@cluster_app.command("down")
def down() -> None:
    """Delete the kind cluster."""
    from mlops_workbench.k8s import cluster

    cluster.down()


@cluster_app.command("status")
def cluster_status() -> None:
    """Are the tools there, and does the cluster answer?"""
    from mlops_workbench import tools
    from mlops_workbench.k8s import cluster

    tools.docker_engine()
    tools.require("kind")
    typer.echo(json.dumps(cluster.status(), indent=2))
