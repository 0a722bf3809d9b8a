"""Rollout policy: YAML with Argo Rollouts field names, a clear message per bad field."""

from __future__ import annotations

import pytest
import yaml
from typer.testing import CliRunner

from mlops_workbench.cli.main import app
from mlops_workbench.errors import InputError
from mlops_workbench.rollout import policy as pol


def test_durations_parse_units() -> None:
    assert pol.parse_duration("5m") == 300
    assert pol.parse_duration("30s") == 30
    assert pol.parse_duration("500ms") == 0.5
    assert pol.parse_duration(2) == 2
    with pytest.raises(ValueError, match="not a duration"):
        pol.parse_duration("5 minutes")


def test_default_profile_matches_the_issue_example() -> None:
    p = pol.builtin("default")
    metrics = {m.name: m for m in p.analysis.metrics}
    assert metrics["error-rate"].condition.max == 0.02
    assert metrics["latency-p99"].condition.max_increase == 0.5
    # sustained for five minutes: the fifth failed one-minute measurement aborts
    assert metrics["latency-p99"].interval == 60 and metrics["latency-p99"].failure_limit == 4
    assert p.weights == [5, 25, 50]


def test_demo_profile_is_the_same_logic_in_seconds() -> None:
    demo, default = pol.builtin("demo"), pol.builtin("default")
    assert [m.kind for m in demo.analysis.metrics] == [m.kind for m in default.analysis.metrics]
    assert all(m.interval <= 2 for m in demo.analysis.metrics)
    assert demo.detection_bound() < 20 < default.detection_bound()


def test_a_pause_without_a_duration_holds_for_an_operator_and_round_trips(tmp_path) -> None:
    doc = pol.to_yaml(pol.builtin("demo")).replace("pause:\n    duration: 8.0", "pause: {}", 1)
    path = tmp_path / "hold.yaml"
    path.write_text(doc)
    held = pol.load(path)
    pauses = [s.pause.duration for s in held.steps if s.pause is not None]
    assert pauses == [None, 8.0] and "- pause: {}" in pol.to_yaml(held)
    with pytest.raises(pol.PolicyError, match="steps.1.pause.foo: no such field"):
        pol.parse({**held.model_dump(by_alias=True), "steps": [{"setWeight": 5}, {"pause": {"foo": 1}}]})
    with pytest.raises(InputError, match="give step 1's pause a duration to replay it"):
        held.pauses("replay it")
    assert pol.builtin("demo").pauses("replay it") == [(1, 8.0), (3, 8.0)]


def test_round_trip_yaml_uses_camel_case(tmp_path) -> None:
    text = pol.to_yaml(pol.builtin("demo"))
    assert "setWeight" in text and "failureLimit" in text and "initialDelay" in text
    path = tmp_path / "p.yaml"
    path.write_text(text)
    assert pol.load(path) == pol.builtin("demo")


def test_malformed_policy_names_every_bad_field(tmp_path) -> None:
    bad = {
        "steps": [{"setWeight": 150}, {"pause": {"duration": "soon"}}, {"setWeight": 5, "pause": {"duration": 1}}],
        "analysis": {
            "minSampleSize": 0,
            "metrics": [
                {"name": "e", "kind": "errorRate", "failureLimit": -1, "condition": {"max": 0.02}},
                {"name": "x", "kind": "throughput", "condition": {"max": 1}},
            ],
        },
        "stepz": [],
    }
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(pol.PolicyError) as info:
        pol.load(path)
    message = str(info.value)
    for field in (
        "steps.0.setWeight",
        "steps.1.pause.duration",
        "steps.2",
        "analysis.minSampleSize",
        "analysis.metrics.0.failureLimit",
        "analysis.metrics.1.kind",
        "stepz",
    ):
        assert field in message, f"{field} missing from:\n{message}"
    assert str(path) in message


def test_condition_must_fit_the_metric_kind() -> None:
    data = yaml.safe_load(pol.to_yaml(pol.builtin("demo")))
    data["analysis"]["metrics"][1]["condition"] = {"marginMs": 3}
    with pytest.raises(pol.PolicyError, match="latencyP99 metric needs condition.maxIncrease"):
        pol.parse(data)


def test_cli_reports_bad_policy_without_starting_anything(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path / "home"))
    path = tmp_path / "bad.yaml"
    path.write_text("steps:\n  - setWeight: -5\nanalysis: {metrics: []}\n")
    result = CliRunner().invoke(app, ["rollout", "start", "--candidate", "2", "--policy", str(path)])
    assert result.exit_code == 2
    assert "steps.0.setWeight" in result.output and "analysis.metrics" in result.output
    assert not (tmp_path / "home" / "run").exists() or not list((tmp_path / "home" / "run").glob("*.json"))


def test_missing_file_suggests_the_packaged_profiles(tmp_path) -> None:
    with pytest.raises(pol.PolicyError, match="default, demo"):
        pol.load(tmp_path / "nope.yaml")


def test_a_misspelt_field_gets_a_suggestion_and_an_unknown_one_the_field_list() -> None:
    data = pol.builtin("demo").model_dump(by_alias=True, mode="json")
    data["steps"][0] = {"setWieght": 5}
    data["analysis"]["metrics"][0]["intervall"] = data["analysis"]["metrics"][0].pop("interval")
    data["stepz"] = []
    with pytest.raises(pol.PolicyError) as info:
        pol.parse(data)
    message = str(info.value)
    assert "steps.0.setWieght: no such field (got 5). Did you mean 'setWeight'?" in message
    assert "analysis.metrics.0.intervall: no such field" in message and "Did you mean 'interval'?" in message
    assert "stepz: no such field. Did you mean 'steps'?" in message
    with pytest.raises(
        pol.PolicyError, match=r"steps\.0\.zzz: no such field \(got 5\)\. Fields here: setWeight, pause"
    ):
        pol.parse({**pol.builtin("demo").model_dump(by_alias=True, mode="json"), "steps": [{"zzz": 5}]})
