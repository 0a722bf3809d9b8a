"""Lab 07's delivery step for real: the monitor exports the scores file the notebook writes (``labkit.file_scorer``),
the lab's reference rules fire InputDrift naming the moved feature, and the webhook records it, through
Alertmanager where installed and through the in-process fallback with the binary hidden."""

from __future__ import annotations

import pytest
from test_lab07_checks import reference_rules

from mlops_workbench.monitoring import alertmanager, labkit, stack
from mlops_workbench.monitoring.alertmanager import Timing
from mlops_workbench.monitoring.exporter import DriftScores

pytestmark = [pytest.mark.slow, pytest.mark.serial]
TIMING = Timing(group_wait=0.5, group_interval=1.0, repeat_interval=2.0)


@pytest.fixture
def lab(wb, tmp_path, monkeypatch):
    rules = tmp_path / "alert_rules.yaml"
    rules.write_text(reference_rules().replace("for: 20s", "for: 2s"))
    scores = labkit.write_scores(
        tmp_path / "scores.json",
        [DriftScores(model="iris", version="1", features={"sepal_width": 0.9, "petal_length": 0.02})],
    )
    monkeypatch.setenv(labkit.SCORES_ENV, str(scores))
    yield wb, rules
    stack.down(wb)


def deliver(wb, rules) -> str:
    status = stack.up(wb, rules_path=rules, scorer="mlops_workbench.monitoring.labkit:file_scorer", timing=TIMING)
    alert = labkit.wait_for_alert(wb, "InputDrift", timeout=90)
    assert {a.labels["feature"] for a in alert.notification.alerts} == {"sepal_width"}
    assert alert.firing and alert.group_key
    return status.alerting


@pytest.mark.skipif(alertmanager.binary() is None, reason="no prometheus-alertmanager binary (the fallback is tested)")
def test_the_lab_rules_reach_the_webhook_through_alertmanager(lab):
    assert deliver(*lab) == "alertmanager"


def test_the_lab_rules_reach_the_webhook_through_the_fallback(lab, monkeypatch):
    monkeypatch.setenv(alertmanager.BINARY_ENV, "")
    assert deliver(*lab) == "fallback"


def test_no_scores_file_exports_no_drift(monkeypatch, tmp_path):
    monkeypatch.delenv(labkit.SCORES_ENV, raising=False)
    assert labkit.file_scorer() == []
    monkeypatch.setenv(labkit.SCORES_ENV, str(tmp_path / "missing.json"))
    assert labkit.file_scorer() == []
