"""Hidden GitOps scenarios of lab 08, made per grading run from the check's seeded generator. Never shipped.

A real deployment repository (git) in a scratch state folder with a seeded history: a good release (sometimes with
a small canary), a bad release, sometimes a harmless commit after it, auto-sync on or off. The runtime is held in
memory (what the reconciler applies), so the check reads what serves without starting servers. (The blue-green
greens and the A/B label streams the other checks use come from the package: ``strategies.simulated`` and
``strategies.scenarios``.)
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from mlops_workbench.errors import RegistryError
from mlops_workbench.gitops import DeploymentRepo, LiveState, Served, init_repo
from mlops_workbench.gitops.plan import Action
from mlops_workbench.gitops.spec import DESIRED, DesiredState, desired_text
from mlops_workbench.workbench import Workbench

# --- GitOps ---------------------------------------------------------------------------------------------------------
MODEL = "iris"


class MemoryRuntime:
    """What the reconciler applies, held in memory: live() answers what was applied."""

    def __init__(self, versions: set[str]) -> None:
        self.state = LiveState()
        self.versions = versions

    def live(self) -> LiveState:
        return self.state

    def apply(self, action: Action, model: str) -> None:
        update: dict[str, Any] = {
            "serve_stable": {"stable": Served(version=str(action.version), uri=str(action.uri))},
            "start_router": {"router": True, "weight": 0.0},
            "deploy_canary": {"canary": Served(version=str(action.version), uri=str(action.uri)), "weight": 0.0},
            "set_weight": {"weight": action.weight},
            "stop_canary": {"canary": None, "weight": 0.0},
        }[action.kind]
        self.state = self.state.model_copy(update=update)

    def registered(self, model: str) -> set[str]:
        if model != MODEL:
            raise RegistryError(f"There is no registered model '{model}'.")
        return self.versions

    def busy(self) -> str | None:
        return None


@dataclass
class GitOpsCase:
    """A deployment repository whose HEAD (or HEAD~1) is a bad release that the runtime serves."""

    repo: DeploymentRepo
    wb: Workbench
    runtime: MemoryRuntime
    good: DesiredState
    bad: DesiredState
    bad_commit: str
    auto_sync: bool
    later: str | None
    """The file a harmless commit after the bad one added (None: the bad commit is HEAD)."""


def gitops_case(wb: Workbench, rng: random.Random) -> GitOpsCase:
    """A seeded history in a fresh state folder (``wb``'s), synced after every commit (as auto-sync or a person did)."""
    from mlops_workbench import gitops

    versions = rng.sample(range(2, 30), 3)
    good_v, bad_v, canary_v = (str(v) for v in versions)
    auto = rng.random() < 0.5
    runtime = MemoryRuntime({good_v, bad_v, canary_v})
    repo = init_repo(wb, stable=good_v, model=MODEL, auto_sync=auto)
    gitops.reconcile(wb, repo, runtime)
    good = DesiredState(model=MODEL, stable=good_v)
    if rng.random() < 0.5:  # the good release also runs a small canary
        weight = float(rng.choice([5, 10, 20]))
        good = DesiredState.model_validate(
            {"model": MODEL, "stable": good_v, "canary": {"version": canary_v, "weight": weight}}
        )
        repo.commit(f"Canary version {canary_v}", {DESIRED: desired_text(good)})
        gitops.reconcile(wb, repo, runtime)
    bad = DesiredState(model=MODEL, stable=bad_v)
    bad_commit = repo.commit(f"Release version {bad_v}", {DESIRED: desired_text(bad)})
    gitops.reconcile(wb, repo, runtime)
    later = None
    if rng.random() < 0.5:
        later = f"oncall-{rng.randrange(100, 1000)}.md"
        repo.commit("Note who is on call this week", {later: "on call: the platform team\n"})
        gitops.reconcile(wb, repo, runtime)
    return GitOpsCase(repo, wb, runtime, good, bad, bad_commit, auto, later)
