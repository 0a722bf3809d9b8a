"""The monitor service wired for real (one expensive setup for the module): a tracking server, the learner's git +
DVC project released to production (tests/retrain_state.py), and a shifted month of predictions of that version
in the prediction log.

* ``--watch``: the service scores the prediction log itself; its ``/metrics`` carries the drift gauges of the
  production version and ``/status`` says what was scored; lab 07's reference rules fire InputDrift naming the
  moved feature, through Alertmanager where installed and through the in-process fallback with the binary hidden.
* ``--retrain-*``: an Alertmanager v4 notification POSTed with the token retrains the workspace once (audit lines),
  a repeated notification of the same group runs nothing, production stays where it was; a candidate that loses
  the gate is recorded as such and moves nothing.
* bad wiring (not a workspace, unknown model, no evaluation window) is refused before anything starts.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from retrain_state import build, commit_data, fresh_window, mislabelled, production
from test_lab07_checks import reference_rules
from test_retrain_e2e import NOTIFICATION, retrain_ended
from typer.testing import CliRunner

from mlops_workbench import data, procs, tracking
from mlops_workbench.cli.main import app
from mlops_workbench.errors import InputError
from mlops_workbench.monitoring import alertmanager, exporter, labkit, rules, scenarios, service, stack, webhook
from mlops_workbench.monitoring.alertmanager import Timing
from mlops_workbench.monitoring.autoretrain import RetrainWiring
from mlops_workbench.monitoring.predictions import PredictionLog, PredictionRecord
from mlops_workbench.monitoring.watch import Watch
from mlops_workbench.registry import audit
from mlops_workbench.serving import auth
from mlops_workbench.versioning.workspace import open_workspace
from mlops_workbench.workbench import Workbench

# Not serial: nothing here is judged on latency or errors under load. Every wait is on an event with a deadline
# far above what it takes (an alert within 120 s, a retrain's verdict within 900 s), so a busy neighbour on the
# other xdist worker only slows it down; its services use the worker's own ports and state folder.
pytestmark = pytest.mark.slow
TIMING = Timing(group_wait=0.5, group_interval=1.0, repeat_interval=2.0)
MODEL = "iris"


@dataclass(frozen=True)
class State:
    home: Path
    wb: Workbench
    workspace: Path
    version: str
    evaluation: Path
    lab_rules: Path
    quiet_rules: Path


def shifted_month(version: str) -> list[PredictionRecord]:
    """Month 2 of lab 07 (the sepal width reads high) as the recorder logs it, an hour ago."""
    frame, logged = scenarios.traffic(11, 300, labkit.LATER_MONTH), datetime.now(UTC) - timedelta(hours=1)
    return [
        PredictionRecord(
            request_id=f"month-2-{i}",
            ts=logged,
            model=MODEL,
            version=version,
            endpoint="/predict",
            features={f: float(row[f]) for f in scenarios.FEATURES},
            prediction=str(row["species"]),
            latency_ms=2.0,
        )
        for i, (_, row) in enumerate(frame.iterrows())
    ]


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    root = tmp_path_factory.mktemp("wiring")
    home = root / "home"
    home.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_HOME", str(home))
        mp.setenv("MLFLOW_TRACKING_URI", "")  # put back afterwards (tracking.use sets it)
        wb = Workbench.from_env(home)
        try:
            tracking.up(wb, port=procs.free_port(), timeout=300)
            ws, version = build(home / "workspaces" / "project", home, MODEL)
            log = PredictionLog(wb)
            log.write(shifted_month(version))
            log.close()
            evaluation = root / "window.csv"
            fresh_window(7).to_csv(evaluation, index=False)
            lab_rules, quiet_rules = root / "lab_rules.yaml", root / "quiet_rules.yaml"
            lab_rules.write_text(reference_rules().replace("for: 20s", "for: 2s"))
            quiet = yaml.safe_load(rules.REFERENCE.read_text())
            for rule in quiet["groups"][0]["rules"]:
                rule["for"] = "1h"  # nothing fires by itself: the test posts the notifications
            quiet_rules.write_text(yaml.safe_dump(quiet, sort_keys=False))
            yield State(home, wb, ws.path, version, evaluation, lab_rules, quiet_rules)
        finally:
            stack.down(wb)
            procs.stop_all(wb)


@pytest.fixture
def fresh(state):
    """No monitor running and no notification recorded before the test."""
    stack.down(state.wb)
    state.wb.layout.alerts_received.unlink(missing_ok=True)
    yield state
    stack.down(state.wb)


def test_bad_wiring_is_refused_before_anything_starts(fresh, tmp_path):
    wb, plain = fresh.wb, tmp_path / "plain"
    plain.mkdir()
    cases = [
        ({"retrain": RetrainWiring(workspace=plain, model=MODEL, evaluation=fresh.evaluation)}, "not a git \\+ DVC"),
        ({"retrain": RetrainWiring(workspace=fresh.workspace, model="nope", evaluation=fresh.evaluation)}, "'nope'"),
        (
            {"retrain": RetrainWiring(workspace=fresh.workspace, model=MODEL, evaluation=tmp_path / "none.csv")},
            "none.csv does not exist",
        ),
        ({"watching": Watch(model="nope")}, "'nope'"),
        ({"watching": Watch(model=MODEL), "scorer": "x.y:z"}, "not both"),
    ]
    for options, message in cases:
        with pytest.raises(InputError, match=message):
            stack.up(wb, rules_path=fresh.quiet_rules, timing=TIMING, **options)
        assert procs.get(wb, service.SERVICE) is None and alertmanager.url(wb) is None, options

    answer = CliRunner().invoke(
        app,
        ["monitor", "up", "--retrain-workspace", str(plain), "--retrain-model", MODEL, "--retrain-evaluation", "x"],
    )
    assert answer.exit_code != 0 and "not a git + DVC workspace" in answer.output, answer.output
    answer = CliRunner().invoke(app, ["monitor", "up", "--retrain-workspace", str(fresh.workspace)])
    assert answer.exit_code != 0 and "--retrain-model, --retrain-evaluation" in answer.output, answer.output
    assert procs.get(wb, service.SERVICE) is None


def deliver(state: State) -> str:
    status = stack.up(
        state.wb, rules_path=state.lab_rules, watching=Watch(model=MODEL, last=300), timing=TIMING, interval=0.5
    )
    metrics = procs.http().get(status.monitor + service.METRICS, timeout=10).text
    shifted = f'{exporter.DRIFT}{{feature="{labkit.LATER_MONTH.feature}",model="{MODEL}",version="{state.version}"}}'
    line = next(x for x in metrics.splitlines() if x.startswith(shifted))
    assert float(line.split()[-1]) > 0.25, line
    scorer = procs.http().get(status.monitor + service.STATUS, timeout=10).json()["scorer"]
    assert scorer["outcome"] == "scored" and scorer["version"] == state.version and scorer["rows"] == 300, scorer
    alert = labkit.wait_for_alert(state.wb, "InputDrift", timeout=120)
    # the project's production trained on 30 flowers: its coarse bins see other features move a little as well
    assert labkit.LATER_MONTH.feature in {a.labels["feature"] for a in alert.notification.alerts}
    return status.alerting


def test_the_watched_log_fires_input_drift_through_the_fallback(fresh, monkeypatch):
    monkeypatch.setenv(alertmanager.BINARY_ENV, "")
    assert deliver(fresh) == "fallback"


@pytest.mark.skipif(alertmanager.binary() is None, reason="no prometheus-alertmanager binary (the fallback is tested)")
def test_the_watched_log_fires_input_drift_through_alertmanager(fresh):
    assert deliver(fresh) == "alertmanager"


def test_a_window_with_no_recent_prediction_exports_nothing_and_says_why(fresh, monkeypatch):
    monkeypatch.setenv(alertmanager.BINARY_ENV, "")
    status = stack.up(fresh.wb, rules_path=fresh.quiet_rules, watching=Watch(model=MODEL, seconds=60), timing=TIMING)
    metrics = procs.http().get(status.monitor + service.METRICS, timeout=10).text
    assert exporter.DRIFT + "{" not in metrics and f"{exporter.SCORER_UP} 1.0" in metrics
    scorer = procs.http().get(status.monitor + service.STATUS, timeout=10).json()["scorer"]
    assert scorer["outcome"] == "empty" and "send traffic" in scorer["reason"], scorer
    shown = stack.status(fresh.wb).scorer  # what `workbench monitor status` prints
    assert shown is not None and shown.startswith("empty: no prediction of"), shown
    with pytest.raises(InputError, match="already runs"):  # new options never silently meet the old monitor
        stack.up(fresh.wb, rules_path=fresh.quiet_rules, watching=Watch(model=MODEL, last=10), timing=TIMING)
    assert stack.status(fresh.wb).monitor == status.monitor, "the running monitor is left as it was"


def test_a_firing_group_retrains_the_workspace_once(fresh, monkeypatch):
    monkeypatch.setenv(alertmanager.BINARY_ENV, "")
    wb = fresh.wb
    ws = open_workspace(fresh.workspace)
    sha = commit_data(ws, data.load_iris_frame(), "The second month: every flower measured so far")
    wiring = RetrainWiring(workspace=fresh.workspace, model=MODEL, evaluation=fresh.evaluation)
    status = stack.up(wb, rules_path=fresh.quiet_rules, retrain=wiring, timing=TIMING)
    body = NOTIFICATION.model_dump(mode="json", by_alias=True)
    url = status.monitor + webhook.PATH

    assert procs.http().post(url, json=body, timeout=10).status_code == 401, "no token, nothing starts"
    first = procs.http().post(url, json=body, headers=auth.headers(auth.ensure_token(wb)), timeout=10)
    assert first.status_code == 200 and first.json()["action"] == "started", first.text
    lines = retrain_ended(fresh.home)
    again = procs.http().post(url, json=body, headers=auth.headers(auth.ensure_token(wb)), timeout=10)
    assert again.status_code == 200 and again.json()["action"] == "repeat", again.text

    retrains = [e for e in audit.read(wb) if e.action == "retrain"]
    assert [str(e.outcome) for e in retrains].count("started") == 1, "one retrain for one alert group"
    gate = lines[-1]
    assert gate.action == "gate" and gate.lineage is not None and gate.lineage.git_commit == sha, gate
    assert gate.lineage.cause.kind == "alert" and gate.lineage.cause.group_key == NOTIFICATION.group_key
    assert production(MODEL, fresh.home) == fresh.version, "the retrain alone moves no alias"
    recorded = [r.action for r in webhook.read(wb.layout.alerts_received)]
    assert recorded == [webhook.Action.STARTED, webhook.Action.REPEAT]


def gate_of(wb: Workbench, sha: str, deadline_s: float = 900.0) -> audit.AuditEntry:
    """The gate line of the retrain of data commit ``sha``, once the retrain the receiver started has judged it."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        found = [e for e in audit.read(wb) if e.action == "gate" and e.lineage and e.lineage.git_commit == sha]
        if found:
            return found[-1]
        time.sleep(0.5)
    pytest.fail(f"no gate verdict for the retrain of {sha[:12]} within {deadline_s:.0f} s")


def test_a_candidate_that_loses_the_gate_leaves_production_where_it_was(fresh, monkeypatch):
    monkeypatch.setenv(alertmanager.BINARY_ENV, "")
    wb, before = fresh.wb, production(MODEL, fresh.home)
    sha = commit_data(
        open_workspace(fresh.workspace), mislabelled(), "A month whose versicolor were all recorded wrong"
    )
    wiring = RetrainWiring(workspace=fresh.workspace, model=MODEL, evaluation=fresh.evaluation)
    status = stack.up(wb, rules_path=fresh.quiet_rules, retrain=wiring, timing=TIMING)
    body = NOTIFICATION.model_dump(mode="json", by_alias=True) | {"groupKey": '{}:{alertname="ErrorRateHigh"}'}
    answer = procs.http().post(
        status.monitor + webhook.PATH, json=body, headers=auth.headers(auth.ensure_token(wb)), timeout=10
    )
    assert answer.json()["action"] == "started", answer.text
    gate = gate_of(wb, sha)
    assert gate.gate is not None and not gate.gate.passed and str(gate.outcome) == "failed", gate
    assert production(MODEL, fresh.home) == before, "a lost gate moves no alias"
