"""Checks for lab 05: the manifests the learner wrote, by state (files), never by prose.

Offline (no kind or no Docker engine): the strategy and the templates faithful to the policy, each
check reading only its own exercise's file; the strategy's steps and analysis replayed on seeded healthy and
faulty traffic (:mod:`mlops_workbench.k8s.steps`, :mod:`mlops_workbench.rollout.replay`); the PromQL graded by what it decides on hidden series
(promtool); the assembled manifests valid; the revert overlay applied to the faulty release. With a cluster: the Rollout phase and the HTTPRoute weights after the faulty release.
"""

import json
import tempfile
from pathlib import Path

from mlops_workbench.k8s import lab as k8slab
from mlops_workbench.k8s import promtest
from mlops_workbench.k8s import validate as v
from mlops_workbench.k8s.errors import FAILURES, K8sError, ToolMissing
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
    """rollout-strategy.yaml holds the policy's steps, the background analysis and the closing gate."""
    try:
        problems = k8slab.strategy_problems(_policy(ctx), _manifests(ctx))
    except K8sError as err:
        fail(str(err))
    if problems:
        fail("the strategy does not follow your policy: " + "; ".join(problems[:4]))


REPLAYS = 20  # seeded replays of each kind; a few may go wrong by noise (a 2.5% healthy error rate in small windows)
REPLAY_MISSES = 5
FAULT_ERROR_RATES = (0.2, 0.4)  # the faulty canaries fail this share of their requests (the faulty image: 0.3)


@check("strategy-replays", points=2, hidden=True, cells=["write-strategy"])
def strategy_replays(ctx: Context) -> None:
    """Your steps and analysis replayed on seeded traffic at the cluster's rate: healthy promoted, faulty caught early."""
    policy, rng = _policy(ctx), ctx.rng("strategy-replays")
    try:
        run = k8slab.replayable(policy, _manifests(ctx))
        rps = k8slab.lab_rps()
    except K8sError as err:
        fail(f"your strategy cannot be replayed: {err}")
    seeds = [rng.randrange(10**6) for _ in range(2 * REPLAYS)]
    problem = k8slab.replay_problem(
        run, rps, seeds[:REPLAYS], seeds[REPLAYS:], round(rng.uniform(*FAULT_ERROR_RATES), 2), REPLAY_MISSES
    )
    if problem:
        fail(problem)


@check("templates-faithful", points=2, cells=["write-templates"])
def templates_faithful(ctx: Context) -> None:
    """Every metric has a background and a gate AnalysisTemplate with the policy's limits and provider."""
    try:
        problems = k8slab.template_problems(_policy(ctx), _manifests(ctx))
    except K8sError as err:
        fail(str(err))
    if problems:
        fail("not faithful to the policy: " + "; ".join(problems[:5]))


@check("promql-decides", points=4, hidden=True, cells=["write-templates"], timeout=120)
def promql_decides(ctx: Context) -> None:
    """Your PromQL and conditions pass hidden healthy canaries and fail hidden faulty ones (promtool test rules)."""
    policy = _policy(ctx)
    try:
        found = k8slab.templates(_manifests(ctx))
        verdicts = promtest.grade(
            list(found.values()), k8slab.metric_of(policy), policy.analysis.min_sample_size, ctx.rng("promql")
        )
    except ToolMissing as err:
        fail(f"the PromQL cannot be graded here: {err}")
    except K8sError as err:
        fail(str(err))
    prometheus = [n for n, m in k8slab.metric_of(policy).items() if m.kind in ("errorRate", "latencyP99")]
    missing = [n for n in prometheus if n not in found]
    if missing:
        fail(f"no AnalysisTemplate named {missing[0]!r}: write one per Prometheus metric and its gate.")
    wrong = list(dict.fromkeys(str(v) for v in verdicts if v.problem))
    if wrong:
        fail("your queries decide wrongly on hidden canaries: " + "; ".join(wrong[:3]))


@check("manifests-valid", points=3, cells=["validate"])
def manifests_valid(ctx: Context) -> None:
    """The assembled manifests pass the offline schemas and cross-reference checks."""
    try:
        findings = v.errors(v.validate(k8slab.assemble(_manifests(ctx))))
    except FAILURES as err:  # kubectl or node may fail as well as the manifests
        fail(str(err))
    if findings:
        fail("the manifests are refused: " + "; ".join(str(f) for f in findings[:3]))
    report = _manifests(ctx) / "validation.json"
    if not report.is_file():
        fail("validation.json is missing: save the findings of your validation run in the cell 'validate'.")


@check("revert-commit", points=2, cells=["revert"])
def revert_commit(ctx: Context) -> None:
    """overlay-revert, applied to the faulty release, runs the healthy image again (the revert is a commit)."""
    with tempfile.TemporaryDirectory(prefix="lab05-revert-") as scratch:
        problem = k8slab.revert_problem(_manifests(ctx) / "overlay-revert", Path(scratch) / "overlay")
    if problem:
        fail(problem)


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
        fail(
            f"the Rollout is {status['phase']} (aborted={status['aborted']}, canary weight {status['canary_weight']}): "
            "set the faulty image and wait for the analysis to abort it."
        )
