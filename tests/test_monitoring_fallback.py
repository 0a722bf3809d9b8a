"""The Alertmanager fallback: ``for:`` and grouping as pure steps on a fake clock, and the PromQL it evaluates."""

from __future__ import annotations

import pytest

from mlops_workbench.errors import ServiceError
from mlops_workbench.monitoring import evaluator, fallback, promeval, rules
from mlops_workbench.monitoring.alertmanager import Timing
from mlops_workbench.monitoring.webhook import Notification

TIMING = Timing(group_wait=1, group_interval=2, repeat_interval=10)
DRIFT = rules.Rule.model_validate(
    {
        "alert": "FeatureDriftHigh",
        "expr": "workbench_drift_score > 0.2",
        "for": "5s",
        "labels": {"severity": "warning"},
        "annotations": {"summary": '{{ $labels.feature }} drifts: {{ $value | printf "%.2f" }} ({{ $value }})'},
    }
)


def drift(feature: str = "petal_length", value: float = 0.5) -> fallback.Sample:
    return fallback.Sample({"__name__": "workbench_drift_score", "feature": feature, "model": "iris"}, value)


class Run:
    """Steps the fallback on a fake clock, as the evaluator does, collecting what would be delivered."""

    def __init__(self, rule: rules.Rule = DRIFT) -> None:
        self.state, self.rules, self.sent = fallback.State(), [rule], []

    def at(self, now: float, *samples: fallback.Sample, failed: bool = False) -> list[Notification]:
        results = {self.rules[0].alert: None if failed else list(samples)}
        state = fallback.State(fallback.evaluate(self.state.alerts, self.rules, results, now), self.state.groups)
        out = []
        for send in fallback.plan(state, TIMING, now):
            if send.notification is not None:
                out.append(send.notification)
            state = fallback.commit(state, send)
        self.state = state
        self.sent += out
        return out


def test_an_alert_fires_only_once_its_expression_held_for_its_for_duration():
    run = Run()
    assert run.at(0, drift()) == [] and run.at(4, drift()) == []
    assert [a.fired_at for a in run.state.alerts.values()] == [None], "pending until `for:` has passed"
    assert run.at(5, drift()) == [], "firing now, but the new group waits group_wait"
    (note,) = run.at(6, drift())
    assert note.status == "firing" and note.group_key == '{}:{alertname="FeatureDriftHigh"}'
    (alert,) = note.alerts
    assert alert.labels == {
        "alertname": "FeatureDriftHigh",
        "feature": "petal_length",
        "model": "iris",
        "severity": "warning",
    }
    assert alert.annotations == {"summary": "petal_length drifts: 0.50 (0.5)"}
    assert alert.fingerprint == fallback.fingerprint(alert.labels) and alert.ends_at == fallback.ZERO_TIME
    assert alert.starts_at.timestamp() == 5 and note.group_labels == {"alertname": "FeatureDriftHigh"}


def test_a_brief_spike_shorter_than_for_never_fires():
    run = Run()
    for t in range(4):
        run.at(t, drift())
    for t in range(4, 30):
        run.at(t)
    assert run.sent == [] and run.state.alerts == {}


def test_a_firing_group_is_repeated_every_repeat_interval_and_extended_after_group_interval():
    run, sent = Run(), []
    for t in range(0, 30):
        samples = [drift()] + ([drift("sepal_width", 0.4)] if t >= 12 else [])
        sent += [(t, len(note.alerts)) for note in run.at(t, *samples)]
    # first after group_wait; again after repeat_interval; sepal_width fires at 17 and is told after group_interval
    assert sent == [(6, 1), (16, 1), (18, 2), (28, 2)]
    assert run.sent[2].common_labels == {"alertname": "FeatureDriftHigh", "model": "iris", "severity": "warning"}


def test_a_resolved_group_is_told_once_and_a_new_firing_is_a_new_notification():
    run = Run()
    for t in range(0, 8):
        run.at(t, drift())
    assert [n.status for n in run.sent] == ["firing"]
    (note,) = run.at(8)
    assert note.status == "resolved" and note.alerts[0].ends_at.timestamp() == 8
    assert run.state == fallback.State(), "a group with nothing firing is forgotten, like Alertmanager does"
    assert [run.at(t) for t in range(9, 30)] == [[]] * 21
    for t in range(30, 37):
        run.at(t, drift())
    assert [n.status for n in run.sent] == ["firing", "resolved", "firing"]


def test_a_failed_query_keeps_the_rules_alerts_as_they_were():
    run = Run()
    for t in range(0, 7):
        run.at(t, drift())
    before = dict(run.state.alerts)
    run.at(7, failed=True)
    assert run.state.alerts == before and [n.status for n in run.sent] == ["firing"]


def test_keep_firing_for_holds_an_alert_after_its_expression_stops():
    run = Run(DRIFT.model_copy(update={"keep_firing_for": "3s"}))
    for t in range(0, 7):
        run.at(t, drift())
    assert [run.at(t) for t in (7, 8, 9)] == [[], [], []]
    assert [n.status for n in run.at(10) + run.at(11)] == ["resolved"]


def test_the_fingerprint_is_alertmanagers():
    labels = {
        "action": "retrain",
        "alertname": "FeatureDriftHigh",
        "feature": "petal_length",
        "instance": "127.0.0.1:9795",
        "job": "monitor",
        "model": "iris",
        "severity": "warning",
        "version": "3",
    }
    assert fallback.fingerprint(labels) == "9d1479ff8d6d83ba"  # what Alertmanager 0.25 sent for these labels


@pytest.mark.parametrize(  # each as promtool showed {{ $value }} in an annotation
    ("value", "shown"),
    [(0.35, "0.35"), (1.0, "1"), (123456.5, "123456.5"), (1e6, "1e+06"), (1234567, "1.234567e+06"), (2e-5, "2e-05")]
    + [(1e-4, "0.0001"), (0.0, "0")],
)
def test_value_is_shown_as_go_prints_it(value, shown):
    assert fallback.go_float(value) == shown
    assert fallback.expand("{{$value}} {{ $labels.x }} {{ $labels.y }}", {"x": "a"}, value) == f"{shown} a <no value>"


def _history(*readings: dict) -> promeval.History:
    history = promeval.History()
    for t, series in enumerate(readings):
        history.add(15.0 * t, {promeval.labels(k): v for k, v in series})
    return history


def _counters(n: int) -> list[tuple[dict, float]]:
    req, hist = "workbench_model_requests_total", "workbench_model_request_duration_seconds_bucket"
    out = []
    for version, errors, slow in (("3", 10, 10), ("2", 1, 0)):
        out.append(({"__name__": req, "version": version, "status": "200"}, (100 - errors) * n))
        out.append(({"__name__": req, "version": version, "status": "500"}, errors * n))
        for le, count in (("0.1", 100 - slow), ("0.5", 100), ("+Inf", 100)):
            out.append(({"__name__": hist, "version": version, "le": le}, count * n))
    return out


def test_the_scrape_evaluator_answers_the_reference_rules_like_prometheus():
    history = _history(*[_counters(n) for n in range(6)])
    by_name = {r.alert: r.expr for r in rules.load(rules.REFERENCE).alerts}
    assert promeval.evaluate(by_name["ErrorRateHigh"], history) == {(("version", "3"),): pytest.approx(0.1)}
    assert promeval.evaluate(by_name["LatencyP99High"], history) == {(("version", "3"),): pytest.approx(0.46)}
    assert promeval.evaluate(by_name["FeatureDriftHigh"], history) == {}
    reset = _history(*[_counters(n) for n in (4, 5, 1, 2)])  # a restarted server: the counter went down
    assert promeval.evaluate('increase(workbench_model_requests_total{version="2",status="500"}[1m])', reset) == {
        (("status", "500"), ("version", "2")): 3.0
    }


@pytest.mark.parametrize(
    ("expr", "named"),
    [
        ("a and b", "'and' operator"),
        ("foo[5m]", "range vector"),
        ("topk(1, foo)", "function 'topk'"),
        ('foo{a~"b"}', "cannot read"),
        ("foo > bool 1", "'bool'"),
    ],
)
def test_what_the_scrape_evaluator_cannot_read_is_named(expr, named):
    with pytest.raises(promeval.UnsupportedQuery, match=named):
        promeval.evaluate(expr, _history([]))


def test_the_evaluator_loop_scrapes_once_a_tick_and_retries_a_delivery_that_failed():
    clock = iter(range(100)).__next__
    fetched = []

    def fetch() -> str:
        fetched.append(1)
        return 'workbench_drift_score{feature="x",model="iris"} 0.7\n'

    def broken() -> str:
        raise ServiceError("model server down")

    delivered: list[Notification] = []
    fail = {"now": True}

    def deliver(note: Notification) -> None:
        if fail["now"]:
            raise ServiceError("webhook down")
        delivered.append(note)

    scraped = evaluator.ScrapeQueries([fetch, broken], clock=lambda: float(len(fetched)))
    rule_file = rules.RuleFile.model_validate({"groups": [{"name": "g", "rules": [DRIFT.model_dump(by_alias=True)]}]})
    loop = evaluator.Evaluator(rule_file, lambda: scraped, deliver, TIMING, clock=lambda: float(clock()))
    for _ in range(8):
        loop.tick()
    assert len(fetched) == 8 and delivered == [] and loop.errors == {}
    fail["now"] = False
    loop.tick()
    assert [n.status for n in delivered] == ["firing"]
    bad = rules.RuleFile.model_validate({"groups": [{"name": "g", "rules": [{"alert": "X", "expr": "1 > 0"}]}]})
    other = evaluator.Evaluator(bad, lambda: scraped, deliver, TIMING)
    other.tick()
    assert "is a number, not a vector" in other.errors["X"]
