"""The rollout policy, decided by the pure reconcile step on a fake clock (no process, no sleep).

Two kinds of test: single calls with hand-made observations (the exact actions and phases),
and whole rollouts driven against the simulated runtime of :mod:`mlops_workbench.rollout.sim`,
whose virtual clock only moves when the driver says so.
"""

from __future__ import annotations

import copy

import pytest

from mlops_workbench.rollout import analysis, events, sim
from mlops_workbench.rollout import reconcile as rc
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.analysis import Measurement
from mlops_workbench.rollout.controller import Controller
from mlops_workbench.rollout.metrics import MetricsUnavailable, Snapshot
from mlops_workbench.rollout.policy import parse
from mlops_workbench.rollout.state import RolloutState
from mlops_workbench.workbench import Workbench

LIMITS = {
    "interval": 2,
    "window": 4,
    "initialDelay": 2,
    "failureLimit": 1,
    "consecutiveErrorLimit": 2,
    "inconclusiveLimit": 3,
}
STEPS = [{"setWeight": 20}, {"pause": {"duration": 10}}, {"setWeight": 50}, {"pause": {"duration": 10}}]
ERRORS = {"name": "error-rate", "kind": "errorRate", **LIMITS, "condition": {"max": 0.02}}
LATENCY = {"name": "latency-p99", "kind": "latencyP99", **LIMITS, "condition": {"maxIncrease": 0.5, "marginMs": 20}}
ONE = parse({"steps": STEPS, "analysis": {"minSampleSize": 20, "metrics": [ERRORS]}})
TWO = parse({"steps": STEPS, "analysis": {"minSampleSize": 20, "metrics": [ERRORS, LATENCY]}})


def fresh(policy=ONE) -> RolloutState:
    return RolloutState(id="r1", candidate="7", policy=policy.model_dump(by_alias=True))


def result(phase: str, metric: str = "error-rate") -> Measurement:
    return Measurement(metric, "errorRate", phase, f"made-up {phase} result")


def kinds(actions) -> list[str]:
    return [type(a).__name__ for a in actions]


def at_pause(now: float = 0.0) -> RolloutState:
    """The state after the first call: weight 20, holding the first pause since ``now``."""
    state, _ = rc.reconcile(fresh(), rc.Observations(), ONE, now)
    return state


def measured(state: RolloutState, phases: list[str], start: float = 2.0) -> tuple[RolloutState, list, float]:
    """Feed one result per due time (2 s apart) and return the last state, its actions and the time."""
    now, actions = start, []
    for phase in phases:
        state, actions = rc.reconcile(state, rc.Observations(measurements=(result(phase),)), ONE, now)
        now += 2.0
    return state, actions, now - 2.0


# --- single calls --------------------------------------------------------------------------------------
def test_first_call_sets_the_first_weight_and_waits_for_the_first_measurement() -> None:
    state, actions = rc.reconcile(fresh(), rc.Observations(), ONE, 100.0)
    assert kinds(actions) == ["SetWeight", "Save", "Save", "Wait"]
    assert actions[0] == rc.SetWeight(20.0, "step 0: setWeight 20")
    assert actions[-1] == rc.Wait(102.0)  # initialDelay 2 s comes before the end of the 10 s pause
    assert (state.step, state.weight, state.step_started, state.analysis_started) == (1, 20.0, 100.0, 100.0)
    assert state.next_due == {"error-rate": 102.0} and state.phase == "Progressing"


def test_the_input_state_is_never_changed_and_a_finished_rollout_does_nothing() -> None:
    before = at_pause()
    kept = copy.deepcopy(before)
    after, _ = rc.reconcile(before, rc.Observations(request=rc.Request("abort")), ONE, 5.0)
    assert before == kept and after.phase == "Aborted"
    assert rc.reconcile(after, rc.Observations(request=rc.Request("promote")), ONE, 6.0) == (after, [])


def test_a_pause_holds_exactly_its_duration() -> None:
    state = at_pause(0.0)
    state.next_due = {"error-rate": 1e9}  # keep the analysis out of the way
    held, actions = rc.reconcile(state, rc.Observations(), ONE, 9.999)
    assert held.step == 1 and not any(isinstance(a, rc.SetWeight) for a in actions)
    assert actions[-1] == rc.Wait(10.0)
    moved, actions = rc.reconcile(held, rc.Observations(), ONE, 10.0)
    assert rc.SetWeight(50.0, "step 2: setWeight 50") in actions
    assert (moved.step, moved.weight, moved.step_started) == (3, 50.0, 10.0) and actions[-1] == rc.Wait(20.0)


def test_a_measurement_is_logged_with_the_weight_and_the_next_one_is_scheduled() -> None:
    m = result("successful")
    state, actions = rc.reconcile(at_pause(), rc.Observations(measurements=(m,), source="fake"), ONE, 2.0)
    assert state.phases == {"error-rate": ["successful"]} and state.next_due["error-rate"] == 4.0
    emitted = next(a for a in actions if isinstance(a, rc.Emit))
    assert emitted == rc.Emit("measurement", {"source": "fake", "weight": 20.0, **m.to_event()})
    assert kinds(actions)[:3] == ["Emit", "Say", "RecordTraffic"]
    late, _ = rc.reconcile(state, rc.Observations(measurements=(m,)), ONE, 7.0)  # 3 s late: not twice in a row
    assert late.next_due["error-rate"] == 8.0


def test_a_metric_not_due_or_without_a_result_is_not_recorded() -> None:
    early, actions = rc.reconcile(at_pause(), rc.Observations(measurements=(result("failed"),)), ONE, 1.0)
    assert early.phases == {} and not any(isinstance(a, rc.RecordTraffic) for a in actions)
    skipped, _ = rc.reconcile(at_pause(), rc.Observations(), ONE, 2.0)  # due, but nothing measured and no outage
    assert skipped.phases == {} and skipped.next_due["error-rate"] == 2.0


def test_failed_measurements_abort_once_they_exceed_the_failure_limit() -> None:
    state, actions, now = measured(at_pause(), ["failed"])
    assert state.phase == "Progressing"  # failureLimit 1: one failure is tolerated
    state, actions, now = measured(state, ["failed"], start=4.0)
    assert state.phase == "Aborted" and "failureLimit 1" in state.reason and state.finished == now
    assert kinds(actions) == [
        "Emit",
        "Say",
        "RecordTraffic",
        "Emit",
        "Say",
        "SetWeight",
        "RecordTraffic",
        "StopCanary",
        "Emit",
        "Save",
    ]
    assert actions[3] == rc.Emit("decision", {"decision": "abort", "reason": state.reason})
    assert actions[5] == rc.SetWeight(0, "rollback", rollback=True) and state.weight == 0
    assert actions[-2] == rc.Emit("phase", {"phase": "Aborted", "reason": state.reason})
    assert actions[-1] == rc.Save(state)


def test_inconclusive_results_end_inconclusive_past_the_limit_never_failed() -> None:
    state, _, _ = measured(at_pause(), ["inconclusive"] * 3 + ["successful"])
    assert state.phase == "Progressing"  # inconclusiveLimit 3
    state, actions, _ = measured(at_pause(), ["inconclusive"] * 4)
    assert state.phase == "Inconclusive" and "inconclusiveLimit 3" in state.reason
    assert rc.Emit("decision", {"decision": "inconclusive", "reason": state.reason}) in actions
    assert not any(isinstance(a, rc.Promote) for a in actions)


def test_metrics_unavailable_counts_as_no_data_until_the_consecutive_error_limit() -> None:
    down = rc.Observations(metrics_unavailable="prometheus down")
    state, now = at_pause(), 2.0
    for expected in ("Progressing", "Progressing", "Inconclusive"):  # consecutiveErrorLimit 2: the third ends it
        state, actions = rc.reconcile(state, down, ONE, now)
        assert state.phase == expected
        now += 2.0
    assert "consecutiveErrorLimit 2" in state.reason and state.phases["error-rate"] == ["error"] * 3
    recorded = next(a for a in actions if isinstance(a, rc.Emit) and a.type == "measurement")
    assert recorded.fields["message"] == "prometheus down" and recorded.fields["window"] == (2.0, 6.0)
    assert "increase(workbench_router_requests_total" in recorded.fields["query"]


def test_errors_broken_by_a_success_are_not_consecutive() -> None:
    state, _, _ = measured(at_pause(), ["error", "error", "successful", "error", "error"])
    assert state.phase == "Progressing"


def test_missing_data_never_promotes_at_the_end_of_the_steps() -> None:
    state = at_pause()
    for now in (10.0, 20.0):  # no metric ever measured: the steps still end
        state, actions = rc.reconcile(state, rc.Observations(), ONE, now)
    assert state.phase == "Inconclusive" and "missing data never promotes" in state.reason
    assert not any(isinstance(a, rc.Promote) for a in actions)


def test_a_metric_with_a_count_stops_being_due() -> None:
    counted = parse({"steps": STEPS, "analysis": {"minSampleSize": 20, "metrics": [{**ERRORS, "count": 2}]}})
    state = rc.begin_analysis(fresh(counted), counted, 0.0)
    state.phases = {"error-rate": ["successful", "successful"]}
    assert rc.due(state, counted, 100.0) == []
    state.phases["error-rate"].pop()
    assert [m.name for m in rc.due(state, counted, 100.0)] == ["error-rate"]


def test_all_steps_done_with_a_passing_analysis_promotes_in_two_calls() -> None:
    state, _, _ = measured(at_pause(), ["successful"])
    state, _ = rc.reconcile(state, rc.Observations(), ONE, 10.0)
    state, actions = rc.reconcile(state, rc.Observations(), ONE, 20.0)
    assert state.phase == "Progressing" and state.step == 4
    assert kinds(actions)[-3:] == ["Emit", "Say", "Promote"] and actions[-1].version == "7"
    assert actions[-1].reason.startswith("all steps done and analysis passed")
    done, actions = rc.reconcile(state, rc.Observations(promotion=rc.PromotionOutcome("ok")), ONE, 20.5)
    assert done.phase == "Promoted" and done.weight == 0 and done.finished == 20.5 and done.reason == "ok"
    assert kinds(actions) == ["RecordTraffic", "Emit", "Save"]


@pytest.mark.parametrize("moved", [True, False])
def test_a_promotion_that_fails_to_deploy_rolls_back(moved: bool) -> None:
    outcome = rc.PromotionOutcome("ok", error="stable could not load it", alias_moved=moved)
    state, actions = rc.reconcile(at_pause(), rc.Observations(promotion=outcome), ONE, 3.0)
    assert state.phase == "Aborted" and state.reason == "promotion failed: stable could not load it"
    undo = [a for a in actions if isinstance(a, rc.Demote)]
    assert undo == (
        [rc.Demote("7", "deployment of the promotion failed: stable could not load it", "stable could not load it")]
        if moved
        else []
    )
    assert kinds(actions).index("SetWeight") < kinds(actions).index("StopCanary")


def test_operator_requests_come_before_everything_else() -> None:
    both = rc.Observations(
        request=rc.Request("abort", "learner pressed abort"), canary_alive=False, measurements=(result("failed"),)
    )
    state, actions = rc.reconcile(at_pause(), both, ONE, 2.0)
    assert state.phase == "Aborted" and state.reason == "learner pressed abort" and state.phases == {}
    state, actions = rc.reconcile(at_pause(), rc.Observations(request=rc.Request("promote")), ONE, 3.0)
    assert state.phase == "Progressing" and actions[-1] == rc.Promote("7", "promote requested by operator")


def test_a_dead_canary_aborts_at_once() -> None:
    state, actions = rc.reconcile(at_pause(), rc.Observations(canary_alive=False), ONE, 4.0)
    assert state.phase == "Aborted" and state.reason == rc.CANARY_DOWN and rc.StopCanary() in actions


def test_a_prediction_shift_fails_the_analysis() -> None:
    shift = parse(
        {
            "steps": STEPS,
            "analysis": {
                "minSampleSize": 20,
                "metrics": [
                    {
                        "name": "prediction-shift",
                        "kind": "predictionShift",
                        **LIMITS,
                        "failureLimit": 0,
                        "condition": {"max": 0.2},
                    }
                ],
            },
        }
    )
    win = Snapshot(t=2.0, start=-2.0)
    win.predictions = {
        "canary": {"setosa": 90.0, "versicolor": 5.0, "virginica": 5.0},
        "stable": {"setosa": 100.0, "versicolor": 100.0, "virginica": 100.0},
    }
    m = analysis.measure(shift.analysis.metrics[0], win, 20)
    state, _ = rc.reconcile(fresh(shift), rc.Observations(), shift, 0.0)
    state, _ = rc.reconcile(state, rc.Observations(measurements=(m,)), shift, 2.0)
    assert state.phase == "Aborted" and "prediction-shift" in state.reason


# --- whole rollouts on the simulated runtime -----------------------------------------------------------
def drive(policy, scenario: sim.Scenario, down_at: float | None = None, tick: float = 0.25):
    """Run reconcile against a simulation until the rollout ends; returns (state, [(t, action)], simulation)."""
    world = sim.Simulation(scenario, max_seconds=300)
    state, log = fresh(policy), []
    while not state.done:
        now = world.clock()
        obs = observe(world, state, policy, now, alive=down_at is None or now < down_at)
        state, actions = rc.reconcile(state, obs, policy, now)
        for action in actions:
            if isinstance(action, rc.SetWeight):
                world.router.set_weight(action.percent)
            if isinstance(action, rc.Promote):
                world.promote()
                state, more = rc.reconcile(
                    state, rc.Observations(promotion=rc.PromotionOutcome(action.reason)), policy, now
                )
                actions = actions + more
        log += [(now, a) for a in actions]
        wait = next((a.until for a in actions if isinstance(a, rc.Wait)), now + tick)
        if not state.done:
            world.sleep(min(tick, wait - now))
    return state, log, world


def observe(world: sim.Simulation, state: RolloutState, policy, now: float, alive: bool) -> rc.Observations:
    if not alive:
        return rc.Observations(canary_alive=False)
    taken, outage = [], None
    for metric in rc.due(state, policy, now):
        try:
            win = world.metrics.window(max(now - metric.lookback, 0.0), now)
        except MetricsUnavailable as err:
            outage = str(err)
            continue
        taken.append(analysis.measure(metric, win, policy.analysis.min_sample_size))
    return rc.Observations(measurements=tuple(taken), metrics_unavailable=outage, source=world.name)


def weights(log) -> list[tuple[float, float]]:
    return [(t, a.percent) for t, a in log if isinstance(a, rc.SetWeight)]


def test_a_healthy_canary_walks_every_step_on_time_and_is_promoted() -> None:
    state, log, world = drive(TWO, sim.Scenario(rps=60, seed=3))
    assert state.phase == "Promoted" and world.promoted_at == [20.0]
    assert weights(log) == [(0.0, 20.0), (10.0, 50.0)]
    assert all(p == "successful" for ps in state.phases.values() for p in ps)


@pytest.mark.parametrize(
    "fault, metric", [({"fault_error_rate": 0.3}, "error-rate"), ({"fault_slow": True}, "latency-p99")]
)
def test_a_fault_is_rolled_back_within_the_policy_bound(fault: dict, metric: str) -> None:
    state, log, world = drive(TWO, sim.Scenario(rps=60, seed=4, fault_at=3.0, **fault))
    assert state.phase == "Aborted" and metric in state.reason and world.promoted_at == []
    restored = weights(log)[-1]
    assert restored[1] == 0 and restored[0] - 3.0 <= TWO.detection_bound()


def test_metrics_down_the_whole_time_is_inconclusive_and_never_promotes() -> None:
    state, log, world = drive(TWO, sim.Scenario(rps=60, metrics_down=True))
    assert state.phase == "Inconclusive" and "consecutiveErrorLimit" in state.reason
    assert world.promoted_at == [] and weights(log)[-1] == (6.0, 0)  # errors at 2, 4 and 6 s


def test_a_canary_crash_is_rolled_back_on_the_next_tick() -> None:
    state, log, _ = drive(TWO, sim.Scenario(rps=60, seed=5), down_at=5.1)
    assert state.phase == "Aborted" and state.reason == rc.CANARY_DOWN
    assert weights(log)[-1] == (5.25, 0)


def test_too_little_traffic_is_inconclusive_not_failed() -> None:
    state, _, world = drive(TWO, sim.Scenario(rps=2, error_rate=0.5, seed=6))
    assert state.phase == "Inconclusive" and world.promoted_at == []
    assert "failed" not in {p for ps in state.phases.values() for p in ps}


# --- the controller loop on a fake clock -----------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now, self.naps = 1000.0, []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.naps.append(seconds)
        self.now += seconds


class Runtime:
    """A backend and metrics source in one, answering from a simulation that follows the clock."""

    model_name, name = "iris", "simulation"

    def __init__(self, clock: Clock, scenario: sim.Scenario) -> None:
        self.clock, self.world, self.stopped, self.promoted = clock, sim.Simulation(scenario), False, None

    def _sync(self) -> None:
        if self.clock.now - 1000.0 > self.world.now:
            self.world.sleep(self.clock.now - 1000.0 - self.world.now)

    def window(self, start: float, end: float) -> Snapshot:
        self._sync()
        return self.world.metrics.window(max(start - 1000.0, 0.0), end - 1000.0)

    def prime(self) -> None:
        pass

    def deploy_canary(self, version: str) -> None:
        pass

    def set_weight(self, percent: float) -> None:
        self._sync()
        self.world.router.set_weight(percent)

    def weight(self) -> float:
        return self.world.weight_now

    def canary_alive(self) -> bool:
        return not self.stopped

    def stop_canary(self) -> None:
        self.stopped = True

    def promote(self, version: str) -> None:
        self.promoted = version

    def traffic_totals(self) -> dict[str, dict[str, float]]:
        return {}


def test_the_controller_loop_runs_a_whole_rollout_on_a_fake_clock(tmp_path) -> None:
    clock = Clock()
    runtime = Runtime(clock, sim.Scenario(rps=60, seed=3))
    promoted: list[str] = []
    ctl = Controller(
        Workbench.from_env(tmp_path),
        runtime,
        runtime,
        promoter=lambda v, r: promoted.append(v),
        clock=clock,
        sleep=clock.sleep,
    )
    state = ctl.start(TWO, "7")
    assert state.phase == "Promoted" and promoted == ["7"] and runtime.promoted == "7"
    assert clock.now == pytest.approx(1020.0) and max(clock.naps) <= ctl.tick
    types = [e.type for e in events.read(Workbench.from_env(tmp_path), rollout=state.id)]
    assert types[0] == "start" and types.count("weight") == 2 and types[-3:] == ["registry", "traffic", "phase"]


def test_operator_overrides_work_without_a_running_controller(tmp_path) -> None:
    clock = Clock()
    runtime = Runtime(clock, sim.Scenario(rps=60))
    calls: list[tuple[str, str]] = []
    st.save(Workbench.from_env(tmp_path), at_pause())
    ctl = Controller(
        Workbench.from_env(tmp_path), runtime, runtime, promoter=lambda v, r: calls.append((v, r)), clock=clock
    )
    state = ctl.promote("looks fine")
    assert state.phase == "Promoted" and calls == [("7", "looks fine")] and runtime.promoted == "7"
    assert st.load(Workbench.from_env(tmp_path)).phase == "Promoted"
    st.save(Workbench.from_env(tmp_path), at_pause())
    runtime.set_weight(20)
    state = Controller(Workbench.from_env(tmp_path), runtime, runtime, clock=clock).abort("stop it")
    assert state.phase == "Aborted" and state.reason == "stop it" and runtime.weight() == 0 and runtime.stopped
    assert st.load(Workbench.from_env(tmp_path)).finished == clock.now


def test_a_window_never_reaches_back_before_the_rollouts_analysis_began() -> None:
    """The router's canary counters carry on from one rollout to the next: the first windows are cut short."""
    metric = TWO.analysis.metrics[0]
    state = RolloutState.new("7", {}, "6")
    assert rc.window(state, metric, 500.0) == (500.0 - metric.lookback, 500.0)  # no analysis yet: the lookback
    state.analysis_started = 498.0
    assert rc.window(state, metric, 500.0) == (498.0, 500.0)
    assert rc.window(state, metric, 498.0 + 2 * metric.lookback) == (
        498.0 + metric.lookback,
        498.0 + 2 * metric.lookback,
    )


def test_the_controller_asks_for_no_traffic_from_before_its_analysis(tmp_path) -> None:
    clock = Clock()
    runtime = Runtime(clock, sim.Scenario(rps=60, seed=3))
    asked: list[tuple[float, float]] = []
    read = runtime.window

    def window(start: float, end: float) -> Snapshot:
        asked.append((start, end))
        return read(start, end)

    runtime.window = window  # type: ignore[method-assign]
    ctl = Controller(
        Workbench.from_env(tmp_path), runtime, runtime, promoter=lambda v, r: None, clock=clock, sleep=clock.sleep
    )
    state = ctl.start(TWO, "7")
    assert state.phase == "Promoted" and state.analysis_started is not None
    assert asked and min(start for start, _ in asked) == state.analysis_started
    assert asked[0][1] - asked[0][0] < TWO.analysis.metrics[0].lookback  # the first window was cut
