"""Schemas of Argo Rollouts, Argo CD and Gateway API resources, offline, from npm packages.

``deploy/k8s/schemas`` pins ``@kubernetes-models/argo-rollouts``, ``@kubernetes-models/argo-cd``
and ``@kubernetes-models/gateway-api`` (installed by ``make setup`` with ``npm ci``, never at
test time). They ship generated validators, not JSON files, so a small node script
(``validate.mjs``) runs them and also reports fields the schema does not define.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlops_workbench import tools
from mlops_workbench.k8s.errors import ToolMissing
from mlops_workbench.k8s.versions import deploy_dir

GROUPS = ("argoproj.io/", "gateway.networking.k8s.io/")
PACKAGES = ("argo-rollouts", "argo-cd", "gateway-api")
"""The ``@kubernetes-models/*`` packages ``deploy/k8s/schemas/package.json`` pins."""
# Free-form maps the generated validators do not enumerate: their keys are checked elsewhere.
FREE_FORM = ("spec.strategy.canary.trafficRouting.plugins.",)


def covers(obj: dict[str, Any]) -> bool:
    return str(obj.get("apiVersion", "")).startswith(GROUPS)


def schema_dir() -> Path:
    return deploy_dir() / "schemas"


def missing() -> list[str]:
    """The pinned schema packages not installed in ``deploy/k8s/schemas/node_modules``."""
    folder = schema_dir() / "node_modules" / "@kubernetes-models"
    return [f"@kubernetes-models/{p}" for p in PACKAGES if not (folder / p).is_dir()]


def ready() -> bool:
    return not missing() and tools.find("node") is not None


def check(objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per object: ``{"known", "errors": [{"path", "message"}], "unknown": [paths]}``."""
    if not objs:
        return []
    node = tools.require("node")
    if missing():
        raise ToolMissing(
            f"the schema packages {', '.join(missing())} are not installed in {schema_dir()}: run `make setup` "
            "(or `npm ci` there) with Node.js 20+."
        )
    out = tools.run([node, str(schema_dir() / "validate.mjs")], input=json.dumps(objs), timeout=120)
    results: list[dict[str, Any]] = json.loads(out)
    for r in results:
        r["unknown"] = [p for p in r["unknown"] if not p.startswith(FREE_FORM)]
        seen, unique = set(), []
        for e in r["errors"]:
            key = (e["path"], e["message"])
            if key not in seen:
                seen.add(key)
                unique.append(e)
        r["errors"] = unique
    return results
