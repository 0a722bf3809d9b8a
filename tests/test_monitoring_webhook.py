"""The alert webhook: Alertmanager's version-4 payload, the shared token, and one action per alert group."""

from __future__ import annotations

import copy
import json
import threading

import pytest
from fastapi.testclient import TestClient

from mlops_workbench import settings
from mlops_workbench.monitoring import service, webhook
from mlops_workbench.serving import auth
from mlops_workbench.workbench import Workbench

TOKEN = "s3cret-token"
# a notification as Alertmanager 0.25 sent it to the workbench (every field it sends, firing alerts' endsAt zero)
SENT = {
    "receiver": "workbench",
    "status": "firing",
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "FeatureDriftHigh", "feature": "petal_length", "model": "iris", "version": "3"},
            "annotations": {"summary": "Input drift on petal_length of iris version 3"},
            "startsAt": "2026-12-04T21:44:23.023Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://vm:9790/graph?g0.expr=workbench_drift_score+%3E+0.2&g0.tab=1",
            "fingerprint": "9d1479ff8d6d83ba",
        }
    ],
    "groupLabels": {"alertname": "FeatureDriftHigh"},
    "commonLabels": {"alertname": "FeatureDriftHigh", "feature": "petal_length", "model": "iris", "version": "3"},
    "commonAnnotations": {"summary": "Input drift on petal_length of iris version 3"},
    "externalURL": "http://127.0.0.1:9793",
    "version": "4",
    "groupKey": '{}:{alertname="FeatureDriftHigh"}',
    "truncatedAlerts": 0,
}


class Calls:
    """An on_firing action that counts its calls (it runs on a worker thread)."""

    def __init__(self) -> None:
        self.groups: list[str] = []
        self.called = threading.Semaphore(0)

    def __call__(self, notification: webhook.Notification) -> None:
        self.groups.append(notification.group_key)
        self.called.release()

    def wait(self) -> None:
        assert self.called.acquire(timeout=10), "on_firing was not called"


def resolved(payload: dict) -> dict:
    out = copy.deepcopy(payload)
    out["status"] = "resolved"
    for alert in out["alerts"]:
        alert["status"], alert["endsAt"] = "resolved", "2026-12-04T21:50:00Z"
    return out


@pytest.fixture
def client(tmp_path):
    calls = Calls()
    app = service.create_app(Workbench.from_env(tmp_path), on_firing=calls, token=TOKEN)
    with TestClient(app) as http:
        yield http, calls, settings.layout(tmp_path).alerts_received


def post(http: TestClient, body: object, token: str | None = TOKEN, **kw) -> object:
    headers = auth.headers(token) if token else {}
    if isinstance(body, (dict, list)):
        return http.post(webhook.PATH, json=body, headers=headers, **kw)
    return http.post(webhook.PATH, content=body, headers={**headers, "content-type": "application/json"}, **kw)


@pytest.mark.parametrize("token", [None, "wrong-token", ""])
def test_a_call_without_the_token_is_refused_and_starts_nothing(client, token):
    http, calls, log = client
    answer = post(http, SENT, token=token)
    assert answer.status_code == 401 and "bearer token" in answer.json()["error"]
    assert answer.headers["www-authenticate"] == "Bearer"
    assert not log.exists() and calls.groups == []


def test_a_body_that_is_not_json_is_a_400_naming_it(client):
    http, calls, log = client
    answer = post(http, b"{not json")
    assert answer.status_code == 400 and "not valid JSON" in answer.json()["error"]
    assert not log.exists() and calls.groups == []


def test_a_malformed_notification_is_a_422_naming_every_bad_field(client):
    http, calls, log = client
    bad = copy.deepcopy(SENT)
    bad["version"] = "3"
    del bad["groupKey"]
    bad["alerts"][0]["status"] = "burning"
    bad["junk"] = 1
    answer = post(http, bad)
    assert answer.status_code == 422
    error = answer.json()["error"]
    for field in ("version", "groupKey", "alerts.0.status", "junk: no such field"):
        assert field in error, (field, error)
    assert not log.exists() and calls.groups == []
    assert post(http, {**SENT, "alerts": []}).status_code == 422


def test_a_firing_notification_is_recorded_and_starts_the_action_once(client):
    http, calls, log = client
    answer = post(http, SENT)
    assert answer.status_code == 200 and answer.json()["action"] == "started"
    calls.wait()
    for _ in range(3):  # Alertmanager repeats a firing group every repeat_interval
        assert post(http, SENT).json()["action"] == "repeat"
    records = webhook.read(log)
    assert [r.action for r in records] == ["started", "repeat", "repeat", "repeat"]
    assert calls.groups == [SENT["groupKey"]]
    line = json.loads(log.read_text().splitlines()[0])
    assert line["notification"]["groupKey"] == SENT["groupKey"], "the payload is kept as Alertmanager sent it"
    assert records[0].firing == ["9d1479ff8d6d83ba"] and records[0].notification.alerts[0].ends_at.year == 1


def test_a_group_that_resolved_and_fires_again_starts_the_action_again(client):
    http, calls, log = client
    post(http, SENT)
    calls.wait()
    assert post(http, resolved(SENT)).json()["action"] == "resolved"
    assert post(http, SENT).json()["action"] == "started"
    calls.wait()
    other = copy.deepcopy(SENT)
    other["groupKey"] = '{}:{alertname="ErrorRateHigh"}'
    assert post(http, other).json()["action"] == "started", "another group has its own action"
    calls.wait()
    assert calls.groups == [SENT["groupKey"], SENT["groupKey"], other["groupKey"]]
    assert [r.action for r in webhook.read(log)] == ["started", "resolved", "started", "started"]


def test_a_restarted_receiver_remembers_the_groups_that_fire(tmp_path):
    first = Calls()
    with TestClient(service.create_app(Workbench.from_env(tmp_path), on_firing=first, token=TOKEN)) as http:
        post(http, SENT)
        first.wait()
    again = Calls()
    with TestClient(service.create_app(Workbench.from_env(tmp_path), on_firing=again, token=TOKEN)) as http:
        assert post(http, SENT).json()["action"] == "repeat"
        assert post(http, resolved(SENT)).json()["action"] == "resolved"
        assert post(http, SENT).json()["action"] == "started"
        again.wait()
    assert first.groups == again.groups == [SENT["groupKey"]]


def test_without_an_action_wired_in_notifications_are_only_recorded(tmp_path):
    with TestClient(service.create_app(Workbench.from_env(tmp_path), token=TOKEN)) as http:
        assert post(http, SENT).json()["action"] == "none"
    assert webhook.firing_groups(webhook.read(settings.layout(tmp_path).alerts_received)) == {
        SENT["groupKey"]: frozenset({"9d1479ff8d6d83ba"})
    }


def test_a_failing_action_is_logged_and_the_receiver_keeps_serving(tmp_path, caplog):
    def boom(_: webhook.Notification) -> None:
        raise RuntimeError("retrain could not start")

    receiver = webhook.Receiver(Workbench.from_env(tmp_path), boom)
    with caplog.at_level("ERROR"):
        receiver._run(webhook.Notification.model_validate(SENT))
    assert "on_firing failed" in caplog.text and "retrain could not start" in caplog.text


def test_the_pure_decision_and_fold():
    note = webhook.Notification.model_validate(SENT)
    assert webhook.decide({}, note, wired=True) is webhook.Action.STARTED
    groups = webhook.update({}, note.group_key, note.firing)
    assert webhook.decide(groups, note, wired=True) is webhook.Action.REPEAT
    gone = webhook.Notification.model_validate(resolved(SENT))
    assert webhook.decide(groups, gone, wired=True) is webhook.Action.RESOLVED
    assert webhook.update(groups, gone.group_key, gone.firing) == {}
