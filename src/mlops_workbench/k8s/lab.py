"""What lab 05 grades: the learner's manifests, assembled with the base, valid and faithful to the policy.

``assemble`` takes the kind overlay as rendered by kustomize, swaps in the learner's Rollout
strategy (steps + analysis) and AnalysisTemplates, and returns the full object set that
``validate`` checks together. ``unfaithful`` lists every way the manifests differ from what the
policy says (steps, limits, conditions), in words a learner can act on.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from mlops_workbench.k8s import render, tools
from mlops_workbench.k8s import validate as v
from mlops_workbench.k8s.errors import K8sError
from mlops_workbench.k8s.versions import deploy_dir
from mlops_workbench.rollout import policy as pol

STRATEGY, TEMPLATES = render.FILES["strategy"], render.FILES["templates"]
LIMITS = ("interval", "initialDelay", "count", "failureLimit", "consecutiveErrorLimit", "inconclusiveLimit")


def _canary(objs: list[dict[str, Any]]) -> dict[str, Any]:
    ro = next((o for o in objs if o.get("kind") == "Rollout"), None)
    if ro is None:
        raise K8sError("no Rollout in the strategy file: write the Rollout patch (kind: Rollout, name iris).")
    return ((ro.get("spec") or {}).get("strategy") or {}).get("canary") or {}


def assemble(folder: Path) -> list[dict[str, Any]]:
    """The kind overlay with the learner's strategy and AnalysisTemplates from ``folder``."""
    strategy = v.load_files([folder / STRATEGY])
    templates = [o for o in v.load_files([folder / TEMPLATES])]
    base = v.load_text(v.kustomize(deploy_dir() / "overlays" / "kind")) + v.load_files(v.stack_files())
    out = []
    for obj in base:
        if obj.get("kind") == "AnalysisTemplate":
            continue
        if obj.get("kind") == "Rollout":
            obj = copy.deepcopy(obj)
            canary = obj["spec"]["strategy"]["canary"]
            for key in ("steps", "analysis"):
                canary.pop(key, None)
            canary.update(copy.deepcopy(_canary(strategy)))
        out.append(obj)
    namespace = render.NAMESPACE
    for t in templates:
        t.setdefault("metadata", {}).setdefault("namespace", namespace)
    return out + templates


def unfaithful(policy: pol.Policy, folder: Path) -> list[str]:
    """Differences between the learner's manifests and the policy (empty when faithful)."""
    problems: list[str] = []
    canary = _canary(v.load_files([folder / STRATEGY]))
    want_steps = render.steps(policy)
    got_steps = [s for s in canary.get("steps") or [] if "analysis" not in s]
    if got_steps != want_steps:
        problems.append(f"steps are {got_steps}, the policy says {want_steps}")
    templates = {(t.get("metadata") or {}).get("name"): t for t in v.load_files([folder / TEMPLATES])
                 if t.get("kind") == "AnalysisTemplate"}
    background = [t.get("templateName") for t in (canary.get("analysis") or {}).get("templates") or []]
    for metric in policy.analysis.metrics:
        name = render.template_name(metric)
        if name not in background:
            problems.append(f"the background analysis does not run template '{name}'")
        tmpl = templates.get(name)
        if tmpl is None:
            problems.append(f"no AnalysisTemplate named '{name}' for metric {metric.name}")
            continue
        want = render.metric_spec(metric, policy.analysis.min_sample_size)
        got = ((tmpl.get("spec") or {}).get("metrics") or [{}])[0]
        for key in LIMITS + ("successCondition", "failureCondition"):
            if got.get(key) != want.get(key):
                problems.append(f"{name}: {key} is {got.get(key)!r}, the policy gives {want.get(key)!r}")
        if set(got.get("provider") or {}) != set(want["provider"]):
            problems.append(f"{name}: provider {sorted(got.get('provider') or {})}, expected {sorted(want['provider'])} "
                            f"({'web: PromQL cannot compute a PSI' if metric.kind == 'predictionShift' else 'prometheus'})")
    return problems


def cluster_available() -> tuple[bool, str]:
    """(True, "") when kind and a Docker engine answer, else (False, what is missing)."""
    try:
        tools.docker_engine()
        tools.require("kind")
        tools.require("helm")
    except K8sError as err:
        return False, str(err)
    return True, ""
