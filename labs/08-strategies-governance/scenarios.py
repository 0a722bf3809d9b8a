"""Hidden scenarios of lab 08, made per grading run from the check's seeded generator. Never shipped to learners.

* Blue-green: a router and green environments held in memory, with the same calls as ``RouterClient`` and
  ``ModelServerClient`` (``set_weight``, ``weight``, ``weights``; ``send``, ``version``). Every weight the
  learner's code sets is recorded, so the check sees whether a failing green ever got traffic and whether a
  switch was one atomic change. Greens are healthy or broken in seeded ways (errors on every request, a wrong
  class on one smoke case only, no answer at all, an error on a case that expects no class).
* A/B: seeded A/A and A/B label streams looked at after every batch (:mod:`mlops_workbench.strategies.scenarios`).
* GitOps: a real deployment repository (git) in a scratch state folder with a seeded history: a good release, a bad
  release, sometimes a harmless commit after it, auto-sync on or off; the runtime is held in memory (what the
  reconciler applies), so the check reads what serves without starting servers.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_workbench.errors import RegistryError
from mlops_workbench.gitops import DeploymentRepo, LiveState, Served, init_repo
from mlops_workbench.gitops.plan import Action
from mlops_workbench.gitops.spec import DESIRED, DesiredState, desired_text
from mlops_workbench.serving.client import Reply, Unreachable

# --- blue-green ----------------------------------------------------------------------------------------------------
FLOWERS = {
    "setosa": [[5.1, 3.5, 1.4, 0.2], [4.9, 3.0, 1.4, 0.2], [5.0, 3.6, 1.4, 0.2]],
    "versicolor": [[6.4, 3.2, 4.5, 1.5], [5.5, 2.3, 4.0, 1.3], [5.7, 2.8, 4.5, 1.3]],
    "virginica": [[6.3, 3.3, 6.0, 2.5], [7.1, 3.0, 5.9, 2.1], [6.5, 3.0, 5.8, 2.2]],
}
TRUE = {tuple(row): name for name, rows in FLOWERS.items() for row in rows}
GREEN_URL, BLUE_URL, ROUTER_URL = "http://127.0.0.1:18502", "http://127.0.0.1:18501", "http://127.0.0.1:18500"


class SimRouter:
    """The router's admin calls in memory; ``set_weights`` lists every weight set, in order."""

    def __init__(self, weight: float = 0.0) -> None:
        self.url = ROUTER_URL
        self.current = weight
        self.set_weights: list[float] = []

    def set_weight(self, canary: float) -> float:
        value = float(canary)
        if not 0 <= value <= 100:
            raise ValueError(f"weight {canary!r} is not a percentage between 0 and 100")
        self.set_weights.append(value)
        self.current = value
        return value

    def weight(self) -> float:
        return self.current

    def weights(self) -> dict[str, Any]:
        return {
            "stable": 100 - self.current,
            "canary": self.current,
            "upstreams": {"stable": BLUE_URL, "canary": GREEN_URL},
        }


@dataclass
class SimServer:
    """A green environment: ``broken`` is '' (healthy), 'errors', 'wrong-class', 'down' or 'error-on-unchecked'."""

    version: str
    broken: str = ""
    wrong_row: tuple[float, ...] | None = None
    sent: list[list[list[float]]] = field(default_factory=list)
    url: str = GREEN_URL

    def send(self, rows: list[list[float]], timeout: float | None = None) -> Reply:
        self.sent.append(rows)
        if self.broken == "down":
            return Reply(0, problem="ConnectError")
        if self.broken == "errors" or (self.broken == "error-on-unchecked" and tuple(rows[0]) == self.wrong_row):
            return Reply(500, json.dumps({"detail": "model failed to load its artifact"}))
        predictions = [TRUE.get(tuple(r), "setosa") for r in rows]
        if self.broken == "wrong-class" and tuple(rows[0]) == self.wrong_row:
            predictions[0] = "virginica" if predictions[0] != "virginica" else "versicolor"
        return Reply(200, json.dumps({"predictions": predictions, "version": self.version}))

    def version(self, timeout: float | None = None) -> dict[str, Any]:
        if self.broken == "down":
            raise Unreachable(f"{self.url} does not answer (ConnectError)", ConnectionError("refused"))
        return {"name": "iris", "version": self.version, "alias": None, "model_uri": f"models:/iris/{self.version}"}


def smoke_cases(rng: random.Random) -> list[dict[str, Any]]:
    """One flower of each class with its expected class, in a seeded order, and one case with no expectation."""
    cases: list[dict[str, Any]] = [{"rows": [rng.choice(rows)], "expect": name} for name, rows in FLOWERS.items()]
    rng.shuffle(cases)
    return [*cases, {"rows": [rng.choice(FLOWERS["setosa"])]}]


BROKEN = ("errors", "wrong-class", "down", "error-on-unchecked")


def green(rng: random.Random, broken: str, cases: list[dict[str, Any]]) -> SimServer:
    """A green of seeded version; a broken one fails only the smoke case its breakage picks (the last expecting
    case for 'wrong-class', the case with no expectation for 'error-on-unchecked')."""
    version = str(rng.randint(2, 40))
    if broken == "wrong-class":
        return SimServer(version, broken, tuple([c for c in cases if c.get("expect")][-1]["rows"][0]))
    if broken == "error-on-unchecked":
        return SimServer(version, broken, tuple(next(c for c in cases if not c.get("expect"))["rows"][0]))
    return SimServer(version, broken)


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
    home: Path
    runtime: MemoryRuntime
    good: DesiredState
    bad: DesiredState
    bad_commit: str
    auto_sync: bool
    later: str | None
    """The file a harmless commit after the bad one added (None: the bad commit is HEAD)."""


def gitops_case(home: Path, rng: random.Random) -> GitOpsCase:
    """A seeded history in a fresh state folder ``home``, synced after every commit (as auto-sync or a person did)."""
    from mlops_workbench import gitops

    versions = rng.sample(range(2, 30), 3)
    good_v, bad_v, canary_v = (str(v) for v in versions)
    auto = rng.random() < 0.5
    runtime = MemoryRuntime({good_v, bad_v, canary_v})
    repo = init_repo(stable=good_v, model=MODEL, home=home, auto_sync=auto)
    gitops.reconcile(repo, home, runtime)
    good = DesiredState(model=MODEL, stable=good_v)
    if rng.random() < 0.5:  # the good release also runs a small canary
        weight = float(rng.choice([5, 10, 20]))
        good = DesiredState.model_validate(
            {"model": MODEL, "stable": good_v, "canary": {"version": canary_v, "weight": weight}}
        )
        repo.commit(f"Canary version {canary_v}", {DESIRED: desired_text(good)})
        gitops.reconcile(repo, home, runtime)
    bad = DesiredState(model=MODEL, stable=bad_v)
    bad_commit = repo.commit(f"Release version {bad_v}", {DESIRED: desired_text(bad)})
    gitops.reconcile(repo, home, runtime)
    later = None
    if rng.random() < 0.5:
        later = f"oncall-{rng.randrange(100, 1000)}.md"
        repo.commit("Note who is on call this week", {later: "on call: the platform team\n"})
        gitops.reconcile(repo, home, runtime)
    return GitOpsCase(repo, home, runtime, good, bad, bad_commit, auto, later)
