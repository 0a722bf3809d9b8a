"""End to end: a drift score above its threshold fires the alert, the webhook gets it, the action runs once.

Real processes on loopback: the monitor service (uvicorn), Prometheus and Alertmanager; then the same with the
Alertmanager binary hidden (the monitor evaluates the rules itself, against Prometheus, or against the scraped
``/metrics`` when Prometheus is hidden too). Each run waits on the received-alerts file with a deadline.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
import yaml

from mlops_workbench import procs, settings
from mlops_workbench.monitoring import alertmanager, fallback, rules, service, stack, webhook
from mlops_workbench.monitoring.alertmanager import Timing
from mlops_workbench.rollout import prometheus
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
TIMING = Timing(group_wait=0.5, group_interval=1.0, repeat_interval=2.0)
GROUP = '{}:{alertname="FeatureDriftHigh"}'
SCORER = """
from pathlib import Path
from mlops_workbench.monitoring.exporter import DriftScores

def high():
    return [DriftScores(model="iris", version="3", features={"petal_length": 0.6, "sepal_width": 0.01})]

def act(notification):
    with open(Path(__file__).with_name("actions.log"), "a") as out:
        out.write(notification.group_key + "\\n")
"""


@pytest.fixture
def lab(home, tmp_path, monkeypatch, wb):
    """A scorer module the monitor process imports, and the reference rules with a 2 s ``for:``."""
    mods = tmp_path / "mods"
    mods.mkdir()
    (mods / "e2e_drift.py").write_text(SCORER)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(mods), os.environ.get("PYTHONPATH")])))
    data = yaml.safe_load(rules.REFERENCE.read_text())
    for rule in data["groups"][0]["rules"]:
        rule["for"] = "2s"
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    yield home, path, mods / "actions.log"
    stack.down(wb)


def received(home: Path, deadline: float = 45.0, repeats: int = 2) -> list[webhook.AlertRecord]:
    """The webhook's records once it has accepted ``repeats`` firing notifications of the drift group."""
    log, end = settings.layout(home).alerts_received, time.monotonic() + deadline
    while time.monotonic() < end:
        records = [r for r in webhook.read(log) if r.group_key == GROUP and r.status == "firing"]
        if len(records) >= repeats:
            return records
        time.sleep(0.2)
    logs = {p.name: p.read_text()[-800:] for p in settings.layout(home).logs.glob("*.log")}
    raise AssertionError(f"no {repeats} firing notifications within {deadline:.0f}s; logs: {logs}")


def check_once(records: list[webhook.AlertRecord], actions: Path) -> webhook.Alert:
    assert [r.action for r in records][:2] == [webhook.Action.STARTED, webhook.Action.REPEAT]
    assert actions.read_text().splitlines() == [GROUP], "one action for the group, however often it is notified"
    (alert,) = records[0].notification.alerts
    assert alert.labels["feature"] == "petal_length" and alert.labels["model"] == "iris"
    assert alert.fingerprint == fallback.fingerprint(alert.labels)
    return alert


@pytest.mark.skipif(alertmanager.binary() is None, reason="no prometheus-alertmanager binary (the fallback is tested)")
@pytest.mark.skipif(not prometheus.available(), reason="no prometheus binary: Alertmanager gets its alerts from it")
def test_alertmanager_delivers_the_drift_alert_and_the_action_runs_once(lab):
    home, rule_file, actions = lab
    report = stack.up(
        Workbench.from_env(home),
        rules_path=rule_file,
        scorer="e2e_drift:high",
        on_firing="e2e_drift:act",
        timing=TIMING,
    )
    assert report.alerting == "alertmanager" and report.alertmanager and report.prometheus
    alert = check_once(received(home), actions)
    held = alertmanager.alerts(report.alertmanager)
    assert [a.fingerprint for a in held if a.labels["alertname"] == "FeatureDriftHigh"] == [alert.fingerprint]
    assert linked_to(home) == {report.alertmanager}
    wb = Workbench.from_env(home)
    assert procs.stop(wb, alertmanager.SERVICE)  # Alertmanager dies: alerts now go nowhere, and status says so
    after = stack.status(wb)
    assert after.alerting == "down" and "expects Alertmanager" in after.reason, after
    assert set(stack.down(wb)) == {service.SERVICE, prometheus.SERVICE}
    assert procs.running(Workbench.from_env(home)) == []


def linked_to(home: Path) -> set[str]:
    """The ``externalURL`` of every notification received: Alertmanager's own, or the monitor's for the fallback."""
    return {r.notification.external_url for r in webhook.read(settings.layout(home).alerts_received)}


@pytest.mark.skipif(not prometheus.available(), reason="no prometheus binary (the scrape path is tested below)")
def test_without_alertmanager_the_monitor_evaluates_the_rules_against_prometheus(lab, monkeypatch):
    home, rule_file, actions = lab
    monkeypatch.setenv(alertmanager.BINARY_ENV, "")
    report = stack.up(
        Workbench.from_env(home),
        rules_path=rule_file,
        scorer="e2e_drift:high",
        on_firing="e2e_drift:act",
        timing=TIMING,
    )
    assert report.alerting == "fallback" and "no Alertmanager binary" in report.reason and report.prometheus
    alert = check_once(received(home), actions)
    assert alert.labels["job"] == "monitor", "the sample came from Prometheus's scrape of the monitor"
    assert alertmanager.url(Workbench.from_env(home)) is None and linked_to(home) == {report.monitor}


def test_without_alertmanager_and_prometheus_the_rules_read_the_scraped_metrics(lab, monkeypatch):
    home, rule_file, actions = lab
    monkeypatch.setenv(alertmanager.BINARY_ENV, "")
    monkeypatch.setenv(prometheus.BINARY_ENV, str(home / "no-prometheus"))
    report = stack.up(
        Workbench.from_env(home),
        rules_path=rule_file,
        scorer="e2e_drift:high",
        on_firing="e2e_drift:act",
        timing=TIMING,
    )
    assert report.alerting == "fallback" and report.prometheus is None
    alert = check_once(received(home), actions)
    assert "job" not in alert.labels, "read from /metrics directly, without Prometheus's target labels"
    status = procs.http().get(report.monitor + service.STATUS, timeout=5).json()
    assert status["firing"] == ["FeatureDriftHigh"] and status["errors"] == {}


@pytest.mark.skipif(not prometheus.available(), reason="no prometheus binary")
def test_a_running_prometheus_is_reconfigured_keeping_its_targets(home, tmp_path, wb):
    url = prometheus.up(wb, "127.0.0.1:1", {"stable": "127.0.0.1:2"})
    prometheus.reconfigure(wb, monitor="127.0.0.1:3", rule_files=[rules.REFERENCE], alertmanager="127.0.0.1:4")
    loaded = yaml.safe_load(procs.http().get(url + "/api/v1/status/config", timeout=5).json()["data"]["yaml"])
    assert [job["job_name"] for job in loaded["scrape_configs"]] == ["router", "model", "monitor"]
    assert loaded["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:4"]
    groups = procs.http().get(url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert [g["name"] for g in groups] == ["workbench-monitoring"]
    prometheus.reconfigure(wb)
    assert procs.http().get(url + "/api/v1/rules", timeout=5).json()["data"]["groups"] == []
    bad = tmp_path / "bad.yaml"
    bad.write_text("groups: [{name: g, rules: [{alert: A, expr: 'foo >'}]}]")
    with pytest.raises(prometheus.PrometheusError, match="refused the new config"):
        prometheus.reconfigure(wb, rule_files=[bad])
