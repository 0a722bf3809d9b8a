"""Alert rule files: the strict model, promtool's check and unit tests, the drift exporter and Prometheus's config."""

from __future__ import annotations

import copy
import shutil

import pytest
import yaml
from prometheus_client import generate_latest
from typer.testing import CliRunner

from mlops_workbench import settings
from mlops_workbench.cli.main import app
from mlops_workbench.errors import InputError
from mlops_workbench.monitoring import exporter, rules
from mlops_workbench.rollout import prometheus

needs_promtool = pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
REFERENCE = yaml.safe_load(rules.REFERENCE.read_text())


def test_the_reference_rules_fit_the_model_and_alert_on_drift_errors_and_p99():
    rule_file = rules.load(rules.REFERENCE)
    by_name = {r.alert: r for r in rule_file.alerts}
    assert set(by_name) == {"FeatureDriftHigh", "PredictionDriftHigh", "ErrorRateHigh", "LatencyP99High"}
    assert by_name["FeatureDriftHigh"].for_seconds == 60 and by_name["LatencyP99High"].for_seconds == 120
    flat = {name: " ".join(rule.expr.split()) for name, rule in by_name.items()}
    assert " ".join(exporter.error_rate_promql().split()) in flat["ErrorRateHigh"]
    assert exporter.p99_latency_promql() in flat["LatencyP99High"]
    assert flat["FeatureDriftHigh"].startswith(exporter.DRIFT)


def test_every_bad_field_of_a_rule_file_is_named_at_once(tmp_path):
    bad = copy.deepcopy(REFERENCE)
    group = bad["groups"][0]
    group["rules"][0]["for"] = "five minutes"
    group["rules"][1]["expr"] = " "
    group["rules"][2]["labels"] = {"bad-name": "x"}
    group["rules"][3]["record"] = "both"
    group["rules"][3]["anotations"] = {}
    group["intervl"] = "1m"
    bad["groups"].append({"name": group["name"], "rules": []})
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(rules.RulesError) as err:
        rules.load(path)
    message = str(err.value)
    for expected in (
        "groups.0.rules.0.for: 'five minutes' is not a Prometheus duration",
        "groups.0.rules.1.expr: the expression is empty",
        "groups.0.rules.2.labels: label names ['bad-name']",
        "groups.0.rules.3.anotations: no such field",
        "Did you mean 'annotations'?",
        "groups.0.intervl: no such field",
    ):
        assert expected in message, (expected, message)
    assert isinstance(err.value, InputError)
    path.write_text(yaml.safe_dump({"groups": [REFERENCE["groups"][0], copy.deepcopy(REFERENCE["groups"][0])]}))
    with pytest.raises(rules.RulesError, match="appear more than once"):
        rules.load(path)
    with pytest.raises(rules.RulesError, match="either `alert:`"):
        rules.parse({"groups": [{"name": "g", "rules": [{"expr": "up"}]}]}, "x")
    with pytest.raises(rules.RulesError, match="does not exist"):
        rules.load(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "secs"), [("0", 0), ("90s", 90), ("1m30s", 90), ("2h", 7200), ("1d", 86400), ("250ms", 0.25)]
)
def test_durations_read_as_prometheus_reads_them(text, secs):
    assert rules.seconds(text) == secs


def test_a_rule_file_written_back_reads_the_same(tmp_path):
    rule_file = rules.load(rules.REFERENCE)
    again = rules.load(rule_file.dump(tmp_path / "copy.yaml"))
    assert again == rule_file and "for: 1m" in (tmp_path / "copy.yaml").read_text()


@needs_promtool
def test_promtool_passes_the_reference_rules_and_their_unit_tests():
    assert rules.check(rules.REFERENCE) == rules.CheckResult(ok=True, rules=4)
    result = rules.test(rules.REFERENCE, rules.REFERENCE_TEST)
    assert result.ok and result.failures == [] and result.errors == [], result.output


@needs_promtool
def test_a_failing_unit_test_says_which_alert_at_what_time_and_what_came_instead(tmp_path):
    weak = copy.deepcopy(REFERENCE)
    weak["groups"][0]["rules"][0]["expr"] = "workbench_drift_score > 0.5"  # misses the 0.35 shift
    weak["groups"][0]["rules"][2]["annotations"]["description"] = "rate {{ $value }}"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(weak))
    result = rules.test(path, rules.REFERENCE_TEST)
    assert not result.ok and result.errors == []
    by_alert = {f.alertname: f for f in result.failures}
    assert set(by_alert) == {"FeatureDriftHigh", "ErrorRateHigh"}
    drift = by_alert["FeatureDriftHigh"]
    assert drift.time == "2m" and drift.got == "[]" and 'feature="petal_length"' in drift.expected
    assert (
        "Error rate 0.100" in by_alert["ErrorRateHigh"].expected
        and 'description="rate 0.0999' in by_alert["ErrorRateHigh"].got
    )


@needs_promtool
def test_promtool_check_names_a_rule_whose_promql_does_not_parse(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "g", "rules": [{"alert": "A", "expr": "foo >"}]}]}))
    result = rules.check(path)
    assert not result.ok and len(result.problems) == 1 and "could not parse expression" in result.problems[0]
    test_file = tmp_path / "t.yaml"
    test_file.write_text(yaml.safe_dump({"tests": [{"interval": "1m", "input_series": []}]}))
    broken = rules.test(path, test_file)
    assert not broken.ok and broken.failures == [] and any("parse" in e for e in broken.errors)


def test_the_exporter_exports_the_scorers_gauges_and_says_when_it_failed():
    state = {"fail": False}

    def scorer() -> list[exporter.DriftScores]:
        if state["fail"]:
            raise RuntimeError("prediction log unreadable")
        return [
            exporter.DriftScores(
                model="iris", version="3", features={"petal_length": 0.4, "x": float("nan")}, prediction=0.1
            )
        ]

    text = generate_latest(exporter.registry(scorer)).decode()
    assert 'workbench_drift_score{feature="petal_length",model="iris",version="3"} 0.4' in text
    assert 'workbench_prediction_drift_score{model="iris",version="3"} 0.1' in text
    assert 'feature="x"' not in text and "workbench_drift_scorer_up 1.0" in text
    state["fail"] = True
    text = generate_latest(exporter.registry(scorer)).decode()
    assert "workbench_drift_scorer_up 0.0" in text and "workbench_drift_score{" not in text


def test_the_exporter_asks_the_scorer_at_most_once_per_interval():
    calls, now = [], [0.0]

    def scorer() -> list[exporter.DriftScores]:
        calls.append(now[0])
        return []

    collector = exporter.DriftCollector(scorer, min_interval=5, clock=lambda: now[0])
    for t in (0, 1, 4.9, 5, 6, 11):
        now[0] = t
        list(collector.collect())
    assert calls == [0, 5, 11]


def test_scorer_and_action_names_are_resolved_or_refused_by_name():
    assert exporter.resolve("mlops_workbench.monitoring.exporter:no_scores", "--scorer") is exporter.no_scores
    for spec, says in (
        ("nocolon", "package.module:function"),
        ("no_such_mod:f", "cannot be imported"),
        ("mlops_workbench.monitoring.exporter:DRIFT", "not a function"),
    ):
        with pytest.raises(InputError, match=says):
            exporter.resolve(spec, "--scorer")


def test_prometheus_config_adds_the_monitor_rules_and_alertmanager_only_when_given(tmp_path):
    plain = prometheus.config("127.0.0.1:1", {"stable": "127.0.0.1:2"})
    assert set(plain) == {"global", "scrape_configs"} and [j["job_name"] for j in plain["scrape_configs"]] == [
        "router",
        "model",
    ]
    full = prometheus.config(
        None, {}, monitor="127.0.0.1:3", rule_files=[tmp_path / "r.yaml"], alertmanager="127.0.0.1:4"
    )
    assert [j["job_name"] for j in full["scrape_configs"]] == ["model", "monitor"]
    assert full["rule_files"] == [str(tmp_path / "r.yaml")]
    assert full["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] == ["127.0.0.1:4"]


def test_monitor_up_with_a_bad_rule_file_starts_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    bad = tmp_path / "rules.yaml"
    bad.write_text("groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        for: soon\n")
    result = CliRunner().invoke(app, ["monitor", "up", "--rules", str(bad)])
    assert result.exit_code == 2 and "not a Prometheus duration" in result.output
    assert not settings.layout(tmp_path / "home").run.exists()
    assert settings.BASE_PORTS["monitor"] not in (settings.BASE_PORTS[k] for k in settings.BASE_PORTS if k != "monitor")
