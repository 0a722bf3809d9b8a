"""Retrain on a data commit with real git, DVC and MLflow: new data is detected, bad data, a losing candidate and a
disagreeing shadow are refused with production untouched, and a retrained version carries its lineage. (The release
all the way through canary is tests/test_retrain_e2e.py.)"""

from __future__ import annotations

import mlflow
import pytest
from retrain_state import build, commit_data, first_month, fresh_window, mislabelled, production

from mlops_workbench import data, procs, registry, tracking, train, versioning
from mlops_workbench.errors import Failed, InputError, RegistryError
from mlops_workbench.monitoring.release import ReleaseFailed, release_after_shadow
from mlops_workbench.monitoring.retrain import DataRejected, LostGate, alert_cause, pending_data, retrain
from mlops_workbench.monitoring.shadow import ShadowPolicy
from mlops_workbench.registry import audit, integrity
from mlops_workbench.rollout import ops
from mlops_workbench.rollout import state as rollout_state
from mlops_workbench.rollout.backends.local import ROUTER, SHADOW, LocalBackend
from mlops_workbench.rollout.load import BackgroundLoad
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("retrain-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("WORKBENCH_HOME", str(home))
        patch.setenv("MLFLOW_TRACKING_URI", "")  # put back as it was afterwards (tracking.use sets it)
        try:
            tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)
            ws, version = build(home / "workspaces" / "07-monitor-retrain", home)
            yield home, ws, version
        finally:
            procs.stop_all(Workbench.from_env(home))


def versions(home) -> list[str]:
    return [str(v.version) for v in registry.list_versions(Workbench.from_env(home), "iris")]


def retrain_lines(home, since: int) -> list[tuple[str, str]]:
    return [(str(e.action), str(e.outcome)) for e in audit.read(Workbench.from_env(home))[since:]]


def test_a_data_commit_that_breaks_the_schema_is_rejected_and_registers_nothing(env):
    home, ws, v1 = env
    bad = first_month()
    bad.loc[3, "petal_width"] = -1.0
    bad.loc[7, "species"] = "rose"
    sha = commit_data(ws, bad, "A month with a broken sensor")
    assert pending_data(Workbench.from_env(home), ws) is not None
    before, lines = versions(home), len(audit.read(Workbench.from_env(home)))
    with pytest.raises(DataRejected, match=sha[:12]) as caught:
        retrain(Workbench.from_env(home), ws, fresh_window(1))
    message = str(caught.value)
    assert "nothing was trained or registered" in message and "production is untouched" in message
    assert "petal_width" in message and "rose" in message and len(caught.value.problems) == 2
    assert versions(home) == before and production(home=home) == v1
    assert retrain_lines(home, lines) == [("retrain", "started"), ("retrain", "rejected")]
    assert pending_data(Workbench.from_env(home), ws) is None, (
        "a rejected commit is finished with: a poller does not retry it"
    )


@pytest.fixture(scope="module")
def lost(env):
    """A valid data commit with wrong labels, retrained on an alert: (its sha, the data state, audit lines before,
    the LostGate raised)."""
    home, ws, _ = env
    sha = commit_data(ws, mislabelled(), "A month where versicolor was recorded as virginica")
    state = pending_data(Workbench.from_env(home), ws)
    assert state is not None and state.commit == sha
    lines = len(audit.read(Workbench.from_env(home)))
    cause = alert_cause('{}:{alertname="InputDrift"}', ["3f1c"], "InputDrift")
    with pytest.raises(LostGate, match="no alias moved") as caught:
        retrain(Workbench.from_env(home), ws, fresh_window(2), cause)
    return sha, state, lines, caught.value


def test_a_candidate_that_loses_the_gate_moves_no_alias(env, lost):
    home, ws, v1 = env
    sha, state, lines, error = lost
    assert isinstance(error, Failed) and error.exit_code == 1
    result = error.result
    assert not result.gate.passed and result.gate.production_version == v1 and result.gate.holdout_rows == 60
    assert any("regresses" in r or "gain" in r for r in result.gate.reasons), result.gate.reasons
    assert production(home=home) == v1, "production is untouched"
    aliases = registry.client(Workbench.from_env(home)).get_registered_model("iris").aliases
    assert result.version not in aliases.values(), "the losing candidate holds no alias"
    assert retrain_lines(home, lines)[:5] == [
        ("retrain", "started"),
        ("retrain", "validated"),
        ("retrain", "reproduced"),
        ("retrain", "registered"),
        ("gate", "failed"),
    ]
    gate_line = audit.read(Workbench.from_env(home))[lines + 4]
    assert gate_line.gate == result.gate and gate_line.lineage.cause.group_key == '{}:{alertname="InputDrift"}'
    # the candidate is registered with its lineage: the data commit, the alert that caused it
    tags = registry.client(Workbench.from_env(home)).get_model_version("iris", result.version).tags
    assert tags["retrain.data_commit"] == sha and tags["retrain.cause"] == "alert"
    assert tags["retrain.fingerprints"] == "3f1c" and tags["retrain.data_md5"] == state.data_md5
    run = versioning.run_lineage(Workbench.from_env(home), result.run_id)["tags"]
    assert run["git.commit"] == sha and run["data.md5"] == state.data_md5 and run["git.dirty"] == "false"
    assert ws.git("rev-parse", f"{result.results_commit}~1") == sha, "the results are committed on the data commit"
    lock = ws.git("show", f"{result.results_commit}:dvc.lock")
    assert versioning.workspace.locked_md5(lock, versioning.DATA) == state.data_md5


def test_a_version_that_lost_its_gate_is_not_released(env, lost):
    home, _, v1 = env
    lines = len(audit.read(Workbench.from_env(home)))
    with pytest.raises(RegistryError, match="lost the gate on its fresh window"):
        release_after_shadow(Workbench.from_env(home), lost[3].result.version)
    assert len(audit.read(Workbench.from_env(home))) == lines and procs.get(Workbench.from_env(home), ROUTER) is None, (
        "nothing started"
    )
    assert production(home=home) == v1


def test_a_shadow_that_disagrees_stops_the_release_before_any_canary(env):
    """A version registered without a retrain (so without its gate), trained on wrong labels: its shadow disagrees
    with production on live traffic."""
    wb = Workbench.from_env(env[0])  # the module's state folder
    home, _, v1 = env
    tracking.use(Workbench.from_env(home))
    mlflow.set_experiment("retrain")
    with mlflow.start_run(run_name="mislabelled"):
        frame = mislabelled()
        version = integrity.log_registered(wb, train.train(frame, {}), frame[data.FEATURES].head(5), "iris")
    backend = LocalBackend(Workbench.from_env(home))
    lines = len(audit.read(Workbench.from_env(home)))
    try:
        with BackgroundLoad(backend.up(), rps=40, seed=5):
            with pytest.raises(ReleaseFailed, match="no canary started") as caught:
                release_after_shadow(
                    Workbench.from_env(home), version, policy=ShadowPolicy(min_requests=80), window_s=90
                )
    finally:
        ops.down(Workbench.from_env(home))
    verdict = caught.value.result.shadow
    assert not verdict.passed and verdict.requests >= 80 and verdict.agreement < 0.9, verdict.summary()
    assert production(home=home) == v1 and rollout_state.load(Workbench.from_env(home)) is None, (
        "no canary, no alias moved"
    )
    assert procs.get(Workbench.from_env(home), SHADOW) is None
    (line,) = audit.read(Workbench.from_env(home))[lines:]
    assert (line.action, line.outcome, line.version) == ("shadow", "failed", version) and line.shadow == verdict


def test_no_new_data_after_a_code_commit_and_dirty_work_is_refused(env, lost):
    home, ws, v1 = env
    assert pending_data(Workbench.from_env(home), ws) is None
    (ws.path / "NOTES.md").write_text("a code commit changes no data\n")
    ws.commit("Notes")
    assert pending_data(Workbench.from_env(home), ws) is None
    (ws.path / "params.yaml").write_text((ws.path / "params.yaml").read_text() + "# edited\n")
    lines = len(audit.read(Workbench.from_env(home)))
    with pytest.raises(InputError, match="params.yaml"):
        retrain(Workbench.from_env(home), ws, fresh_window(3))
    ws.git("checkout", "--", "params.yaml")
    with pytest.raises(InputError, match="evaluation window"):
        retrain(Workbench.from_env(home), ws, fresh_window(3).drop(columns=["species"]))
    assert len(audit.read(Workbench.from_env(home))) == lines, "nothing started"
    assert production(home=home) == v1
