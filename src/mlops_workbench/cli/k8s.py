"""``workbench k8s`` (render, validate, apply, status, abort, promote, analysis-server) and
``workbench cluster`` (up, down, status): the kind scale path."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

import typer

from mlops_workbench import output
from mlops_workbench.errors import verdict

app = typer.Typer(
    help="The rollout policy as Argo Rollouts + Gateway API manifests, validated offline.", no_args_is_help=True
)
SyncChoice = Literal["manual", "auto"]
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
    files: list[Path] = typer.Argument(
        None, help="manifest files validated together (default: every overlay and the Argo CD Applications)"
    ),
    as_json: bool = typer.Option(False, "--json"),
) -> None:
    """Schemas (strict field names) and cross-references, offline. Exit 1 when any error is found."""
    from mlops_workbench.k8s import validate as v

    if files:
        findings = v.validate(v.load_files(files), source=", ".join(map(str, files)))
    else:
        findings = [f for overlay in v.overlays() for f in v.validate_overlay(overlay)] + v.validate_applications()
    if as_json:
        typer.echo(json.dumps([f.model_dump() for f in findings], indent=2))
    else:
        for f in findings:
            output.say(f"{f.severity.upper()}: {f}")
        output.final(f"{len(v.errors(findings))} error(s), {len(findings) - len(v.errors(findings))} warning(s)")
    verdict(not v.errors(findings))


@app.command("application")
def application_cmd(
    sync: SyncChoice = typer.Option("manual", "--sync", help="manual (rollback allowed) or auto (automated sync)"),
    repo_url: str | None = typer.Option(None, "--repo-url", help="deploy from this git repository instead"),
    path: str = typer.Option("deploy/k8s/overlays/kind", "--path", help="the overlay folder inside --repo-url"),
    revision: str = typer.Option("HEAD", "--revision", help="branch, tag or commit of --repo-url"),
) -> None:
    """Print the Argo CD Application of deploy/k8s/argocd (for `kubectl apply -f -`), optionally retargeted."""
    import yaml

    from mlops_workbench.k8s import argocd

    app_ = argocd.application(sync)
    if repo_url is not None:
        app_ = argocd.retarget(app_, repo_url, path, revision)
    typer.echo(yaml.safe_dump(app_, sort_keys=False), nl=False)


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
    apply: bool = typer.Option(
        True, "--apply/--no-apply", help="apply the overlay (--no-apply: Argo CD will, see `workbench cluster argocd`)"
    ),
) -> None:
    """kind create cluster, build and load the images, install Envoy Gateway + Argo Rollouts, apply the overlay."""
    from mlops_workbench.k8s import cluster

    cluster.up(say=typer.echo, build=build, manifests=manifests, apply_overlay=apply)


@cluster_app.command("argocd")
def argocd_cmd() -> None:
    """Install Argo CD (version from deploy/k8s/versions.env) in the kind cluster and wait until it runs."""
    from mlops_workbench.k8s import cluster
    from mlops_workbench.k8s.versions import load

    cluster.install_argocd(load(), say=typer.echo)


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
