"""Argo CD on the kind path: the ``Application`` manifests in ``deploy/k8s/argocd`` and the checks no schema can do.

The schemas (``@kubernetes-models/argo-cd``, through :mod:`mlops_workbench.k8s.crds`) catch a misspelt field or a
wrong type. :func:`check` adds what only this project knows: the Application deploys the kind overlay of this
repository into the namespace the overlay uses, and it ignores the HTTPRoute weights that Argo Rollouts rewrites
at every canary step (without that, every canary shows the app OutOfSync and ``selfHeal`` fights the rollout).

:func:`retarget` points an Application at another git repository (the workflow's local git daemon holding a copy
of the overlay) and sets its sync policy, so the manifest the cluster gets is the validated one with two fields
changed.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from mlops_workbench import safeyaml, settings
from mlops_workbench.k8s import render
from mlops_workbench.k8s.errors import K8sError, ManifestError
from mlops_workbench.k8s.findings import Finding, name_of
from mlops_workbench.k8s.versions import deploy_dir

REPO_URL = "https://github.com/mlops-workbench/mlops-workbench.git"
"""This repository: an Application whose source is here must name a path that exists in it."""
FILES = {"manual": "application.yaml", "auto": "application-autosync.yaml"}
"""The Application with each sync policy: by hand (rollback allowed) and automated (rollback refused)."""
WEIGHTS = ".spec.rules[].backendRefs[].weight"
"""The jq path of the HTTPRoute weights Argo Rollouts owns."""


def folder() -> Path:
    return deploy_dir() / "argocd"


def files() -> list[Path]:
    return sorted(folder().glob("*.yaml"))


def _f(obj: dict[str, Any], path: str, message: str, fix: str) -> Finding:
    return Finding(resource=name_of(obj), path=path, message=message, fix=fix)


def _source(app: dict[str, Any]) -> list[Finding]:
    source = (app.get("spec") or {}).get("source") or {}
    if source.get("repoURL") != REPO_URL:
        return []
    path = str(source.get("path", ""))
    target = settings.project_root() / path
    if not path or not (target / "kustomization.yaml").is_file():
        return [
            _f(
                app,
                "spec.source.path",
                f"'{path}' is not a kustomization in this repository",
                "name the overlay folder, relative to the repository root (deploy/k8s/overlays/kind)",
            )
        ]
    return []


def _destination(app: dict[str, Any]) -> list[Finding]:
    namespace = ((app.get("spec") or {}).get("destination") or {}).get("namespace")
    if namespace != render.NAMESPACE:
        return [
            _f(
                app,
                "spec.destination.namespace",
                f"'{namespace}' is not the namespace the kind overlay deploys to",
                f"use {render.NAMESPACE} (the overlay's kustomization sets it)",
            )
        ]
    return []


def _ignores_weights(app: dict[str, Any]) -> list[Finding]:
    spec = app.get("spec") or {}
    for rule in spec.get("ignoreDifferences") or []:
        if rule.get("kind") == "HTTPRoute" and rule.get("name") in (None, render.ROUTE):
            if WEIGHTS in (rule.get("jqPathExpressions") or []) or "/spec/rules" in (rule.get("jsonPointers") or []):
                options = (spec.get("syncPolicy") or {}).get("syncOptions") or []
                if "RespectIgnoreDifferences=true" in options:
                    return []
                return [
                    _f(
                        app,
                        "spec.syncPolicy.syncOptions",
                        "ignoreDifferences is not respected when syncing: a sync puts the weights back to git's",
                        "add RespectIgnoreDifferences=true to syncOptions",
                    )
                ]
    return [
        _f(
            app,
            "spec.ignoreDifferences",
            f"the HTTPRoute weights Argo Rollouts rewrites ({WEIGHTS}) are not ignored: every canary shows "
            "the app OutOfSync and selfHeal resets the weights mid-rollout",
            f"add an ignoreDifferences rule for kind HTTPRoute, name {render.ROUTE}, jqPathExpressions [{WEIGHTS}]",
        )
    ]


def check(objs: list[dict[str, Any]]) -> list[Finding]:
    """Findings for every Argo CD Application among ``objs`` (other objects are not looked at)."""
    findings: list[Finding] = []
    for app in objs:
        if app.get("kind") == "Application" and str(app.get("apiVersion", "")).startswith("argoproj.io/"):
            findings += _source(app) + _destination(app) + _ignores_weights(app)
    return findings


def application(sync: str = "manual") -> dict[str, Any]:
    """The committed Application with ``sync`` policy ``manual`` or ``auto``."""
    if sync not in FILES:
        raise K8sError(f"sync policy {sync!r} is not one of {', '.join(FILES)}: pass manual or auto.")
    path = folder() / FILES[sync]
    app = safeyaml.load(path, what=str(path), error=ManifestError)
    if not isinstance(app, dict) or app.get("kind") != "Application":
        raise ManifestError(f"{path} does not hold one Argo CD Application: restore it from git.")
    return app


def retarget(app: dict[str, Any], repo_url: str, path: str, revision: str = "HEAD") -> dict[str, Any]:
    """A copy of ``app`` whose source is ``path`` at ``revision`` of the git repository ``repo_url``."""
    if not repo_url.strip() or not path.strip():
        raise K8sError("retarget needs a repository URL and a path in it (e.g. git://host/deploy overlays/kind).")
    out = copy.deepcopy(app)
    out["spec"]["source"].update(repoURL=repo_url, path=path, targetRevision=revision)
    return out
