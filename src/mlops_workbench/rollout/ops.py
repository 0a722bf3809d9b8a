"""Rollout operations on the local runtime: what ``workbench rollout ...`` and the lab call.

``start`` (foreground or in a background thread), ``resume``, ``status``,
``abort``, ``promote``, ``proceed`` (end the current pause), ``inject_fault`` and ``down``. Promotion goes through
:func:`mlops_workbench.registry.promote`, so it leaves the registry's audit record.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from mlops_workbench import paramspec
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.rollout.backends.local import LocalBackend, MetricsMode
from mlops_workbench.rollout.controller import Controller, Promoter
from mlops_workbench.rollout.events import EventLog
from mlops_workbench.rollout.policy import Policy
from mlops_workbench.serving.faults import Faults
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlops_workbench.registry.gate import GateResult


def registry_promoter(
    wb: Workbench, model_name: str | None = None, gate: GateResult | None = None
) -> Callable[[str, str], Any]:
    """Promote through the registry code (alias move + approval tags + audit log).

    ``gate`` is a passed gate result the production step relies on instead of running the gate on the fixed
    held-out set again (a retrained candidate's verdict on a fresh window)."""
    model_name = model_name or paramspec.model_name()

    def promote(version: str, reason: str) -> Any:
        from mlops_workbench import registry

        extra: dict[str, Any] = {} if gate is None else {"gate_result": gate}
        return registry.release(
            wb, model_name, version, approver="rollout-controller", reason=f"canary rollout: {reason}", **extra
        )

    return promote


def registry_demoter(wb: Workbench, model_name: str | None = None) -> Callable[[str, str], Any]:
    """Undo a promotion (production back to ``previous``) when stable could not load the new version."""
    model_name = model_name or paramspec.model_name()

    def demote(version: str, reason: str) -> Any:
        from mlops_workbench import registry

        return registry.rollback(wb, model_name, approver="rollout-controller", reason=reason)

    return demote


def controller(
    wb: Workbench,
    metrics: MetricsMode = "auto",
    model_name: str | None = None,
    say: Callable[[str], None] | None = None,
    tick: float = 0.25,
    seed: int = 0,
    canary_faults: Faults | None = None,
    promoter: Promoter | None = None,
) -> Controller:
    """A controller for the local runtime (starts stable, router and Prometheus if needed).

    ``canary_faults`` are faults the canary starts with (a scenario option); ``promoter`` replaces
    :func:`registry_promoter` (e.g. one that carries a gate result).
    """
    model_name = model_name or paramspec.model_name()
    backend = LocalBackend(wb, model_name=model_name, metrics=metrics, seed=seed, canary_faults=canary_faults)
    backend.up()
    return Controller(
        wb,
        backend,
        backend.metrics_source(),
        promoter or registry_promoter(wb, model_name),
        tick=tick,
        say=say,
        demoter=registry_demoter(wb, model_name),
    )


@overload
def start(
    wb: Workbench,
    policy: Policy,
    candidate: str,
    metrics: MetricsMode = ...,
    model_name: str | None = ...,
    background: Literal[False] = ...,
    say: Callable[[str], None] | None = ...,
    stable_version: str | None = ...,
    canary_faults: Faults | None = ...,
) -> st.RolloutState: ...


@overload
def start(
    wb: Workbench,
    policy: Policy,
    candidate: str,
    metrics: MetricsMode = ...,
    model_name: str | None = ...,
    *,
    background: Literal[True],
    say: Callable[[str], None] | None = ...,
    stable_version: str | None = ...,
    canary_faults: Faults | None = ...,
) -> threading.Thread: ...


def start(
    wb: Workbench,
    policy: Policy,
    candidate: str,
    metrics: MetricsMode = "auto",
    model_name: str | None = None,
    background: bool = False,
    say: Callable[[str], None] | None = None,
    stable_version: str | None = None,
    canary_faults: Faults | None = None,
) -> st.RolloutState | threading.Thread:
    """Run a rollout of ``candidate``; with ``background=True`` returns the controller thread."""
    model_name = model_name or paramspec.model_name()
    ctl = controller(wb, metrics, model_name=model_name, say=say, canary_faults=canary_faults)
    if not background:
        return ctl.start(policy, candidate, stable_version)
    thread = threading.Thread(
        target=ctl.start, args=(policy, candidate, stable_version), daemon=True, name="workbench-rollout"
    )
    thread.start()
    deadline = time.time() + 30
    while time.time() < deadline:
        state = st.load(ctl.wb)
        if state is not None and state.candidate == str(candidate):
            break
        time.sleep(0.1)
    return thread


def wait(wb: Workbench, timeout: float = 300.0, poll: float = 0.5) -> st.RolloutState | None:
    """Block until the current rollout reaches a final phase (or ``timeout`` s)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        state = st.load(wb)
        if state is not None and state.done:
            return state
        time.sleep(poll)
    return st.load(wb)


def resume(
    wb: Workbench, metrics: MetricsMode = "auto", say: Callable[[str], None] | None = None
) -> st.RolloutState | None:
    """Restart the controller of an interrupted rollout (continues it, or aborts if the canary is gone)."""
    state = st.load(wb)
    model_name = state.model_name if state else paramspec.model_name()
    return controller(wb, metrics, model_name=model_name, say=say).resume()


def _offline(wb: Workbench) -> Controller:
    state = st.load(wb)
    model_name = state.model_name if state else paramspec.model_name()
    backend = LocalBackend(wb, model_name=model_name)
    return Controller(
        wb,
        backend,
        backend.metrics_source(),
        registry_promoter(wb, model_name),
        demoter=registry_demoter(wb, model_name),
    )


def _operator(wb: Workbench, action: st.RequestAction, reason: str, wait_s: float) -> st.RolloutState | None:
    """Carry out an operator's ``abort`` or ``promote``: through the live controller if any, else directly."""
    state = st.load(wb)
    if state is None or state.done:
        return state
    if st.controller_alive(state):
        st.request(wb, action, reason)
        return wait(wb, timeout=wait_s)
    offline = _offline(wb)
    return offline.promote(reason) if action == "promote" else offline.abort(reason)


def abort(wb: Workbench, reason: str = "aborted by operator", wait_s: float = 10.0) -> st.RolloutState | None:
    """Abort the current rollout: canary weight 0 at once, canary stopped, aliases untouched."""
    return _operator(wb, "abort", reason, wait_s)


def promote(wb: Workbench, reason: str = "promoted by operator", wait_s: float = 60.0) -> st.RolloutState | None:
    """Promote the current rollout's candidate fully now, skipping the steps left (Argo's ``promote --full``)."""
    return _operator(wb, "promote", reason, wait_s)


def proceed(wb: Workbench, reason: str = "continued by operator", wait_s: float = 10.0) -> str:
    """End the current pause and go on with the next steps (Argo's plain ``promote``); what happened, in one line.

    The request goes to the controller, which decides (a step that is not a pause is left alone). Without a
    live controller the request waits for ``workbench rollout resume``: moving the weight with nobody watching
    the analysis would be unsafe.
    """
    before = st.load(wb)
    if before is None or before.done:
        return f"no rollout in progress{f' (the last one ended {before.phase})' if before else ''}: nothing to continue"
    steps = Policy.model_validate(before.policy).steps
    st.request(wb, "continue", reason)
    if not st.controller_alive(before):
        return f"no controller drives rollout {before.id}: the continue request waits for `workbench rollout resume`"
    if before.step >= len(steps) or steps[before.step].pause is None:
        return f"step {before.step} of rollout {before.id} is not a pause: the controller leaves the rollout as it is"
    deadline, after = time.time() + wait_s, before
    while time.time() < deadline and after.id == before.id and after.step == before.step and not after.done:
        time.sleep(0.1)
        after = st.load(wb) or before
    if after.done:
        return f"rollout {after.id} ended {after.phase}: {after.reason}"
    if after.step == before.step:
        return f"asked rollout {before.id} to go on past step {before.step}: see `workbench rollout status`"
    return (
        f"rollout {after.id} went on past step {before.step}: now at step {after.step}, canary weight {after.weight:g}%"
    )


def status(wb: Workbench) -> dict[str, Any]:
    """The current rollout in a few fields, plus the live weight if the router answers."""
    state = st.load(wb)
    if state is None:
        return {"phase": "none", "message": "no rollout yet: start one with `workbench rollout start`"}
    out = {
        "id": state.id,
        "candidate": state.candidate,
        "phase": state.phase,
        "step": state.step,
        "steps": len(state.policy.get("steps", [])),
        "weight": state.weight,
        "reason": state.reason,
        "controller_alive": st.controller_alive(state),
        "measurements": {k: len(v) for k, v in state.phases.items()},
        "failed": {k: v.count(MeasurementPhase.FAILED) for k, v in state.phases.items()},
        "waiting": state.waiting,
    }
    try:
        out["router_weight"] = LocalBackend(wb).weight()
    except Exception:  # noqa: BLE001
        out["router_weight"] = None
    return out


def inject_fault(wb: Workbench, faults: Faults | dict[str, Any]) -> Faults:
    """Apply faults to the running canary and log a ``fault`` event (the incident's onset)."""
    faults = faults if isinstance(faults, Faults) else Faults(**faults)
    state = st.load(wb)
    backend = LocalBackend(wb)
    try:
        totals = backend.traffic_totals()
    except Exception:  # noqa: BLE001 - the counters are for the blast radius only
        totals = None
    applied = backend.inject_fault(faults)
    EventLog(wb, rollout=state.id if state else None).emit("fault", totals=totals, **applied.model_dump())
    return applied


def down(wb: Workbench) -> list[str]:
    """Stop every rollout process of this state folder (canary, router, Prometheus, stable)."""
    state = st.load(wb)
    if state is not None and not state.done and not st.controller_alive(state):
        try:
            abort(wb, "environment shut down")
        except Exception:  # noqa: BLE001 - shutting down anyway
            pass
    return LocalBackend(wb).down()
