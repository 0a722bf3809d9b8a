"""The pure part of the reconciler: what is live, what must change, and whether the two agree.

:func:`plan` compares a :class:`~mlops_workbench.gitops.spec.DesiredState` with a :class:`LiveState` (read from
the router and the model servers elsewhere) and returns the :class:`Action` list that makes live match git, in an
order that keeps traffic served: stable first, then the router, then the canary, then its weight. No action means
Synced. Nothing here does I/O, so every case is tested with plain values.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from mlops_workbench.gitops.spec import DesiredState

SyncStatus = Literal["Synced", "OutOfSync", "Unknown"]
Health = Literal["Healthy", "Degraded", "Missing"]
ActionKind = Literal["serve_stable", "start_router", "deploy_canary", "set_weight", "stop_canary"]


class Served(BaseModel):
    """What one model server answers on ``/version``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    version: str
    uri: str


class LiveState(BaseModel):
    """The local runtime now: ``None`` for a server that is not running (or does not answer)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    router: bool = False
    stable: Served | None = None
    canary: Served | None = None
    weight: float | None = None
    """The canary's share in percent, as the router says (``None`` while the router is down)."""


class Action(BaseModel):
    """One change to the live runtime."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    kind: ActionKind
    version: str | None = None
    uri: str | None = None
    weight: float | None = None

    def __str__(self) -> str:
        match self.kind:
            case "serve_stable":
                return f"serve version {self.version} as stable ({self.uri})"
            case "start_router":
                return "start the router"
            case "deploy_canary":
                return f"deploy version {self.version} as canary ({self.uri})"
            case "set_weight":
                return f"send {self.weight:g}% of traffic to the canary"
            case _:
                return "stop the canary"


def plan(desired: DesiredState, live: LiveState) -> list[Action]:
    """The actions that make ``live`` serve ``desired`` (empty when it already does)."""
    actions: list[Action] = []
    stable_uri = desired.uri(desired.stable)
    if live.stable is None or live.stable.uri != stable_uri:
        actions.append(Action(kind="serve_stable", version=desired.stable, uri=stable_uri))
    if not live.router:
        actions.append(Action(kind="start_router"))
    weight = live.weight if live.router else 0.0  # a router started now begins at weight 0
    if desired.canary is None:
        if live.canary is not None:
            actions.append(Action(kind="stop_canary"))  # sets the weight to 0 before it stops the server
        elif weight:
            actions.append(Action(kind="set_weight", weight=0.0))
        return actions
    canary_uri = desired.uri(desired.canary.version)
    if live.canary is None or live.canary.uri != canary_uri:
        actions.append(Action(kind="deploy_canary", version=desired.canary.version, uri=canary_uri))
        weight = 0.0  # a new canary starts at weight 0
    if weight != desired.canary.weight:
        actions.append(Action(kind="set_weight", weight=desired.canary.weight))
    return actions


def sync_status(desired: DesiredState, live: LiveState) -> SyncStatus:
    return "Synced" if not plan(desired, live) else "OutOfSync"


def health(live: LiveState) -> Health:
    """Healthy: router and stable answer; Missing: nothing runs; Degraded: something runs but not both."""
    if live.router and live.stable is not None:
        return "Healthy"
    if not live.router and live.stable is None and live.canary is None:
        return "Missing"
    return "Degraded"


WatchStep = Literal["idle", "sync", "out_of_sync"]


def watch_step(head: str, last_seen: str | None, auto_sync: bool) -> WatchStep:
    """What the watcher does on a poll: nothing when HEAD has not moved; else sync it (auto-sync on) or only
    report the app OutOfSync (auto-sync off: a person syncs)."""
    if head == last_seen:
        return "idle"
    return "sync" if auto_sync else "out_of_sync"
