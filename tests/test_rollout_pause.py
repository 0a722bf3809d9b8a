"""A pause without a duration (Argo's ``pause: {}``): the rollout holds, keeps measuring, and an operator's
``continue`` moves it on; what cannot wait for an operator (replay, trial runs) refuses it by name."""

from __future__ import annotations

import json
import os
import time

import pytest
from test_reconcile import ERRORS, Clock, Runtime, kinds, result
from typer.testing import CliRunner

from mlops_workbench.cli.main import app
from mlops_workbench.errors import InputError
from mlops_workbench.rollout import events, ops, replay, sim, timeline, trial
from mlops_workbench.rollout import reconcile as rc
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.controller import Controller
from mlops_workbench.rollout.policy import parse
from mlops_workbench.rollout.state import RolloutState
from mlops_workbench.workbench import Workbench

STEPS = [{"setWeight": 20}, {"pause": {}}, {"setWeight": 50}, {"pause": {"duration": 10}}]
HOLD = parse({"steps": STEPS, "analysis": {"minSampleSize": 20, "metrics": [ERRORS]}})


def fresh(policy=HOLD) -> RolloutState:
    return RolloutState(id="r1", candidate="7", policy=policy.model_dump(by_alias=True))


def held(now: float = 0.0) -> tuple[RolloutState, list]:
    """The state after the first call: weight 20, holding at the indefinite pause (step 1) since ``now``."""
    return rc.reconcile(fresh(), rc.Observations(), HOLD, now)


def paused_events(actions) -> list[rc.Emit]:
    return [a for a in actions if isinstance(a, rc.Emit) and a.type == "phase" and a.fields["phase"] == st.PAUSED]


def test_pause_without_a_duration_parses_renders_and_round_trips() -> None:
    assert HOLD.steps[1].pause is not None and HOLD.steps[1].pause.duration is None
    assert parse({"steps": [{"pause": {"duration": None}}], "analysis": HOLD.analysis.model_dump(by_alias=True)})
    assert parse(HOLD.model_dump(by_alias=True)) == HOLD
    assert HOLD.steps[3].pause is not None and HOLD.steps[3].pause.duration == 10.0  # durations still parse


def test_an_indefinite_pause_holds_for_as_long_as_it_takes_while_the_analysis_measures() -> None:
    state, actions = held(0.0)
    assert (state.step, state.weight, state.waiting_since) == (1, 20.0, 0.0) and actions[-1] == rc.Wait(2.0)
    assert state.waiting == st.waiting_text(1) and "workbench rollout continue" in state.waiting
    emitted = paused_events(actions)
    assert emitted == [rc.Emit("phase", {"phase": "Paused", "step": 1, "reason": st.waiting_text(1)})]
    assert rc.Say(st.waiting_text(1)) in actions
    now, measured = 2.0, 0
    while now < 100_000.0:  # a day and more: nothing moves on by itself
        state, actions = rc.reconcile(state, rc.Observations(measurements=(result("successful"),)), HOLD, now)
        measured += 1
        assert state.phase == "Progressing" and state.step == 1 and state.weight == 20.0
        assert not paused_events(actions) and not any(isinstance(a, rc.SetWeight) for a in actions)
        assert actions[-1] == rc.Wait(state.next_due["error-rate"]) and state.next_due["error-rate"] > now
        now += 2.0 if now < 1000 else 5000.0
    assert len(state.phases["error-rate"]) == measured and state.waiting_since == 0.0


def test_a_failed_analysis_during_the_hold_aborts() -> None:
    state, _ = held(0.0)
    for now in (2.0, 4.0):  # failureLimit 1: the second failure ends it
        state, actions = rc.reconcile(state, rc.Observations(measurements=(result("failed"),)), HOLD, now)
    assert state.phase == "Aborted" and "failureLimit 1" in state.reason and state.weight == 0
    assert rc.SetWeight(0, "rollback", rollback=True) in actions and state.waiting is None


def test_continue_moves_on_and_the_rollout_promotes_after_the_steps_left() -> None:
    state, _ = held(0.0)
    state, _ = rc.reconcile(state, rc.Observations(measurements=(result("successful"),)), HOLD, 2.0)
    state, actions = rc.reconcile(
        state, rc.Observations(request=rc.Request("continue", "dashboards look fine")), HOLD, 500.0
    )
    assert actions[:2] == [
        rc.Emit("decision", {"decision": "continue", "reason": "dashboards look fine"}),
        rc.Say("CONTINUE past step 1 (pause): dashboards look fine"),
    ]
    assert rc.SetWeight(50.0, "step 2: setWeight 50") in actions
    assert (state.step, state.weight, state.step_started, state.waiting_since) == (3, 50.0, 500.0, None)
    assert state.phase == "Progressing" and actions[-1] == rc.Wait(4.0)  # the overdue measurement is next
    state, actions = rc.reconcile(state, rc.Observations(), HOLD, 510.0)
    assert kinds(actions)[-3:] == ["Emit", "Say", "Promote"]
    done, _ = rc.reconcile(state, rc.Observations(promotion=rc.PromotionOutcome(actions[-1].reason)), HOLD, 510.0)
    assert done.phase == "Promoted"


def test_continue_ends_a_timed_pause_early() -> None:
    timed = parse({"steps": [{"setWeight": 20}, {"pause": {"duration": "1h"}}], "analysis": HOLD.analysis.model_dump()})
    state, _ = rc.reconcile(fresh(timed), rc.Observations(), timed, 0.0)
    state, _ = rc.reconcile(state, rc.Observations(measurements=(result("successful"),)), timed, 2.0)
    state, actions = rc.reconcile(state, rc.Observations(request=rc.Request("continue")), timed, 3.0)
    assert actions[0] == rc.Emit("decision", {"decision": "continue", "reason": "continue requested by operator"})
    assert state.step == 2 and actions[-1] == rc.Promote("7", actions[-1].reason)  # the last step: promote now


def test_continue_outside_a_pause_changes_nothing_but_says_so() -> None:
    start = fresh()  # step 0 is a setWeight
    state, actions = rc.reconcile(start, rc.Observations(request=rc.Request("continue", "go")), HOLD, 1.0)
    assert state is start and actions == [
        rc.Say("continue ignored: step 0 is not a pause, so there is nothing to continue (go)")
    ]
    over, _ = held(0.0)
    over.step = len(HOLD.steps)  # a promotion in flight
    state, actions = rc.reconcile(over, rc.Observations(request=rc.Request("continue")), HOLD, 1.0)
    assert state == over and kinds(actions) == ["Say"] and "the steps are over" in actions[0].text


def test_with_every_count_used_up_the_hold_rechecks_every_shortest_interval() -> None:
    counted = parse({"steps": STEPS, "analysis": {"minSampleSize": 20, "metrics": [{**ERRORS, "count": 1}]}})
    state, _ = rc.reconcile(fresh(counted), rc.Observations(), counted, 0.0)
    state, actions = rc.reconcile(state, rc.Observations(measurements=(result("successful"),)), counted, 2.0)
    assert rc.due(state, counted, 1e9) == [] and actions[-1] == rc.Wait(4.0)


def test_the_controller_holds_until_a_continue_request_then_promotes(tmp_path) -> None:
    clock = Clock()
    wb = Workbench.from_env(tmp_path)
    runtime = Runtime(clock, sim.Scenario(rps=60, seed=3))

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now >= 1120.0 and st.load(wb).step == 1 and not wb.layout.rollout_request.exists():
            st.request(wb, "continue", "held for ten minutes")

    ctl = Controller(wb, runtime, runtime, promoter=lambda v, r: None, clock=clock, sleep=sleep)
    ctl.tick = 5.0
    patient = parse(
        {
            **HOLD.model_dump(by_alias=True),
            "analysis": {"minSampleSize": 20, "metrics": [{**ERRORS, "inconclusiveLimit": 100}]},
        }
    )
    state = ctl.start(patient, "7")
    assert state.phase == "Promoted" and runtime.promoted == "7"
    evs = events.read(wb, rollout=state.id)
    assert [e.phase for e in evs if isinstance(e, events.PhaseEvent)] == ["Paused", "Promoted"]
    continued = [e for e in evs if isinstance(e, events.DecisionEvent) and e.decision == "continue"]
    assert len(continued) == 1 and continued[0].reason == "held for ten minutes"
    assert sum(isinstance(e, events.MeasurementEvent) for e in evs) >= 60  # measured every 2 s while it held


def test_replay_and_trial_refuse_an_indefinite_pause_by_name() -> None:
    traffic = replay.Traffic(rps=60)
    with pytest.raises(InputError, match=r"give step 1's pause a duration to replay it"):
        replay.replay(HOLD, traffic, seed=0)
    with pytest.raises(InputError, match=r"step 1 .* is an indefinite pause"):
        trial.simulate(lambda *a, **k: "promoted", HOLD, sim.Scenario(rps=60))
    with pytest.raises(InputError, match=r"give step 1's pause a duration to run a trial rollout with it"):
        trial.live(lambda *a, **k: "promoted", HOLD, backend=None)  # type: ignore[arg-type]


# --- the operator's side: request file, ops and CLI ----------------------------------------------------------
def test_an_unknown_request_names_continue(tmp_path) -> None:
    with pytest.raises(InputError, match="use 'abort', 'promote' or 'continue'"):
        st.request(Workbench.from_env(tmp_path), "skip")
    assert st.request_action("continue") == "continue" and st.request_action("skip") == "abort"


def live_rollout(wb: Workbench) -> RolloutState:
    """A saved rollout holding at the indefinite pause, driven (as far as anyone can tell) by this process."""
    state, _ = held(time.time())
    state.controller_pid, state.heartbeat = os.getpid(), time.time()
    st.save(wb, state)
    return state


def test_workbench_rollout_continue_writes_the_request_and_status_shows_the_wait(home) -> None:
    wb = Workbench.from_env(home)
    live_rollout(wb)
    out = CliRunner().invoke(app, ["rollout", "status", "--json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.output)["waiting"] == st.waiting_text(1)
    out = CliRunner().invoke(app, ["rollout", "continue", "--reason", "metrics look fine", "--wait", "0"])
    assert out.exit_code == 0, out.output
    assert json.loads(wb.layout.rollout_request.read_text()) == {"action": "continue", "reason": "metrics look fine"}
    assert "asked rollout r1 to go on past step 1" in out.output
    helps = CliRunner().invoke(app, ["rollout", "--help"]).output
    promote = " ".join(CliRunner().invoke(app, ["rollout", "promote", "--help"]).output.split())
    assert "continue" in helps and "`promote --full`" in promote


def test_continue_without_a_controller_waits_for_resume_and_outside_a_pause_says_so(home) -> None:
    wb = Workbench.from_env(home)
    assert "nothing to continue" in ops.proceed(wb)
    state, _ = held(0.0)
    st.save(wb, state)  # nobody drives it
    assert "waits for `workbench rollout resume`" in ops.proceed(wb, "later")
    assert st.take_request(wb) == {"action": "continue", "reason": "later"}
    state = live_rollout(wb)
    state.step = 2  # a setWeight
    st.save(wb, state)
    assert "step 2 of rollout r1 is not a pause" in ops.proceed(wb, wait_s=0)


def test_the_incident_reads_the_final_decision_not_an_operators_continue() -> None:
    lines = [
        {"t": 0.0, "type": "start", "rollout": "r1", "bound_s": 6.0},
        {"t": 1.0, "type": "weight", "rollout": "r1", "canary": 20},
        {"t": 50.0, "type": "decision", "rollout": "r1", "decision": "continue", "reason": "held long enough"},
        {"t": 50.0, "type": "weight", "rollout": "r1", "canary": 50},
        {"t": 52.0, "type": "decision", "rollout": "r1", "decision": "abort", "reason": "error-rate failed"},
        {"t": 52.5, "type": "weight", "rollout": "r1", "canary": 0},
    ]
    incident = timeline.incident([events.parse(line) for line in lines])
    assert (incident["decision"], incident["reason"]) == ("abort", "error-rate failed")
    assert incident["time_to_restore_s"] == 51.5
