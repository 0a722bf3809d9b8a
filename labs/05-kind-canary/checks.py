"""Checks for lab 05: the manifests the learner wrote, by state (files), never by prose.

Offline (no kind or no Docker engine): rendered, valid, faithful to the policy, and a revert
overlay. With a cluster: the Rollout phase and the HTTPRoute weights after the faulty release.
"""

import json

from mlops_workbench.k8s import lab as k8slab
from mlops_workbench.k8s import validate as v
from mlops_workbench.k8s.errors import K8sError
from mlops_workbench.k8s.versions import load as load_versions
from mlops_workbench.labs.checks import Context, check, fail
from mlops_workbench.rollout import policy as pol


def _manifests(ctx: Context):
    return ctx.workspace / "manifests"


def _policy(ctx: Context) -> pol.Policy:
    path = _manifests(ctx) / "policy.yaml"
    if not path.is_file():
        fail(f"{path} is missing: run the prerequisites cell, which copies your policy there.")
    return pol.load(path)


@check("strategy-written", points=2, cells=["write-strategy"])
def strategy_written(ctx: Context) -> None:
    """rollout-strategy.yaml holds the policy's steps and runs every metric in the background."""
    path = _manifests(ctx) / k8slab.STRATEGY
    if not path.is_file():
        fail(f"{path} does not exist: write the Rollout patch in the cell 'write-strategy'.")
    problems = [p for p in k8slab.unfaithful(_policy(ctx), _manifests(ctx)) if "steps" in p or "background" in p]
    if problems:
        fail("the strategy does not follow your policy: " + "; ".join(problems))


@check("templates-faithful", points=3, cells=["write-templates"])
def templates_faithful(ctx: Context) -> None:
    """Every metric has an AnalysisTemplate with the policy's limits, conditions and provider."""
    if not (_manifests(ctx) / k8slab.TEMPLATES).is_file():
        fail("analysis-templates.yaml does not exist: write it in the cell 'write-templates'.")
    problems = k8slab.unfaithful(_policy(ctx), _manifests(ctx))
    if problems:
        fail("not faithful to the policy: " + "; ".join(problems[:5]))


@check("manifests-valid", points=3, cells=["validate"])
def manifests_valid(ctx: Context) -> None:
    """The assembled manifests pass the offline schemas and cross-reference checks."""
    try:
        findings = v.errors(v.validate(k8slab.assemble(_manifests(ctx))))
    except (K8sError, FileNotFoundError) as err:
        fail(str(err))
    if findings:
        fail("the manifests are refused: " + "; ".join(str(f) for f in findings[:3]))
    report = _manifests(ctx) / "validation.json"
    if not report.is_file():
        fail("validation.json is missing: save the findings of your validation run in the cell 'validate'.")


@check("revert-commit", points=2, cells=["revert"])
def revert_commit(ctx: Context) -> None:
    """overlay-revert pins the Rollout back to the healthy image (the revert is a commit)."""
    folder = _manifests(ctx) / "overlay-revert"
    if not (folder / "kustomization.yaml").is_file():
        fail(f"{folder}/kustomization.yaml does not exist: write the revert overlay in the cell 'revert'.")
    try:
        objs = v.load_text(v.kustomize(folder))
    except K8sError as err:
        fail(f"the revert overlay does not render: {err}")
    images = [c["image"] for o in objs if o.get("kind") == "Rollout" for c in o["spec"]["template"]["spec"]["containers"]]
    healthy = load_versions().healthy_image
    if not images or any(i != healthy for i in images):
        fail(f"the Rollout runs {images}; the revert must name {healthy} again.")


@check("canary-outcome", points=2, cells=["run"])
def canary_outcome(ctx: Context) -> None:
    """On a cluster: the faulty canary was aborted with weight 0; offline: the run says why it could not run."""
    path = _manifests(ctx) / "run.json"
    if not path.is_file():
        fail(f"{path} is missing: run the cell 'run' (it records the cluster outcome or why there is no cluster).")
    run = json.loads(path.read_text())
    available, why = k8slab.cluster_available()
    if not available:
        if run.get("mode") != "offline":
            fail(f"no cluster answers here ({why}), but run.json says {run.get('mode')!r}: record mode 'offline'.")
        return
    from mlops_workbench.k8s import cluster

    status = cluster.status()
    if not (status["aborted"] and status["phase"] == "Degraded" and status["canary_weight"] == 0):
        fail(f"the Rollout is {status['phase']} (aborted={status['aborted']}, canary weight {status['canary_weight']}): "
             "set the faulty image and wait for the analysis to abort it.")
