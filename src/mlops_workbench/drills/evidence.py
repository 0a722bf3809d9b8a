"""Which changes (:class:`~mlops_workbench.drills.causes.Change`) the run shows since a drill's setup: read from the
registry audit log, the rollout event log and the live state, so that a post-mortem's ``changes`` are checked
against what happened, not against what was typed."""

from __future__ import annotations

from mlops_workbench import procs
from mlops_workbench.drills import common
from mlops_workbench.drills.base import DrillContext
from mlops_workbench.drills.causes import Change
from mlops_workbench.rollout import events, prometheus
from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.rollout.state import RESUMED
from mlops_workbench.serving.client import ModelServerClient, Unreachable

CONCLUSIVE = (MeasurementPhase.SUCCESSFUL, MeasurementPhase.FAILED)
T = events.EventType


def registry_changes(ctx: DrillContext, bad: str) -> list[Change]:
    """Production moved off ``bad`` through the registry; the drill's server serves what production points to."""
    found: list[Change] = []
    entries = common.registry_entries_since(ctx)
    if any(e.changed_production and e.version != bad for e in entries):
        found.append(Change.ROLLED_BACK)
    service = procs.get(ctx.wb, ctx.server)
    try:
        served = ModelServerClient.of(ctx.wb, service.url).version(timeout=10).get("version") if service else None
    except Unreachable:
        served = None
    if served is not None and str(served) != bad:
        found.append(Change.SERVER_RELOADED)
    return found


def later_rollouts(ctx: DrillContext, first: str) -> dict[str, list[events.RolloutEvent]]:
    """The events of every rollout started after ``first``, by rollout id."""
    by_id: dict[str, list[events.RolloutEvent]] = {}
    seen_first = False
    for e in events.read(ctx.wb):
        seen_first = seen_first or e.rollout == first
        if seen_first and e.rollout not in (None, first):
            by_id.setdefault(e.rollout, []).append(e)
    return by_id


def decided_on_data(evs: list[events.RolloutEvent], source: str | None = None) -> bool:
    """The rollout took conclusive measurements (from ``source`` if given) and reached a decision."""
    measured = [
        e
        for e in evs
        if isinstance(e, events.MeasurementEvent) and e.phase in CONCLUSIVE and (source is None or e.source == source)
    ]
    return bool(measured) and any(e.type is T.DECISION for e in evs)


def rollout_changes(ctx: DrillContext, rollout: str) -> list[Change]:
    """What the event log shows happened to ``rollout`` after its fault, and after it."""
    evs = events.read(ctx.wb, rollout=rollout)
    onset = next((e.t for e in evs if e.type is T.FAULT), float("inf"))
    after = [e for e in evs if e.t > onset]
    found: list[Change] = []
    if any(isinstance(e, events.DecisionEvent) and e.decision is events.Decision.ABORT for e in after):
        found.append(Change.ROLLOUT_ABORTED)
    if any(isinstance(e, events.PhaseEvent) and e.phase == RESUMED for e in after):
        found.append(Change.ROLLOUT_RESUMED)
    later = later_rollouts(ctx, rollout)
    if later:
        found.append(Change.ROLLOUT_REPEATED)
    if prometheus.url(ctx.wb) is not None and any(decided_on_data(evs, "prometheus") for evs in later.values()):
        found.append(Change.METRICS_RESTARTED)
    return found
