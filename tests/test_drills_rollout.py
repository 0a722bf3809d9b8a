"""Rollout drills on the local runtime (real model servers, router, a rollout controller in its own process that
the setup kills, Prometheus for metrics-down): setup, check, fix, guards, reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_workbench import drills, procs, tracking
from mlops_workbench.drills import grading, variants
from mlops_workbench.rollout import prometheus
from mlops_workbench.rollout import state as st
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.serial


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("drills-rollout-home")
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)
    yield home
    procs.stop_all(Workbench.from_env(home))


def failed(drill, ctx) -> set[str]:
    return {o.id for o in grading.outcomes(drill, ctx) if not o.passed}


@pytest.mark.slow
def test_stuck_canary(home, wb):
    drill = drills.get("stuck-canary")
    ctx = drill.context(wb)
    drill.reset(ctx)
    seed = variants.seeds(drill.variants, drill.name)["canary-at-25"]
    drill.prepare(ctx, seed)
    state = st.load(wb)
    assert state.phase == st.RolloutPhase.PROGRESSING and state.weight == 25 and not st.controller_alive(state)
    assert failed(drill, ctx) == {"rollout-decided", "no-unwatched-canary", "postmortem"}
    pin = drill.destructive_fixes()["pin-canary-weight-0"]
    pin(ctx)
    assert {"rollout-decided", "no-unwatched-canary"} <= failed(drill, ctx)
    drill.reference_fix(ctx)
    assert failed(drill, ctx) == set()
    assert st.load(wb).phase == st.RolloutPhase.ABORTED
    drill.destructive_fixes()["stop-every-service"](ctx)
    assert "users-served" in failed(drill, ctx)
    drill.reset(ctx)
    assert all(procs.get(wb, s) is None for s in drill.services(ctx))


@pytest.mark.slow
@pytest.mark.skipif(not prometheus.available(), reason="needs the prometheus binary (.ci/run installs it)")
def test_metrics_down(home, wb):
    drill = drills.get("metrics-down")
    ctx = drill.context(wb)
    drill.reset(ctx)
    tracking.up(wb)
    drill.prepare(ctx, 0)
    assert prometheus.url(wb) is None and st.load(wb).phase != st.RolloutPhase.PROMOTED
    assert failed(drill, ctx) == {"metrics-restored", "decided-on-data", "postmortem"}
    drill.destructive_fixes()["promote-blind"](ctx)
    assert "never-promoted-blind" in failed(drill, ctx)
    drill.reset(ctx)
    drill.prepare(ctx, 1)
    drill.reference_fix(ctx)
    assert failed(drill, ctx) == set()
    drill.reset(ctx)
    assert prometheus.url(wb) is None


@pytest.mark.slow
def test_stalled_canary_aborting_only_stops_the_symptom(home, wb):
    """The analysis can never conclude: aborting ends the exposure but leaves the cause, so the state check on a
    decision taken on data fails and a post-mortem that stops there earns part; the full repair passes."""
    from mlops_workbench.drills import grading, postmortem
    from mlops_workbench.drills.causes import Change, RootCause

    drill = drills.get("stalled-canary")
    ctx = drill.context(wb)
    drill.reset(ctx)
    drill.prepare(ctx, variants.seeds(drill.variants, drill.name)["analysis-sample-size"])
    state = st.load(wb)
    assert state.phase == st.RolloutPhase.PROGRESSING and st.controller_alive(state)
    assert failed(drill, ctx) == {"rollout-decided", "decided-on-data", "postmortem"}
    drill.destructive_fixes()["abort-only"](ctx)
    assert failed(drill, ctx) == {"decided-on-data", "postmortem"}
    truth = drill.truth(ctx)
    symptom_only = postmortem.from_truth(truth).model_copy(
        update={"root_cause": RootCause.ROLLOUT_STUCK, "changes": [Change.ROLLOUT_ABORTED]}
    )
    partial = postmortem.grade(symptom_only, truth)
    assert 0 < partial.share < 1 and any("only stops the symptom" in p for p in partial.problems)
    drill.reset(ctx)
    drill.prepare(ctx, variants.seeds(drill.variants, drill.name)["canary-weight"])
    drill.reference_fix(ctx)
    outcomes, grade = grading.evaluate(drill, ctx)
    assert [o.id for o in outcomes if not o.passed] == [] and grade.share == 1
    drill.reset(ctx)
    assert all(procs.get(wb, s) is None for s in drill.services(ctx))
