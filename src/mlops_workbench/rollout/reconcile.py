"""The rollout decisions as one pure function: ``reconcile(state, observations, policy, now)``.

Given where a rollout stands, what the controller just saw and the time, :func:`reconcile`
returns the next state and the list of things to do, in order: set a weight, stop the
canary, move the registry alias, write an event, save the state, wait. It reads no clock,
touches no file or process and never sleeps, so every policy behaviour can be checked
with made-up observations and a made-up ``now``. The controller
(:mod:`mlops_workbench.rollout.controller`) is the loop around it that looks at the world,
calls this, and carries the actions out.

The measurement decisions themselves stay in :mod:`mlops_workbench.rollout.analysis`:
this module only says which metrics are due, records their phases and asks
:func:`~mlops_workbench.rollout.analysis.verdict` what they add up to.

Promotion takes two calls, because moving the alias can fail: the first returns a
:class:`Promote` action and leaves the rollout progressing; the loop carries it out and
calls again with a :class:`PromotionOutcome`, which either finishes the rollout as
promoted or rolls it back (with :class:`Demote` first when the alias had already moved).

A pause without a duration (Argo's ``pause: {}``) holds the rollout at its step while the
measurements go on (a failing analysis still aborts) until an operator's ``continue``
request ends it, as ``kubectl argo rollouts promote`` does; ``promote`` promotes at once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from mlops_workbench.rollout import analysis
from mlops_workbench.rollout.analysis import Measurement, MeasurementPhase
from mlops_workbench.rollout.policy import Metric, Policy
from mlops_workbench.rollout.state import PAUSED, RequestAction, RolloutPhase, RolloutState, waiting_text

CANARY_DOWN = "canary process is down: its traffic failed over to stable"


# --- what the loop observed ------------------------------------------------------------------------
@dataclass(frozen=True)
class Request:
    """An operator's request (``workbench rollout abort|promote|continue``) picked up this tick."""

    action: RequestAction
    reason: str = ""


@dataclass(frozen=True)
class PromotionOutcome:
    """How carrying out a :class:`Promote` went: ``error`` is empty on success.

    ``alias_moved`` says the registry alias had already moved when the deployment failed,
    so it has to be moved back.
    """

    reason: str
    error: str = ""
    alias_moved: bool = False


@dataclass(frozen=True)
class Observations:
    """Everything the loop saw since the last call.

    ``measurements`` are results of :func:`analysis.measure` for due metrics; a due metric
    with no result here is measured as ``error`` (no data) when ``metrics_unavailable``
    holds the reason the metrics could not be read, and is otherwise left due.
    """

    measurements: tuple[Measurement, ...] = ()
    metrics_unavailable: str | None = None
    canary_alive: bool = True
    request: Request | None = None
    promotion: PromotionOutcome | None = None
    source: str = ""


# --- what the loop has to do -------------------------------------------------------------------------
@dataclass(frozen=True)
class SetWeight:
    """Send ``percent`` of the traffic to the canary, then log a ``weight`` event with ``reason``.

    With ``rollback`` set, a router that cannot be reached is not an error: the canary is
    stopped right after, which takes it out of traffic anyway.
    """

    percent: float
    reason: str
    rollback: bool = False


@dataclass(frozen=True)
class StopCanary:
    """Take the canary out of service."""


@dataclass(frozen=True)
class RecordTraffic:
    """Log a ``traffic`` event with the runtime's request and error totals (skipped if unreadable)."""


@dataclass(frozen=True)
class Promote:
    """Move the registry alias to ``version`` and make stable serve it; report back a :class:`PromotionOutcome`."""

    version: str
    reason: str


@dataclass(frozen=True)
class Demote:
    """Move the registry alias back after a promotion whose deployment failed with ``cause``."""

    version: str
    reason: str
    cause: str


@dataclass(frozen=True)
class Emit:
    """Append one event of ``type`` with ``fields`` to the event log."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Say:
    """A line for the person watching."""

    text: str


@dataclass(frozen=True)
class Save:
    """Persist ``state`` (a copy taken at this point) so a restarted controller can resume from it."""

    state: RolloutState


@dataclass(frozen=True)
class Wait:
    """Nothing more to do before ``until`` (a measurement, the end of a pause or a re-check is due then)."""

    until: float


Action = SetWeight | StopCanary | RecordTraffic | Promote | Demote | Emit | Say | Save | Wait


# --- pure helpers the loop also uses -----------------------------------------------------------------
def begin_analysis(state: RolloutState, policy: Policy, now: float) -> RolloutState:
    """A copy of ``state`` whose analysis clock runs from ``now`` (unchanged if it already started)."""
    if state.analysis_started is not None:
        return state
    new = copy.deepcopy(state)
    new.analysis_started = now
    new.next_due = {m.name: now + m.initial_delay for m in policy.analysis.metrics}
    return new


def due(state: RolloutState, policy: Policy, now: float) -> list[Metric]:
    """The metrics to measure at ``now``: their time has come and their ``count`` is not used up."""
    out = []
    for metric in policy.analysis.metrics:
        taken = len(state.phases.get(metric.name, []))
        if metric.count and taken >= metric.count:
            continue
        if now >= state.next_due.get(metric.name, now):
            out.append(metric)
    return out


def window(state: RolloutState, metric: Metric, now: float) -> tuple[float, float]:
    """The span ``metric`` is judged on at ``now``: its lookback, cut at the start of this rollout's analysis.

    The router's ``canary`` counters carry on from one rollout to the next: without the cut, a rollout that starts
    within a lookback of an aborted one would be judged on part of the aborted canary's errors."""
    start = now - metric.lookback
    return (start if state.analysis_started is None else max(start, state.analysis_started)), now


def no_data(metric: Metric, reason: str, span: tuple[float, float]) -> Measurement:
    """The ``error`` measurement recorded when ``metric``'s window ``span`` could not be read."""
    return Measurement(
        metric.name,
        metric.kind,
        MeasurementPhase.ERROR,
        reason,
        query=analysis.promql(metric),
        window=span,
        t=span[1],
    )


def abort(state: RolloutState, reason: str, phase: RolloutPhase, now: float) -> tuple[RolloutState, list[Action]]:
    """End the rollout without promoting: weight 0 first, then stop the canary; aliases are left alone."""
    new = copy.deepcopy(state)
    word = "abort" if phase == RolloutPhase.ABORTED else "inconclusive"
    actions: list[Action] = [
        Emit("decision", {"decision": word, "reason": reason}),
        Say(f"ABORT ({phase}): {reason}"),
        SetWeight(0, "rollback", rollback=True),
        RecordTraffic(),
        StopCanary(),
    ]
    new.weight = 0
    return _finish(new, phase, reason, now, actions)


# --- the reconcile step ------------------------------------------------------------------------------
def reconcile(state: RolloutState, obs: Observations, policy: Policy, now: float) -> tuple[RolloutState, list[Action]]:
    """One decision step. The input ``state`` is never changed; a finished rollout yields no actions.

    Priority: the outcome of a promotion in flight, then an operator request, then a dead
    canary, then the measurements that were due, then the steps. A failed or
    inconclusive analysis stops the tick before any step advances.
    """
    if state.done:
        return state, []
    if obs.promotion is not None:
        return _after_promotion(state, obs.promotion, now)
    if obs.request is not None:
        reason = obs.request.reason or f"{obs.request.action} requested by operator"
        if obs.request.action == "promote":
            return _promote(copy.deepcopy(state), reason, [])
        if obs.request.action == "continue":
            return _continue(state, policy, reason, now)
        return abort(state, reason, RolloutPhase.ABORTED, now)
    if not obs.canary_alive:
        return abort(state, CANARY_DOWN, RolloutPhase.ABORTED, now)
    new = copy.deepcopy(begin_analysis(state, policy, now))
    actions: list[Action] = []
    ended = _record(new, obs, policy, now, actions)
    if ended is not None:
        reason, phase = ended
        return _prefixed(actions, abort(new, reason, phase, now))
    return _advance(new, policy, now, actions)


def _record(
    s: RolloutState, obs: Observations, policy: Policy, now: float, actions: list[Action]
) -> tuple[str, RolloutPhase] | None:
    """Record the due measurements in ``s``; the reason and phase to end with if the analysis says so."""
    given = {m.metric: m for m in obs.measurements}
    taken = False
    for metric in due(s, policy, now):
        m = given.get(metric.name)
        if m is None and obs.metrics_unavailable is not None:
            m = no_data(metric, obs.metrics_unavailable, window(s, metric, now))
        if m is None:
            continue
        s.phases.setdefault(metric.name, []).append(m.phase)
        previous = s.next_due.get(metric.name, now)
        s.next_due[metric.name] = max(previous + metric.interval, now + 0.5 * metric.interval)
        actions += [
            Emit("measurement", {"source": obs.source, "weight": s.weight, **m.to_event()}),
            Say(f"  {m.metric}: {m.phase} - {m.message}"),
        ]
        taken = True
    if not taken:
        return None
    actions.append(RecordTraffic())
    outcome, reason = analysis.verdict(policy, s.phases, finished=False)
    if outcome == MeasurementPhase.FAILED:
        return reason, RolloutPhase.ABORTED
    if outcome == MeasurementPhase.INCONCLUSIVE:
        return reason, RolloutPhase.INCONCLUSIVE
    return None


def _advance(s: RolloutState, policy: Policy, now: float, actions: list[Action]) -> tuple[RolloutState, list[Action]]:
    """Walk the steps that are due; at the end of the last one, promote or stop without promoting."""
    while s.step < len(policy.steps):
        current = policy.steps[s.step]
        if current.pause is not None:
            if current.pause.duration is None:
                return _hold(s, policy, now, actions)
            pause_ends = s.step_started + current.pause.duration
            if now < pause_ends:
                due_next = _next_measurement(s, policy)
                actions += [Save(copy.deepcopy(s)), Wait(pause_ends if due_next is None else min(pause_ends, due_next))]
                return s, actions
        else:
            weight = float(current.set_weight or 0)
            actions.append(SetWeight(weight, f"step {s.step}: setWeight {weight:g}"))
            s.weight = weight
        s.step, s.step_started = s.step + 1, now
        actions.append(Save(copy.deepcopy(s)))
    outcome, reason = analysis.verdict(policy, s.phases, finished=True)
    if outcome == MeasurementPhase.SUCCESSFUL:
        return _promote(s, f"all steps done and analysis passed: {reason}", actions)
    phase = RolloutPhase.ABORTED if outcome == MeasurementPhase.FAILED else RolloutPhase.INCONCLUSIVE
    return _prefixed(actions, abort(s, reason, phase, now))


def _next_measurement(s: RolloutState, policy: Policy) -> float | None:
    """When the next measurement still to take is due (None: every metric used up its ``count``)."""
    times = [
        s.next_due[metric.name]
        for metric in policy.analysis.metrics
        if metric.name in s.next_due and (not metric.count or len(s.phases.get(metric.name, [])) < metric.count)
    ]
    return min(times, default=None)


def _hold(s: RolloutState, policy: Policy, now: float, actions: list[Action]) -> tuple[RolloutState, list[Action]]:
    """At an indefinite pause: stay at this step and wake for the next measurement (or a re-check).

    The first time, log a ``Paused`` phase event and say what the rollout waits for; a ``continue``
    request moves it on (:func:`_continue`).
    """
    if s.waiting_since is None:
        s.waiting_since = now
        text = waiting_text(s.step)
        actions += [Emit("phase", {"phase": PAUSED, "step": s.step, "reason": text}), Say(text)]
    due_next = _next_measurement(s, policy)  # none left (every count used up): re-check every shortest interval
    recheck = now + min(metric.interval for metric in policy.analysis.metrics)
    actions += [Save(copy.deepcopy(s)), Wait(recheck if due_next is None else due_next)]
    return s, actions


def _continue(state: RolloutState, policy: Policy, reason: str, now: float) -> tuple[RolloutState, list[Action]]:
    """An operator's ``continue``: end the current pause (timed or not) and walk on; anywhere else, say so only."""
    current = policy.steps[state.step] if state.step < len(policy.steps) else None
    if current is None or current.pause is None:
        where = f"step {state.step} is not a pause" if current else "the steps are over"
        return state, [Say(f"continue ignored: {where}, so there is nothing to continue ({reason})")]
    new = copy.deepcopy(begin_analysis(state, policy, now))
    actions: list[Action] = [
        Emit("decision", {"decision": "continue", "reason": reason}),
        Say(f"CONTINUE past step {new.step} (pause): {reason}"),
    ]
    new.step, new.step_started, new.waiting_since = new.step + 1, now, None
    actions.append(Save(copy.deepcopy(new)))
    return _advance(new, policy, now, actions)


def _promote(s: RolloutState, reason: str, actions: list[Action]) -> tuple[RolloutState, list[Action]]:
    """Ask the loop to promote; the rollout stays progressing until the outcome comes back."""
    actions += [
        Emit("decision", {"decision": "promote", "reason": reason}),
        Say(f"PROMOTE version {s.candidate}: {reason}"),
        Promote(s.candidate, reason),
    ]
    return s, actions


def _after_promotion(state: RolloutState, outcome: PromotionOutcome, now: float) -> tuple[RolloutState, list[Action]]:
    """Finish as promoted, or roll back (alias first when it moved) when the promotion could not be deployed."""
    if outcome.error:
        undo: list[Action] = []
        if outcome.alias_moved:
            undo.append(Demote(state.candidate, f"deployment of the promotion failed: {outcome.error}", outcome.error))
        return _prefixed(undo, abort(state, f"promotion failed: {outcome.error}", RolloutPhase.ABORTED, now))
    new = copy.deepcopy(state)
    new.weight = 0
    return _finish(new, RolloutPhase.PROMOTED, outcome.reason, now, [RecordTraffic()])


def _finish(
    s: RolloutState, phase: RolloutPhase, reason: str, now: float, actions: list[Action]
) -> tuple[RolloutState, list[Action]]:
    s.phase, s.reason, s.finished = phase, reason, now
    actions += [Emit("phase", {"phase": phase, "reason": reason}), Save(copy.deepcopy(s))]
    return s, actions


def _prefixed(first: list[Action], result: tuple[RolloutState, list[Action]]) -> tuple[RolloutState, list[Action]]:
    state, actions = result
    return state, first + actions


__all__ = [
    "reconcile",
    "begin_analysis",
    "due",
    "no_data",
    "abort",
    "Observations",
    "Request",
    "PromotionOutcome",
    "Action",
    "SetWeight",
    "StopCanary",
    "RecordTraffic",
    "Promote",
    "Demote",
    "Emit",
    "Say",
    "Save",
    "Wait",
]
