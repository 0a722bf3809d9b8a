"""What lab 05 grades: the learner's manifests, assembled with the base, valid and faithful to the policy.

``assemble`` takes the kind overlay as rendered by kustomize, swaps in the learner's Rollout
strategy (steps + analysis) and AnalysisTemplates, and returns the full object set that
``validate`` checks together. ``strategy_problems`` and ``template_problems`` list, each from its own
file only, how the manifests differ from the policy (steps, gates, limits, providers) in words a learner
can act on; the PromQL itself is graded by what it decides (:mod:`mlops_workbench.k8s.promtest`).
``revert_problems`` applies the learner's revert overlay to the checker's own copy of the faulty release.
"""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench import tools
from mlops_workbench.k8s import render, steps
from mlops_workbench.k8s import validate as v
from mlops_workbench.k8s.errors import FAILURES, K8sError
from mlops_workbench.k8s.versions import deploy_dir
from mlops_workbench.k8s.versions import load as load_versions
from mlops_workbench.rollout import policy as pol
from mlops_workbench.rollout import replay

STRATEGY, TEMPLATES = render.FILES["strategy"], render.FILES["templates"]
LIMITS = ("interval", "initialDelay", "count", "failureLimit", "consecutiveErrorLimit", "inconclusiveLimit")


def _canary(objs: list[dict[str, Any]]) -> dict[str, Any]:
    ro = next((o for o in objs if o.get("kind") == "Rollout"), None)
    if ro is None:
        raise K8sError("no Rollout in the strategy file: write the Rollout patch (kind: Rollout, name iris).")
    return ((ro.get("spec") or {}).get("strategy") or {}).get("canary") or {}


def assemble(folder: Path) -> list[dict[str, Any]]:
    """The kind overlay with the learner's strategy and AnalysisTemplates from ``folder``."""
    strategy = _load(folder, STRATEGY, "Exercise 1 (cell 'write-strategy')")
    learner = _load(folder, TEMPLATES, "Exercise 2 (cell 'write-templates')")
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
    for t in learner:
        t.setdefault("metadata", {}).setdefault("namespace", namespace)
    return out + learner


def _load(folder: Path, name: str, exercise: str) -> list[dict[str, Any]]:
    path = folder / name
    if not path.is_file():
        raise K8sError(f"{path} does not exist: write it in {exercise} first.")
    return v.load_files([path])


def strategy_problems(policy: pol.Policy, folder: Path) -> list[str]:
    """How the learner's Rollout strategy differs from the policy (reads only the strategy file)."""
    problems: list[str] = []
    canary = _canary(_load(folder, STRATEGY, "Exercise 1 (cell 'write-strategy')"))
    want_steps = render.steps(policy)
    got_steps = [s for s in canary.get("steps") or [] if "analysis" not in s]
    if got_steps != want_steps:
        problems.append(f"steps are {got_steps}, the policy says {want_steps}")
    background = [t.get("templateName") for t in (canary.get("analysis") or {}).get("templates") or []]
    gates = [
        t.get("templateName")
        for s in canary.get("steps") or []
        if "analysis" in s
        for t in (s["analysis"] or {}).get("templates") or []
    ]
    for metric in policy.analysis.metrics:
        if render.template_name(metric) not in background:
            problems.append(f"the background analysis does not run template '{render.template_name(metric)}'")
        if render.template_name(metric, gate=True) not in gates:
            problems.append(f"no analysis step at the end runs the gate '{render.template_name(metric, gate=True)}'")
    if (canary.get("steps") or [{}])[-1].get("analysis") is None:
        problems.append("the last step is not the analysis gate: without it Argo promotes whatever the analysis saw")
    return problems


def templates(folder: Path) -> dict[str | None, dict[str, Any]]:
    """The learner's AnalysisTemplates by name (None for one without a name; reads only the templates file)."""
    return {
        (t.get("metadata") or {}).get("name"): t
        for t in _load(folder, TEMPLATES, "Exercise 2 (cell 'write-templates')")
        if t.get("kind") == "AnalysisTemplate"
    }


def metric_of(policy: pol.Policy) -> dict[str, pol.Metric]:
    """Template name -> the policy metric it measures (background and gate templates)."""
    return {render.template_name(m, gate): m for m in policy.analysis.metrics for gate in (False, True)}


def template_problems(policy: pol.Policy, folder: Path) -> list[str]:
    """Missing templates, limits unlike the policy's, the wrong provider. The queries are graded by promtool."""
    problems: list[str] = []
    found = templates(folder)
    for name, metric in metric_of(policy).items():
        tmpl = found.get(name)
        if tmpl is None:
            problems.append(f"no AnalysisTemplate named '{name}' for metric {metric.name}")
            continue
        gate = name.endswith("-gate")
        want = render.metric_spec(render.gate_metric(metric) if gate else metric, policy.analysis.min_sample_size)
        if gate:
            want.pop("interval")
        declared = {a.get("name") for a in (tmpl.get("spec") or {}).get("args") or []}
        if declared != set(render.ARGS):
            problems.append(f"{name}: declares the args {sorted(declared)}, the analysis passes {list(render.ARGS)}")
        got = ((tmpl.get("spec") or {}).get("metrics") or [{}])[0]
        for key in LIMITS:
            if got.get(key) != want.get(key):
                problems.append(f"{name}: {key} is {got.get(key)!r}, the policy gives {want.get(key)!r}")
        if set(got.get("provider") or {}) != set(want["provider"]):
            problems.append(
                f"{name}: provider {sorted(got.get('provider') or {})}, expected {sorted(want['provider'])} "
                f"({'web: PromQL cannot compute a PSI' if metric.kind == 'predictionShift' else 'prometheus'})"
            )
    return problems


def faulty_release() -> str:
    """The kind overlay as committed for the faulty release: the Rollout runs the faulty image."""
    versions = load_versions()
    objs = v.load_text(v.kustomize(deploy_dir() / "overlays" / "kind"))
    for obj in objs:
        if obj.get("kind") == "Rollout":
            for c in obj["spec"]["template"]["spec"]["containers"]:
                c["image"] = versions.faulty_image
    return yaml.safe_dump_all(objs, sort_keys=False, width=10_000)


def _without_images(objs: list[dict[str, Any]]) -> list[str]:
    out = []
    for obj in objs:
        obj = copy.deepcopy(obj)
        if obj.get("kind") == "Rollout":
            for c in obj["spec"]["template"]["spec"]["containers"]:
                c.pop("image", None)
        out.append(json.dumps(obj, sort_keys=True))
    return sorted(out)


def revert_problem(overlay: Path, scratch: Path) -> str:
    """What is wrong with the learner's revert overlay, or "" when it makes the faulty release run the healthy image.

    The learner's folder is copied to ``scratch`` and its ``rendered.yaml`` replaced by :func:`faulty_release`,
    so a revert that only edits its input, or changes nothing, is seen as such.
    """
    versions = load_versions()
    if not (overlay / "kustomization.yaml").is_file():
        return f"{overlay}/kustomization.yaml does not exist: write the revert overlay in the cell 'revert'."
    shutil.copytree(overlay, scratch, symlinks=False, dirs_exist_ok=True)
    faulty = faulty_release()
    (scratch / "rendered.yaml").write_text(faulty)
    try:
        objs = v.load_text(v.kustomize(scratch))
    except FAILURES as err:
        return f"the revert overlay does not render with kustomize: {err}"
    images = [
        c.get("image") for o in objs if o.get("kind") == "Rollout" for c in o["spec"]["template"]["spec"]["containers"]
    ]
    if not images:
        return "the revert overlay renders no Rollout: keep rendered.yaml (the faulty release) as its resource"
    if any(i == versions.faulty_image for i in images):
        return (
            f"applied to the faulty release, the revert still runs {versions.faulty_image}: it changes nothing "
            f"that runs; set the image {versions.MODEL_IMAGE} to the tag {versions.HEALTHY_TAG} in `images:`"
        )
    if any(i != versions.healthy_image for i in images):
        return f"the reverted Rollout runs {images}; the last healthy release ran {versions.healthy_image}"
    if _without_images(v.load_text(faulty)) != _without_images(objs):
        return "the revert changes more than the image: revert only the image, the rest of the release stays"
    return ""


def replayable(policy: pol.Policy, folder: Path) -> steps.Replayable:
    """The learner's strategy (rollout-strategy.yaml only) as a policy to replay.

    The templates it runs are the policy's own (as rendered), so Exercise 2's file takes no part in this grade.
    """
    canary = _canary(_load(folder, STRATEGY, "Exercise 1 (cell 'write-strategy')"))
    minimum = policy.analysis.min_sample_size
    own = [render.analysis_template(m, minimum, gate) for gate in (False, True) for m in policy.analysis.metrics]
    return steps.to_policy(canary, {t["metadata"]["name"]: t for t in own}, metric_of(policy), minimum, policy.name)


def lab_rps() -> float:
    """The requests per second the kind cluster's load generator sends (deploy/k8s/base/loadgen-job.yaml)."""
    job = v.load_files([deploy_dir() / "base" / "loadgen-job.yaml"])[0]
    command = job["spec"]["template"]["spec"]["containers"][0]["command"]
    return float(command[command.index("--rps") + 1])


def _starved(run: steps.Replayable, rps: float) -> str:
    """Why a metric cannot fill its minimum sample in any of its measurements ("" when each metric can)."""
    policy = run.policy
    segments, end = replay.schedule(policy)
    for m in run.policy.analysis.metrics:
        minimum = m.min_sample_size or policy.analysis.min_sample_size
        due = [
            m.initial_delay + k * m.interval
            for k in range(m.count or 10_000)
            if m.initial_delay + k * m.interval <= end + 1e-9
        ]
        if not due:
            return (
                f"{m.name} first measures {m.initial_delay:g}s after the first weight, but the pauses end at "
                f"{end:g}s: make the pauses longer than its initialDelay"
            )
        best = max(
            sum(rps * w / 100 * max(0.0, min(b, t) - max(a, t - m.lookback)) for a, b, w in segments) for t in due
        )
        if best < minimum:
            first = policy.weights[0] if policy.weights else 0
            return (
                f"at {rps:g} rps no window of {m.name} ({m.lookback:g}s) holds more than about {best:.0f} canary "
                f"requests, under the minimum sample {minimum}: lengthen the pauses (at {first:g}% the canary "
                f"needs {minimum / max(rps * first / 100, 1e-9):.0f}s for {minimum} requests)"
            )
    return ""


def replay_problem(
    run: steps.Replayable, rps: float, healthy: list[int], faulty: list[int], error_rate: float, misses: int = 1
) -> str:
    """What the replayed strategy gets wrong, or "" when it promotes healthy canaries and catches faulty ones.

    Faulty canaries fail ``error_rate`` of their requests from the first weight on (as the faulty image does); each
    must be aborted before the last weight takes traffic (before promotion when there is one weight) and within
    the bound. ``misses`` replays of each kind may go wrong (seeded noise), no more.
    """
    starved = _starved(run, rps)
    wrong = [r for r in replay.replay_many(run.policy, replay.Traffic(rps=rps), healthy) if r.outcome != "promote"]
    if len(wrong) > misses:
        r = wrong[0]
        hint = starved or "raise failureLimit or the minimum sample, so that noise alone does not fail a measurement"
        return (
            f"a healthy canary was aborted in {len(wrong)} of {len(healthy)} replays at {rps:g} rps (seed {r.seed}, "
            f"at {r.ended_at:g}s: {r.reason}): {hint}."
        )
    limit = run.last_weight_at if run.last_weight_at > 0 else run.steps_end
    traffic = replay.Traffic(rps=rps, fault_error_rate=error_rate, fault_at=0.0)
    wrong = [
        r
        for r in replay.replay_many(run.policy, traffic, faulty)
        if r.outcome == "promote" or r.ended_at >= limit or r.ended_at > run.bound() + replay.BIN_S
    ]
    if len(wrong) <= misses:
        return ""
    r = wrong[0]
    where = (
        f"it was promoted ({r.reason})"
        if r.outcome == "promote"
        else f"it was aborted only at {r.ended_at:g}s ({r.reason})"
    )
    if r.outcome == "abort" and r.ended_at < limit:
        why = f"beyond the bound of {run.bound():g}s your analysis limits promise: fail faster (lower failureLimit)"
    else:
        last = "promotion" if run.last_weight_at <= 0 else f"the weight {run.last_weight:g}%"
        why = f"the canary must be out before {last} at {limit:g}s: " + (
            starved or "pause longer before the last setWeight, so that failureLimit + 1 measurements fit"
        )
    return (
        f"a canary failing {error_rate:.0%} of its requests was not stopped in time in {len(wrong)} of "
        f"{len(faulty)} replays (seed {r.seed}): {where}; {why}."
    )


def cluster_available() -> tuple[bool, str]:
    """(True, "") when kind and a Docker engine answer, else (False, what is missing)."""
    try:
        tools.docker_engine()
        tools.require("kind")
        tools.require("helm")
    except FAILURES as err:
        return False, str(err)
    return True, ""
