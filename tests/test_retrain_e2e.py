"""The whole loop of lab 07's release half, for real: a data commit in the learner's workspace, an Alertmanager
notification accepted by the webhook receiver whose on_firing action retrains (dvc repro, MLflow run with lineage,
registered version, gate on a fresh window) once however often the group is notified, a shadow fed by live
traffic through the router, a canary driven by lab 04's controller to production, and `workbench registry lineage`
printing the chain from the alert to the rollout."""

from __future__ import annotations

import time

import pytest
from retrain_state import build, commit_data, fresh_window, production
from typer.testing import CliRunner

from mlops_workbench import data, procs, registry, tracking
from mlops_workbench.cli.main import app
from mlops_workbench.monitoring import webhook
from mlops_workbench.monitoring.release import release_after_shadow
from mlops_workbench.monitoring.retrain import on_alert, pending_data
from mlops_workbench.monitoring.shadow import ShadowPolicy
from mlops_workbench.registry import audit
from mlops_workbench.rollout import ops
from mlops_workbench.rollout.backends.local import SHADOW, LocalBackend
from mlops_workbench.rollout.load import BackgroundLoad
from mlops_workbench.workbench import Workbench

pytestmark = [pytest.mark.slow, pytest.mark.serial]
GROUP = '{}:{alertname="InputDrift"}'
ALERT = {"labels": {"alertname": "InputDrift"}, "startsAt": "2026-01-01T00:00:00Z", "endsAt": "0001-01-01T00:00:00Z"}
NOTIFICATION = webhook.Notification.model_validate(
    {
        "version": "4",
        "groupKey": GROUP,
        "status": "firing",
        "receiver": "workbench",
        "groupLabels": {"alertname": "InputDrift"},
        "commonLabels": {"alertname": "InputDrift"},
        "externalURL": "http://127.0.0.1:9093",
        "alerts": [{**ALERT, "status": "firing", "fingerprint": f} for f in ("9ab2e0", "3f1c2b")],
    }
)


def retrain_ended(home, deadline_s: float = 900.0) -> list[audit.AuditEntry]:
    """The retrain lines once the retrain the receiver started has ended (a gate verdict, or a rejection)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        lines = [e for e in audit.read(Workbench.from_env(home)) if e.action in ("retrain", "gate")]
        if any(e.action == "gate" or e.outcome == "rejected" for e in lines):
            return lines
        time.sleep(0.5)
    pytest.fail(f"the retrain did not end within {deadline_s:.0f} s")


@pytest.fixture
def env(home, monkeypatch, wb):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "")  # put back as it was afterwards (tracking.use sets it)
    tracking.up(wb, port=procs.free_port(), timeout=300)
    yield home
    ops.down(wb)


def test_a_data_commit_is_retrained_shadowed_and_canaried_to_production_with_its_lineage(env):
    home = env
    ws, first = build(home / "workspaces" / "07-monitor-retrain", home)
    sha = commit_data(ws, data.load_iris_frame(), "The second month: every flower measured so far")
    state = pending_data(Workbench.from_env(home), ws)
    assert state is not None and state.commit == sha

    receiver = webhook.Receiver(Workbench.from_env(home), on_alert(Workbench.from_env(home), ws, fresh_window(7)))
    assert receiver.accept(NOTIFICATION).action == webhook.Action.STARTED
    assert receiver.accept(NOTIFICATION).action == webhook.Action.REPEAT, "a repeated notification starts nothing"
    lines = retrain_ended(home)
    assert [str(e.outcome) for e in lines if e.action == "retrain"].count("started") == 1, "one retrain, not two"
    gate = lines[-1]
    assert gate.action == "gate" and gate.gate.passed and gate.gate.production_version == first, gate
    version = gate.version
    assert gate.lineage.git_commit == sha and gate.lineage.cause.fingerprints == ["3f1c2b", "9ab2e0"]
    assert pending_data(Workbench.from_env(home), ws) is None
    assert production(home=home) == first, "a retrain alone moves no alias"

    backend = LocalBackend(Workbench.from_env(home))
    with BackgroundLoad(backend.up(), rps=40, seed=11):
        released = release_after_shadow(
            Workbench.from_env(home),
            version,
            policy=ShadowPolicy(min_requests=120),
            window_s=120,
            rollout_policy="demo",
        )
    assert released.promoted and released.shadow.passed, released.summary()
    assert released.shadow.requests >= 120 and released.shadow.agreement >= 0.95
    assert production(home=home) == version
    assert str(registry.get_alias(Workbench.from_env(home), "iris", "previous").version) == first
    assert procs.get(Workbench.from_env(home), SHADOW) is None and backend.router().shadow() is None, (
        "the shadow is gone"
    )

    steps = [(str(e.action), str(e.outcome)) for e in audit.read(Workbench.from_env(home)) if e.version == version]
    assert steps == [
        ("retrain", "registered"),
        ("gate", "passed"),
        ("shadow", "passed"),
        ("promote", "promoted"),  # staging
        ("promote", "promoted"),  # production, by the canary's controller
        ("canary", "passed"),
    ]
    promoted = [e for e in audit.read(Workbench.from_env(home)) if e.version == version and e.alias == "production"]
    assert promoted[0].gate == gate.gate, "production was approved on the retrain's fresh-window verdict"

    shown = CliRunner().invoke(app, ["registry", "lineage", version])
    assert shown.exit_code == 0, shown.output
    out = shown.output
    assert f"iris version {version}: lineage" in out
    assert f"alert InputDrift group {GROUP} (fingerprints 3f1c2b, 9ab2e0)" in out
    assert f"commit {sha}" in out and f"md5 {state.data_md5}" in out and gate.lineage.run_id in out
    for step in ("retrain  started", "retrain  registered", "gate     passed", "shadow   passed", "canary   passed"):
        assert step in out, step
    assert f"production by rollout-controller, replacing version {first}" in out
    assert out.index("retrain  started") < out.index("shadow   passed") < out.index("canary   passed")

    unknown = CliRunner().invoke(app, ["registry", "lineage", "99"])
    assert unknown.exit_code == 2 and "has no version 99" in unknown.output
