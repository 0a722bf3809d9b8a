"""Rollout drills on the local runtime (real model servers, router, a rollout controller in its own process that
the setup kills, Prometheus for metrics-down): setup, check, fix, guards, reset."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_workbench import drills, procs, tracking
from mlops_workbench.rollout import prometheus
from mlops_workbench.rollout import state as st

pytestmark = pytest.mark.serial

@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("drills-rollout-home")
    tracking.up(port=procs.free_port(), home=home, timeout=300)
    yield home
    procs.stop_all(home)


def failed(drill, ctx) -> set[str]:
    return {o.id for o in drill.grade(ctx) if not o.passed}


@pytest.mark.slow
def test_stuck_canary(home):
    drill = drills.get("stuck-canary")
    ctx = drill.context(home)
    drill.reset(ctx)
    drill.setup(ctx)
    state = st.load(home)
    assert state.phase == st.RolloutPhase.PROGRESSING and state.weight == 25 and not st.controller_alive(state)
    assert failed(drill, ctx) == {"rollout-decided", "no-unwatched-canary", "postmortem"}
    pin = drill.destructive_fixes()["pin-canary-weight-0"]
    pin(ctx)
    assert {"rollout-decided", "no-unwatched-canary"} <= failed(drill, ctx)
    drill.reference_fix(ctx)
    assert failed(drill, ctx) == set()
    assert st.load(home).phase == st.RolloutPhase.ABORTED
    drill.destructive_fixes()["stop-every-service"](ctx)
    assert "users-served" in failed(drill, ctx)
    drill.reset(ctx)
    assert all(procs.get(s, home) is None for s in drill.services(ctx))


@pytest.mark.slow
@pytest.mark.skipif(not prometheus.available(), reason="needs the prometheus binary (.ci/run installs it)")
def test_metrics_down(home):
    drill = drills.get("metrics-down")
    ctx = drill.context(home)
    drill.reset(ctx)
    tracking.up(home=home)
    drill.setup(ctx)
    assert prometheus.url(home) is None and st.load(home).phase != st.RolloutPhase.PROMOTED
    assert failed(drill, ctx) == {"metrics-restored", "decided-on-data", "postmortem"}
    drill.destructive_fixes()["promote-blind"](ctx)
    assert "never-promoted-blind" in failed(drill, ctx)
    drill.reset(ctx)
    drill.setup(ctx)
    drill.reference_fix(ctx)
    assert failed(drill, ctx) == set()
    drill.reset(ctx)
    assert prometheus.url(home) is None
