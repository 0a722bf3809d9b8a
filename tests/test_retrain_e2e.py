"""The whole loop of lab 07's release half, for real: a data commit in the learner's workspace, a retrain caused by
an alert (dvc repro, MLflow run with lineage, registered version, gate on a fresh window), a shadow fed by live
traffic through the router, a canary driven by lab 04's controller to production, and `workbench registry lineage`
printing the chain from the alert to the rollout."""

from __future__ import annotations

import pytest
from retrain_state import build, commit_data, fresh_window, production
from typer.testing import CliRunner

from mlops_workbench import data, procs, registry, tracking
from mlops_workbench.cli.main import app
from mlops_workbench.monitoring.release import release_after_shadow
from mlops_workbench.monitoring.retrain import alert_cause, pending_data, retrain
from mlops_workbench.monitoring.shadow import ShadowPolicy
from mlops_workbench.registry import audit
from mlops_workbench.rollout import ops
from mlops_workbench.rollout.backends.local import SHADOW, LocalBackend
from mlops_workbench.rollout.load import BackgroundLoad

pytestmark = [pytest.mark.slow, pytest.mark.serial]
GROUP = '{}:{alertname="InputDrift"}'


@pytest.fixture
def env(home, monkeypatch):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # put back as it was afterwards (tracking.use sets it)
    tracking.up(port=procs.free_port(), home=home, timeout=300)
    yield home
    ops.down(home)


def test_a_data_commit_is_retrained_shadowed_and_canaried_to_production_with_its_lineage(env):
    home = env
    ws, first = build(home / "workspaces" / "07-monitor-retrain", home)
    sha = commit_data(ws, data.load_iris_frame(), "The second month: every flower measured so far")
    state = pending_data(ws, home=home)
    assert state is not None and state.commit == sha

    cause = alert_cause(GROUP, ["3f1c2b", "9ab2e0"], "InputDrift")
    result = retrain(ws, fresh_window(7), cause, home=home)
    assert result.gate.passed and result.gate.production_version == first, result.gate.summary()
    assert result.data.commit == sha and pending_data(ws, home=home) is None
    assert production(home=home) == first, "a retrain alone moves no alias"

    backend = LocalBackend(home)
    with BackgroundLoad(backend.up(), rps=40, seed=11):
        released = release_after_shadow(
            result, home=home, policy=ShadowPolicy(min_requests=120), window_s=120, rollout_policy="demo"
        )
    assert released.promoted and released.shadow.passed, released.summary()
    assert released.shadow.requests >= 120 and released.shadow.agreement >= 0.95
    assert production(home=home) == result.version
    assert str(registry.get_alias("iris", "previous", home=home).version) == first
    assert procs.get(SHADOW, home) is None and backend.router().shadow() is None, "the shadow is gone"

    steps = [(str(e.action), str(e.outcome)) for e in audit.read(home=home) if e.version == result.version]
    assert steps == [
        ("retrain", "registered"),
        ("gate", "passed"),
        ("shadow", "passed"),
        ("promote", "promoted"),  # staging
        ("promote", "promoted"),  # production, by the canary's controller
        ("canary", "passed"),
    ]
    promoted = [e for e in audit.read(home=home) if e.version == result.version and e.alias == "production"]
    assert promoted[0].gate == result.gate, "production was approved on the retrain's fresh-window verdict"

    shown = CliRunner().invoke(app, ["registry", "lineage", result.version])
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert f"iris version {result.version}: lineage" in out
    assert f"alert InputDrift group {GROUP} (fingerprints 3f1c2b, 9ab2e0)" in out
    assert f"commit {sha}" in out and f"md5 {state.data_md5}" in out and result.run_id in out
    for step in ("retrain  started", "retrain  registered", "gate     passed", "shadow   passed", "canary   passed"):
        assert step in out, step
    assert f"production by rollout-controller, replacing version {first}" in out
    assert out.index("retrain  started") < out.index("shadow   passed") < out.index("canary   passed")

    unknown = CliRunner().invoke(app, ["registry", "lineage", "99"])
    assert unknown.exit_code == 2 and "has no version 99" in unknown.output
