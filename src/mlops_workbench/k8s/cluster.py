"""Drive the kind cluster: create it, build and load the images, install the stack, operate rollouts.

Every command first checks its tools (:mod:`mlops_workbench.k8s.tools`): no Docker engine, no
kind, kubectl or helm gives one line saying what to install.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench import settings, tools
from mlops_workbench.k8s import render
from mlops_workbench.k8s.errors import K8sError
from mlops_workbench.k8s.versions import Versions, deploy_dir, load

CLUSTER = "workbench"
ARGOCD_NAMESPACE = "argocd"
Say = Callable[[str], None]


def _kubectl(*args: str, input: str | None = None, check: bool = True) -> str:
    return tools.run([tools.require("kubectl"), "--context", f"kind-{CLUSTER}", *args], input=input, check=check)


def build_images(v: Versions, say: Say = print) -> list[str]:
    docker = tools.docker_engine()
    root = str(settings.project_root())
    dockerfile = str(deploy_dir() / "Dockerfile")
    built = []
    for image, fault in ((v.healthy_image, "0.0"), (v.faulty_image, "0.3")):
        say(f"building {image} (fault error rate {fault})")
        tools.run(
            [docker, "build", "-f", dockerfile, "--build-arg", f"FAULT_ERROR_RATE={fault}", "-t", image, root],
            timeout=1800,
        )
        built.append(image)
    return built


def install_stack(v: Versions, say: Say = print) -> None:
    helm = tools.require("helm")
    say(f"Gateway API CRDs {v.GATEWAY_API_VERSION}")
    _kubectl(
        "apply",
        "--server-side",
        "-f",
        "https://github.com/kubernetes-sigs/gateway-api/releases/download/"
        f"{v.GATEWAY_API_VERSION}/standard-install.yaml",
    )
    say(f"Envoy Gateway {v.ENVOY_GATEWAY_VERSION}")
    common = [
        "--kube-context",
        f"kind-{CLUSTER}",
        "-n",
        "envoy-gateway-system",
        "--create-namespace",
        "--version",
        v.ENVOY_GATEWAY_VERSION,
        "--wait",
        "--timeout",
        "5m",
    ]
    tools.run(
        [
            helm,
            "upgrade",
            "--install",
            "eg-crds",
            "oci://docker.io/envoyproxy/gateway-crds-helm",
            *common,
            "--set",
            "crds.gatewayAPI.enabled=false",
            "--set",
            "crds.envoyGateway.enabled=true",
        ]
    )
    tools.run(
        [
            helm,
            "upgrade",
            "--install",
            "eg",
            "oci://docker.io/envoyproxy/gateway-helm",
            *common,
            "--skip-crds",
            "--set",
            "crds.enabled=false",
        ]
    )
    say(f"Argo Rollouts {v.ARGO_ROLLOUTS_VERSION} with the gatewayAPI plugin {v.GATEWAYAPI_PLUGIN_VERSION}")
    _kubectl("create", "namespace", "argo-rollouts", check=False)
    stack = "".join(p.read_text() + "\n---\n" for p in sorted((deploy_dir() / "stack").glob("*.yaml")))
    if v.plugin_url() not in stack:
        raise K8sError(f"deploy/k8s/stack names another plugin than {v.plugin_url()}: make it match versions.env.")
    _kubectl("apply", "-f", "-", input=stack)
    _kubectl(
        "apply",
        "-n",
        "argo-rollouts",
        "-f",
        f"https://github.com/argoproj/argo-rollouts/releases/download/{v.ARGO_ROLLOUTS_VERSION}/install.yaml",
    )
    _kubectl("-n", "argo-rollouts", "rollout", "status", "deployment/argo-rollouts", "--timeout=300s")


def install_argocd(v: Versions, say: Say = print) -> None:
    """Argo CD's own install manifest at the pinned version in namespace ``argocd`` (server-side: its CRDs are too
    big for a client-side apply), then wait for its controller, repo server and API server."""
    say(f"Argo CD {v.ARGOCD_VERSION}")
    _kubectl("create", "namespace", ARGOCD_NAMESPACE, check=False)
    _kubectl(
        "apply",
        "-n",
        ARGOCD_NAMESPACE,
        "--server-side",
        "--force-conflicts",
        "-f",
        f"https://raw.githubusercontent.com/argoproj/argo-cd/{v.ARGOCD_VERSION}/manifests/install.yaml",
    )
    for workload in ("statefulset/argocd-application-controller", "deployment/argocd-repo-server"):
        _kubectl("-n", ARGOCD_NAMESPACE, "rollout", "status", workload, "--timeout=300s")
    _kubectl("-n", ARGOCD_NAMESPACE, "rollout", "status", "deployment/argocd-server", "--timeout=300s")


def up(say: Say = print, build: bool = True, manifests: Path | None = None, apply_overlay: bool = True) -> None:
    """kind create (config file, pinned node image), build + load images, install the stack, apply the overlay.

    With ``manifests`` (lab 05's output folder: rollout-strategy.yaml and analysis-templates.yaml) the
    learner's strategy and AnalysisTemplates are applied in place of the repository's. Without
    ``apply_overlay`` nothing of the workbench is applied: Argo CD deploys it from git.
    """
    if manifests is not None:
        from mlops_workbench.k8s import lab

        lab.assemble(manifests)  # refuse a folder without the learner's files before creating anything
    v = load()
    tools.docker_engine()
    kind = tools.require("kind")
    tools.require("kubectl")
    tools.require("helm")
    if CLUSTER not in tools.run([kind, "get", "clusters"]).split():
        say(f"creating kind cluster '{CLUSTER}' ({v.KIND_NODE_IMAGE})")
        tools.run(
            [
                kind,
                "create",
                "cluster",
                "--name",
                CLUSTER,
                "--config",
                str(deploy_dir() / "kind-config.yaml"),
                "--image",
                v.KIND_NODE_IMAGE,
                "--wait",
                "120s",
            ]
        )
    images = build_images(v, say) if build else [v.healthy_image, v.faulty_image]
    for image in images:
        tools.run([kind, "load", "docker-image", image, "--name", CLUSTER])
    install_stack(v, say)
    if not apply_overlay:
        return
    if manifests is None:
        apply(say=say)
    else:
        apply_manifests(manifests, say=say)


def apply(overlay: str = "kind", say: Say = print) -> None:
    path = deploy_dir() / "overlays" / overlay
    say(f"applying {path}")
    _kubectl("apply", "-k", str(path))
    _kubectl("-n", render.NAMESPACE, "wait", "--for=condition=Available", "deployment", "--all", "--timeout=300s")


def apply_manifests(folder: Path, say: Say = print) -> None:
    """Apply the kind overlay with the learner's strategy and AnalysisTemplates from ``folder``, then wait for it."""
    from mlops_workbench.k8s import lab

    say(f"applying the kind overlay with your manifests from {folder}")
    objs = lab.assemble(folder)
    _kubectl("apply", "-f", "-", input=yaml.safe_dump_all(objs, sort_keys=False))
    _kubectl("-n", render.NAMESPACE, "wait", "--for=condition=Available", "deployment", "--all", "--timeout=300s")


def down() -> None:
    tools.run([tools.require("kind"), "delete", "cluster", "--name", CLUSTER])


def status() -> dict[str, Any]:
    """Rollout phase, step, HTTPRoute weights and the last AnalysisRun phases."""
    ro = json.loads(_kubectl("-n", render.NAMESPACE, "get", "rollout", render.ROLLOUT, "-o", "json"))
    route = json.loads(_kubectl("-n", render.NAMESPACE, "get", "httproute", render.ROUTE, "-o", "json"))
    runs = json.loads(_kubectl("-n", render.NAMESPACE, "get", "analysisrun", "-o", "json"))
    return summarize(ro, route, runs.get("items", []))


def summarize(ro: dict[str, Any], route: dict[str, Any], runs: list[dict[str, Any]]) -> dict[str, Any]:
    st = ro.get("status") or {}
    weights = {
        ref["name"]: ref.get("weight", 1)
        for rule in route.get("spec", {}).get("rules", [])
        for ref in rule.get("backendRefs", [])
    }
    image = ro["spec"]["template"]["spec"]["containers"][0]["image"]
    return {
        "phase": st.get("phase"),
        "aborted": bool(st.get("abort")),
        "message": st.get("message", ""),
        "step": st.get("currentStepIndex"),
        "image": image,
        "weights": weights,
        "canary_weight": weights.get(render.CANARY_SERVICE, 0),
        "analysis_runs": {r["metadata"]["name"]: (r.get("status") or {}).get("phase") for r in runs},
    }


def _rollouts_plugin(*args: str) -> str:
    plugin = tools.require("kubectl-argo-rollouts")
    return tools.run([plugin, "--context", f"kind-{CLUSTER}", "-n", render.NAMESPACE, *args])


def abort() -> str:
    return _rollouts_plugin("abort", render.ROLLOUT)


def promote() -> str:
    return _rollouts_plugin("promote", render.ROLLOUT)
