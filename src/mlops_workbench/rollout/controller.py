"""The rollout controller: walk the policy steps, run the analysis, then promote or abort.

Runtime-agnostic: it drives any :class:`~mlops_workbench.rollout.backends.Backend`
and reads any :class:`~mlops_workbench.rollout.metrics.MetricsSource`. Promotion
moves the registry alias through :func:`mlops_workbench.registry.promote` (with
its audit record); abort sets the canary weight to 0 at once, stops the canary
and leaves the aliases untouched. State is saved after every change, so a
restarted controller resumes, or aborts when the canary is gone.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable

from mlops_workbench.errors import WorkbenchError
from mlops_workbench.rollout import analysis
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.rollout.backends import Backend
from mlops_workbench.rollout.events import EventLog
from mlops_workbench.rollout.metrics import MetricsSource, MetricsUnavailable
from mlops_workbench.rollout.policy import Policy
from mlops_workbench.rollout.state import RolloutPhase

Promoter = Callable[[str, str], Any]  # (candidate version, reason) -> registry record
Demoter = Callable[[str, str], Any]  # (candidate version, reason): undo a promotion whose deployment failed


class RolloutBusy(WorkbenchError, RuntimeError):
    """Another controller is driving a rollout in this state folder."""


class Controller:
    """Drives one rollout at a time for a state folder."""

    def __init__(self, backend: Backend, source: MetricsSource, home: Path, promoter: Promoter | None = None,
                 tick: float = 0.25, say: Callable[[str], None] | None = None,
                 demoter: Demoter | None = None) -> None:
        self.backend, self.source, self.home = backend, source, home
        self.promoter, self.demoter = promoter, demoter
        self.tick = tick
        self.say = say or (lambda _msg: None)
        self.state: st.RolloutState | None = None
        self.log = EventLog(home)

    # --- entry points ------------------------------------------------------------------------------
    def start(self, policy: Policy, candidate: str, stable_version: str | None = None) -> st.RolloutState:
        """Deploy ``candidate`` as canary and run the rollout to its end (blocking)."""
        previous = st.load(self.home)
        if previous and not previous.done and st.controller_alive(previous):
            raise RolloutBusy(f"rollout {previous.id} is still in progress: watch it with `workbench rollout status` "
                              "or stop it with `workbench rollout abort`.")
        if previous and not previous.done:
            self.state = previous
            self._abort("superseded by a new rollout while nobody was driving it", RolloutPhase.ABORTED)
        st.take_request(self.home)  # a stale request must not hit the new rollout
        state = st.RolloutState.new(candidate, policy.model_dump(by_alias=True), stable_version)
        state.model_name = self.backend.model_name
        self._own(state)
        self.log.emit("start", candidate=str(candidate), stable=stable_version, policy=policy.name,
                      steps=state.policy["steps"], bound_s=policy.detection_bound())
        self.say(f"rollout {state.id}: deploying candidate version {candidate} as canary")
        try:
            self.backend.deploy_canary(str(candidate))
        except Exception as err:  # noqa: BLE001 - any failure to deploy ends the rollout safely
            self._abort(f"canary failed to start: {err}", RolloutPhase.ABORTED)
            return state
        return self._run(policy)

    def resume(self) -> st.RolloutState | None:
        """Continue the saved rollout after a controller restart, or abort it if the canary is gone."""
        state = st.load(self.home)
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
            self._abort("controller restarted and the canary is not serving: rolled back", RolloutPhase.ABORTED)
            return state
        return self._run(policy)

    def abort(self, reason: str = "aborted by operator") -> st.RolloutState | None:
        """Abort the saved rollout now (used when no controller is running)."""
        state = st.load(self.home)
        if state is None or state.done:
            return state
        self._own(state)
        self._abort(reason, RolloutPhase.ABORTED)
        return state

    def promote(self, reason: str = "promoted by operator") -> st.RolloutState | None:
        """Promote the saved rollout's candidate now (operator override)."""
        state = st.load(self.home)
        if state is None or state.done:
            return state
        self._own(state)
        self._promote(reason)
        return state

    # --- the loop ----------------------------------------------------------------------------------
    def _own(self, state: st.RolloutState) -> None:
        self.state = state
        self.log.rollout = state.id
        state.controller_pid = os.getpid()
        self._save()

    def _save(self) -> None:
        assert self.state
        self.state.heartbeat = time.time()
        st.save(self.state, self.home)

    def _run(self, policy: Policy) -> st.RolloutState:
        s = self.state
        assert s is not None
        if s.analysis_started is None:
            s.analysis_started = time.time()
            s.next_due = {m.name: s.analysis_started + m.initial_delay for m in policy.analysis.metrics}
        try:
            self.source.prime()
        except MetricsUnavailable as err:
            self.say(f"metrics not readable yet: {err}")
        while not s.done:
            req = st.take_request(self.home)
            if req:
                (self._promote if req["action"] == "promote" else
                 lambda r: self._abort(r, RolloutPhase.ABORTED))(req.get("reason") or f"{req['action']} requested by operator")
                break
            if not self.backend.canary_alive():
                self._abort("canary process is down: its traffic failed over to stable", RolloutPhase.ABORTED)
                break
            self._measure(policy)
            if s.done:
                break
            self._advance(policy)
            self._save()
            time.sleep(self.tick)
        return s

    def _measure(self, policy: Policy) -> None:
        s = self.state
        assert s is not None
        now = time.time()
        windows: dict[float, Any] = {}
        taken = False
        for metric in policy.analysis.metrics:
            phases = s.phases.setdefault(metric.name, [])
            if now < s.next_due.get(metric.name, now) or (metric.count and len(phases) >= metric.count):
                continue
            lookback = metric.lookback
            try:
                if lookback not in windows:
                    windows[lookback] = self.source.window(now - lookback, now)
                m = analysis.measure(metric, windows[lookback], policy.analysis.min_sample_size)
            except MetricsUnavailable as err:
                m = analysis.Measurement(metric.name, metric.kind, MeasurementPhase.ERROR, str(err),
                                         query=analysis.promql(metric), window=(now - lookback, now), t=now)
            phases.append(m.phase)
            s.next_due[metric.name] = max(s.next_due.get(metric.name, now) + metric.interval, now + 0.5 * metric.interval)
            self.log.emit("measurement", source=self.source.name, weight=s.weight, **m.to_event())
            self.say(f"  {m.metric}: {m.phase} - {m.message}")
            taken = True
        if not taken:
            return
        self._traffic()
        outcome, reason = analysis.verdict(policy, s.phases, finished=False)
        if outcome == MeasurementPhase.FAILED:
            self._abort(reason, RolloutPhase.ABORTED)
        elif outcome == MeasurementPhase.INCONCLUSIVE:
            self._abort(reason, RolloutPhase.INCONCLUSIVE)

    def _advance(self, policy: Policy) -> None:
        s = self.state
        assert s is not None
        now = time.time()
        while s.step < len(policy.steps):
            step = policy.steps[s.step]
            if step.set_weight is not None:
                self._set_weight(step.set_weight, f"step {s.step}: setWeight {step.set_weight:g}")
            elif step.pause is not None and now < s.step_started + step.pause.duration:
                return
            s.step += 1
            s.step_started = now
            self._save()
        outcome, reason = analysis.verdict(policy, s.phases, finished=True)
        if outcome == MeasurementPhase.SUCCESSFUL:
            self._promote(f"all steps done and analysis passed: {reason}")
        else:
            self._abort(reason, RolloutPhase.INCONCLUSIVE if outcome != MeasurementPhase.FAILED else RolloutPhase.ABORTED)

    def _set_weight(self, weight: float, reason: str) -> None:
        assert self.state is not None
        self.backend.set_weight(weight)
        self.state.weight = weight
        self.log.emit("weight", canary=weight, reason=reason)
        self.say(f"canary weight {weight:g}% ({reason})")

    def _traffic(self) -> None:
        try:
            self.log.emit("traffic", totals=self.backend.traffic_totals())
        except Exception:  # noqa: BLE001 - traffic totals are for reports only
            pass

    def _abort(self, reason: str, phase: RolloutPhase) -> None:
        """Canary weight 0 first, then stop it; aliases untouched."""
        s = self.state
        assert s is not None
        self.log.emit("decision", decision="abort" if phase == RolloutPhase.ABORTED else "inconclusive", reason=reason)
        self.say(f"ABORT ({phase}): {reason}")
        try:
            self._set_weight(0, "rollback")
        except Exception as err:  # noqa: BLE001 - router down: stopping the canary still makes it safe
            self.log.emit("weight", canary=0, reason=f"rollback: router unreachable ({err}), canary stopped")
            s.weight = 0
        self._traffic()
        self.backend.stop_canary()
        self._finish(phase, reason)

    def _promote(self, reason: str) -> None:
        s = self.state
        assert s is not None
        self.log.emit("decision", decision="promote", reason=reason)
        self.say(f"PROMOTE version {s.candidate}: {reason}")
        promoted = False
        try:
            record = self.promoter(s.candidate, reason) if self.promoter else None
            promoted = self.promoter is not None
            self.log.emit("registry", action="promote", version=s.candidate, record=str(record) if record else None)
            self.backend.promote(s.candidate)
        except Exception as err:  # noqa: BLE001 - a failed promotion must not leave the canary in traffic
            if promoted and self.demoter:  # the alias moved but stable could not follow: move it back
                try:
                    self.demoter(s.candidate, f"deployment of the promotion failed: {err}")
                    self.log.emit("registry", action="rollback", version=s.candidate, reason=str(err))
                except Exception as undo:  # noqa: BLE001
                    self.log.emit("registry", action="rollback-failed", version=s.candidate, reason=str(undo))
            self._abort(f"promotion failed: {err}", RolloutPhase.ABORTED)
            return
        self._traffic()
        s.weight = 0
        self._finish(RolloutPhase.PROMOTED, reason)

    def _finish(self, phase: RolloutPhase, reason: str) -> None:
        s = self.state
        assert s is not None
        s.phase, s.reason, s.finished = phase, reason, time.time()
        self.log.emit("phase", phase=phase, reason=reason)
        self._save()
