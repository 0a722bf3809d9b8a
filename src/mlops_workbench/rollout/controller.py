"""The rollout controller: the I/O loop around :func:`~mlops_workbench.rollout.reconcile.reconcile`.

Runtime-agnostic: it drives any :class:`~mlops_workbench.rollout.backends.Backend`
and reads any :class:`~mlops_workbench.rollout.metrics.MetricsSource`. Each tick it
looks (operator request, canary liveness, the windows of the metrics that are due),
hands what it saw to the pure reconcile step, and carries out the actions that come
back. Promotion moves the registry alias through :func:`mlops_workbench.registry.promote`
(with its audit record); abort sets the canary weight to 0 at once, stops the canary
and leaves the aliases untouched. State is saved after every change, so a restarted
controller resumes, or aborts when the canary is gone.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

from mlops_workbench.errors import WorkbenchError
from mlops_workbench.rollout import analysis
from mlops_workbench.rollout import reconcile as rc
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.backends import Backend
from mlops_workbench.rollout.events import EventLog
from mlops_workbench.rollout.metrics import MetricsSource, MetricsUnavailable
from mlops_workbench.rollout.policy import Policy
from mlops_workbench.rollout.state import RolloutPhase
from mlops_workbench.workbench import Workbench

Promoter = Callable[[str, str], Any]  # (candidate version, reason) -> registry record
Demoter = Callable[[str, str], Any]  # (candidate version, reason): undo a promotion whose deployment failed


class RolloutBusy(WorkbenchError, RuntimeError):
    """Another controller is driving a rollout in this state folder."""


class Controller:
    """Drives one rollout at a time for a state folder.

    ``clock`` and ``sleep`` default to the wall clock; the loop wakes at least every ``tick``
    seconds (to notice an operator request or a dead canary) and sooner when a measurement
    or the end of a pause is due; at a pause without a duration it keeps measuring and waits for
    an operator's ``continue``.
    """

    def __init__(
        self,
        wb: Workbench,
        backend: Backend,
        source: MetricsSource,
        promoter: Promoter | None = None,
        tick: float = 0.25,
        say: Callable[[str], None] | None = None,
        demoter: Demoter | None = None,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.backend, self.source, self.wb = backend, source, wb
        self.promoter, self.demoter = promoter, demoter
        self.tick, self.clock, self.sleep = tick, clock, sleep
        self.say = say or (lambda _msg: None)
        self.state: st.RolloutState | None = None
        self.log = EventLog(wb)

    # --- entry points ------------------------------------------------------------------------------
    def start(self, policy: Policy, candidate: str, stable_version: str | None = None) -> st.RolloutState:
        """Deploy ``candidate`` as canary and run the rollout to its end (blocking)."""
        previous = st.load(self.wb)
        if previous and not previous.done and st.controller_alive(previous):
            raise RolloutBusy(
                f"rollout {previous.id} is still in progress: watch it with `workbench rollout status` "
                "or stop it with `workbench rollout abort`."
            )
        if previous and not previous.done:
            self.state = previous
            self._end("superseded by a new rollout while nobody was driving it")
        st.take_request(self.wb)  # a stale request must not hit the new rollout
        state = st.RolloutState.new(candidate, policy.model_dump(by_alias=True), stable_version)
        state.model_name = self.backend.model_name
        self._own(state)
        self.log.emit(
            "start",
            candidate=str(candidate),
            stable=stable_version,
            policy=policy.name,
            steps=state.policy["steps"],
            bound_s=policy.detection_bound(),
        )
        self.say(f"rollout {state.id}: deploying candidate version {candidate} as canary")
        try:
            self.backend.deploy_canary(str(candidate))
        except Exception as err:  # noqa: BLE001 - any failure to deploy ends the rollout safely
            return self._end(f"canary failed to start: {err}")
        return self._run(policy)

    def resume(self) -> st.RolloutState | None:
        """Continue the saved rollout after a controller restart, or abort it if the canary is gone."""
        state = st.load(self.wb)
        if state is None or state.done:
            return state
        if st.controller_alive(state):
            raise RolloutBusy(f"rollout {state.id} already has a live controller (pid {state.controller_pid}).")
        self._own(state)
        policy = Policy.model_validate(state.policy)
        self.log.emit("phase", phase=st.RESUMED, step=state.step)
        try:
            alive = self.backend.canary_alive()
            if alive:
                self.backend.set_weight(state.weight)
        except Exception as err:  # noqa: BLE001
            alive, state.reason = False, str(err)
        if not alive:
            return self._end("controller restarted and the canary is not serving: rolled back")
        return self._run(policy)

    def abort(self, reason: str = "aborted by operator") -> st.RolloutState | None:
        """Abort the saved rollout now (used when no controller is running)."""
        state = st.load(self.wb)
        if state is None or state.done:
            return state
        self._own(state)
        return self._end(reason)

    def promote(self, reason: str = "promoted by operator") -> st.RolloutState | None:
        """Promote the saved rollout's candidate now (operator override)."""
        state = st.load(self.wb)
        if state is None or state.done:
            return state
        self._own(state)
        self._apply(
            rc.Observations(request=rc.Request("promote", reason)), Policy.model_validate(state.policy), self.clock()
        )
        return self.state

    # --- the loop ----------------------------------------------------------------------------------

    def _own(self, state: st.RolloutState) -> None:
        self.state = state
        self.log.rollout = state.id
        state.controller_pid = os.getpid()
        self._save(state)

    def _save(self, state: st.RolloutState) -> None:
        state.heartbeat = time.time()  # wall clock: other processes judge liveness by it
        st.save(self.wb, state)

    def _end(self, reason: str) -> st.RolloutState:
        """Roll back the current rollout outside the policy (operator, deploy failure, lost canary, superseded)."""
        assert self.state is not None
        new, actions = rc.abort(self.state, reason, RolloutPhase.ABORTED, self.clock())
        self._execute(actions)
        self.state = new
        return new

    def _run(self, policy: Policy) -> st.RolloutState:
        assert self.state is not None
        self.state = rc.begin_analysis(self.state, policy, self.clock())
        try:
            self.source.prime()
        except MetricsUnavailable as err:
            self.say(f"metrics not readable yet: {err}")
        while not self.state.done:
            now = self.clock()
            until = self._apply(self._observe(policy, now), policy, now)
            if self.state.done:
                break
            pause = self.tick if until is None else min(self.tick, max(until - self.clock(), 0.001))
            self.sleep(pause)
        return self.state

    def _observe(self, policy: Policy, now: float) -> rc.Observations:
        """What reconcile needs this tick; nothing more is read once a request or a dead canary decides it."""
        req = st.take_request(self.wb)
        if req:
            return rc.Observations(request=rc.Request(st.request_action(req.get("action")), req.get("reason") or ""))
        if not self.backend.canary_alive():
            return rc.Observations(canary_alive=False)
        assert self.state is not None
        measured: list[analysis.Measurement] = []
        unavailable: str | None = None
        windows: dict[tuple[float, float], Any] = {}
        for metric in rc.due(self.state, policy, now):
            span = rc.window(self.state, metric, now)
            try:
                if span not in windows:
                    windows[span] = self.source.window(*span)
            except MetricsUnavailable as err:  # reconcile records the metrics left without a result as no data
                unavailable = str(err)
                continue
            measured.append(analysis.measure(metric, windows[span], policy.analysis.min_sample_size))
        return rc.Observations(measurements=tuple(measured), metrics_unavailable=unavailable, source=self.source.name)

    def _apply(self, obs: rc.Observations, policy: Policy, now: float) -> float | None:
        """Reconcile once and carry out the actions; returns when something is next due (None: not said)."""
        assert self.state is not None
        new, actions = rc.reconcile(self.state, obs, policy, now)
        outcome, until = self._execute(actions)
        if outcome is not None:  # a promotion was attempted: reconcile again with how it went
            new, actions = rc.reconcile(new, rc.Observations(promotion=outcome), policy, self.clock())
            self._execute(actions)
        self.state = new  # only once every action was carried out
        return until

    def _execute(self, actions: list[rc.Action]) -> tuple[rc.PromotionOutcome | None, float | None]:
        outcome, until = None, None
        for action in actions:
            match action:
                case rc.Emit(type=kind, fields=fields):
                    self.log.emit(kind, **fields)
                case rc.Say(text=text):
                    self.say(text)
                case rc.SetWeight():
                    self._set_weight(action)
                case rc.RecordTraffic():
                    self._traffic()
                case rc.StopCanary():
                    self.backend.stop_canary()
                case rc.Save(state=snapshot):
                    self._save(snapshot)
                case rc.Promote():
                    outcome = self._promote(action)
                case rc.Demote():
                    self._demote(action)
                case rc.Wait(until=when):
                    until = when
        return outcome, until

    def _set_weight(self, action: rc.SetWeight) -> None:
        try:
            self.backend.set_weight(action.percent)
        except Exception as err:  # noqa: BLE001 - router down: stopping the canary still makes it safe
            if not action.rollback:
                raise
            self.log.emit("weight", canary=0, reason=f"rollback: router unreachable ({err}), canary stopped")
            return
        self.log.emit("weight", canary=action.percent, reason=action.reason)
        self.say(f"canary weight {action.percent:g}% ({action.reason})")

    def _traffic(self) -> None:
        try:
            self.log.emit("traffic", totals=self.backend.traffic_totals())
        except Exception:  # noqa: BLE001 - traffic totals are for reports only
            pass

    def _promote(self, action: rc.Promote) -> rc.PromotionOutcome:
        """Move the alias, then stable; any failure is reported back, never raised."""
        moved = False
        try:
            record = self.promoter(action.version, action.reason) if self.promoter else None
            moved = self.promoter is not None
            self.log.emit("registry", action="promote", version=action.version, record=str(record) if record else None)
            self.backend.promote(action.version)
        except Exception as err:  # noqa: BLE001 - a failed promotion must not leave the canary in traffic
            return rc.PromotionOutcome(action.reason, error=str(err), alias_moved=moved)
        return rc.PromotionOutcome(action.reason)

    def _demote(self, action: rc.Demote) -> None:
        if not self.demoter:
            return
        try:
            self.demoter(action.version, action.reason)
            self.log.emit("registry", action="rollback", version=action.version, reason=action.cause)
        except Exception as undo:  # noqa: BLE001
            self.log.emit("registry", action="rollback-failed", version=action.version, reason=str(undo))
