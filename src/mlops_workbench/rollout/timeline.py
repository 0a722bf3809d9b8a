"""Incident analysis from the event log: time to detect, time to restore, blast radius, and the timeline plot.

Onset is the first ``fault`` event (or, without one, the moment the canary first
got traffic). Detection is the first failed measurement (or the abort decision,
whichever comes first) after onset; restore is the canary weight going back to 0.
Blast radius is what the canary served between onset and restore, from the
router's cumulative counters logged in ``fault`` and ``traffic`` events.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.rollout.events import (
    FINAL_DECISIONS,
    Decision,
    DecisionEvent,
    FaultEvent,
    MeasurementEvent,
    RolloutEvent,
    StartEvent,
    Totals,
    TrafficEvent,
    WeightEvent,
    last_rollout,
    of_rollout,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure

E = TypeVar("E", bound=RolloutEvent)


def _of(events: list[RolloutEvent], rollout: str | None) -> list[RolloutEvent]:
    rollout = rollout or last_rollout([e for e in events if isinstance(e, StartEvent)]) or last_rollout(events)
    return of_rollout(events, rollout)


def _first(
    events: list[RolloutEvent],
    kind: type[E],
    pred: Callable[[E], bool] = lambda e: True,
    after: float = float("-inf"),
) -> E | None:
    """The first event of ``kind`` at or after ``after`` for which ``pred`` holds."""
    return next((e for e in events if e.t >= after and isinstance(e, kind) and pred(e)), None)


def _failed(e: MeasurementEvent) -> bool:
    return e.phase == MeasurementPhase.FAILED


def incident(events: list[RolloutEvent], rollout: str | None = None) -> dict[str, Any]:
    """Time to detect and restore (s), blast radius and the policy's bound, for one rollout (default: last)."""
    evs = _of(events, rollout)
    start = _first(evs, StartEvent)
    decision = _first(evs, DecisionEvent, lambda e: e.decision in FINAL_DECISIONS)  # not an operator's continue
    out: dict[str, Any] = {
        "rollout": evs[0].rollout if evs else None,
        "decision": decision.decision.value if decision else None,
        "reason": decision.reason if decision else None,
        "bound_s": start.bound_s if start else None,
        "time_to_detect_s": None,
        "time_to_restore_s": None,
        "blast_radius": None,
    }
    fault = _first(evs, FaultEvent)
    exposed = _first(evs, WeightEvent, lambda e: e.canary > 0)
    onset: FaultEvent | WeightEvent | None = fault or exposed
    if onset is None or decision is None or decision.decision is Decision.PROMOTE:
        return out
    failed = _first(evs, MeasurementEvent, _failed, onset.t)
    detect_t = min(failed.t, decision.t) if failed else decision.t
    restore = _first(evs, WeightEvent, lambda e: e.canary == 0, decision.t)
    out["onset_t"] = onset.t
    out["time_to_detect_s"] = round(detect_t - onset.t, 3)
    if restore:
        out["time_to_restore_s"] = round(restore.t - onset.t, 3)
    out["blast_radius"] = blast_radius(evs, onset, restore)
    return out


def blast_radius(evs: list[RolloutEvent], onset: RolloutEvent, restore: RolloutEvent | None) -> dict[str, float] | None:
    """Requests and errors the canary served between onset and restore (router counters)."""
    before: Totals | None = onset.totals if isinstance(onset, FaultEvent) else None
    traffic = [e for e in evs if isinstance(e, TrafficEvent)]
    if before is None:
        prior = [e for e in traffic if e.t <= onset.t]
        before = prior[-1].totals if prior else {"canary": {"requests": 0, "errors": 0}}
    end_t = restore.t if restore else float("inf")
    after = _first(evs, TrafficEvent, after=end_t) or (traffic[-1] if traffic else None)
    if after is None or not before or after.totals is None:
        return None

    def part(totals: Totals, version: str, key: str) -> float:
        return float(totals.get(version, {}).get(key, 0.0))

    canary_req = part(after.totals, "canary", "requests") - part(before, "canary", "requests")
    canary_err = part(after.totals, "canary", "errors") - part(before, "canary", "errors")
    total = canary_req + part(after.totals, "stable", "requests") - part(before, "stable", "requests")
    return {
        "canary_requests": canary_req,
        "canary_errors": canary_err,
        "total_requests": total,
        "canary_error_share": canary_err / total if total else 0.0,
    }


def series(events: list[RolloutEvent], rollout: str | None = None) -> dict[str, Any]:
    """Plot-ready series (seconds since start): weight steps, error rate and p99 per version, markers."""
    evs = _of(events, rollout)
    t0 = evs[0].t if evs else 0.0
    out: dict[str, Any] = {
        "weight": [(0.0, 0.0)],
        "error": {"canary": [], "stable": []},
        "p99": {"canary": [], "stable": []},
        "shift": [],
        "failed": [],
        "decisions": [],
        "faults": [],
    }
    for e in evs:
        t = e.t - t0
        if isinstance(e, WeightEvent):
            out["weight"].append((t, e.canary))
        elif isinstance(e, MeasurementEvent) and e.value is not None:
            key = {"errorRate": "error", "latencyP99": "p99"}.get(e.kind or "")
            scale = 1000.0 if key == "p99" else 100.0
            if key:
                out[key]["canary"].append((t, e.value * scale))
                if e.baseline is not None:
                    out[key]["stable"].append((t, e.baseline * scale))
            else:
                out["shift"].append((t, e.value))
        if isinstance(e, MeasurementEvent) and _failed(e):
            out["failed"].append((t, e.metric))
        elif isinstance(e, DecisionEvent):
            out["decisions"].append((t, e.decision.value))
        elif isinstance(e, FaultEvent):
            out["faults"].append(t)
    return out


def plot(events: list[RolloutEvent], rollout: str | None = None) -> Figure:
    """The incident timeline: canary weight, error rate and p99 per version, faults and decisions marked."""
    import matplotlib.pyplot as plt

    s = series(events, rollout)
    fig, axes = plt.subplots(3, 1, figsize=(9, 7), sharex=True)
    tw, w = zip(*s["weight"], strict=True) if s["weight"] else ((), ())
    axes[0].step(tw, w, where="post", color="tab:purple")
    axes[0].set_ylabel("canary weight %")
    for ax, key, label in ((axes[1], "error", "error rate %"), (axes[2], "p99", "p99 latency ms")):
        for version, colour in (("stable", "tab:blue"), ("canary", "tab:orange")):
            if s[key][version]:
                ax.plot(*zip(*s[key][version], strict=True), marker=".", color=colour, label=version)
        ax.set_ylabel(label)
        if ax.get_lines():
            ax.legend(loc="upper left", fontsize=8)
    for ax in axes:
        for t in s["faults"]:
            ax.axvline(t, color="tab:red", linestyle=":", linewidth=1)
        for t, decision in s["decisions"]:
            colour = {"promote": "tab:green", "continue": "tab:gray"}.get(decision, "tab:red")
            ax.axvline(t, color=colour, linewidth=1.5)
        for t, _ in s["failed"]:
            ax.axvline(t, color="tab:red", alpha=0.15, linewidth=4)
    title = "rollout timeline"
    if s["decisions"]:
        title += f": {s['decisions'][-1][1]} at {s['decisions'][-1][0]:.1f}s"
    axes[0].set_title(title + " (dotted: fault, shaded: failed measurement)")
    axes[-1].set_xlabel("seconds since rollout start")
    fig.tight_layout()
    return fig
