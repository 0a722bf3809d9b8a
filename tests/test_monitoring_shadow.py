"""The shadow's pure parts: how one mirrored answer compares, the counters read back, and the verdict."""

from __future__ import annotations

import json

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mlops_workbench.monitoring.shadow import ShadowPolicy, ShadowStats, read_stats, shadow_verdict, since
from mlops_workbench.rollout.shadow import Shadow, compare
from mlops_workbench.serving.admin import parse_target


def body(*labels: str) -> bytes:
    return json.dumps({"predictions": list(labels), "version": "x"}).encode()


@pytest.mark.parametrize(
    "primary, shadow, expected",
    [
        ((200, body("setosa")), (200, body("setosa")), ("agree", "")),
        ((200, body("setosa", "virginica")), (200, body("setosa", "versicolor")), ("disagree", "")),
        ((200, body("setosa")), (0, b""), ("error", "no-answer")),
        ((200, body("setosa")), (500, b'{"error": "x"}'), ("error", "status")),
        ((200, body("setosa")), (400, b'{"error": "bad input"}'), ("error", "status")),  # refused what primary served
        ((200, body("setosa")), (200, b"not json"), ("error", "body")),
        ((400, b'{"error": "x"}'), (400, b'{"error": "y"}'), ("agree", "")),  # both refuse the same input
        ((400, b'{"error": "x"}'), (200, body("setosa")), ("disagree", "")),
        ((502, b""), (200, body("setosa")), ("unmatched", "")),  # the primary failed: nothing to compare
        ((0, b""), (500, b""), ("error", "status")),
    ],
)
def test_compare_one_mirrored_answer(primary, shadow, expected):
    assert compare(primary[0], primary[1], shadow[0], shadow[1]) == expected


def test_predictions_compare_as_text_so_numbers_and_strings_agree():
    assert compare(200, b'{"predictions": [1, 2]}', 200, b'{"predictions": ["1", "2"]}') == ("agree", "")


@pytest.mark.parametrize(
    "data, named",
    [
        ({"url": "http://10.0.0.8:8000", "version": "3"}, "url"),  # never mirror live requests to another host
        ({"url": "http://127.0.0.1:70000", "version": "3"}, "url"),
        ({"url": "http://127.0.0.1:8000", "version": "3 4"}, "version"),
        ({"url": "http://127.0.0.1:8000"}, "version"),
        ({"url": "http://127.0.0.1:8000", "version": "3", "weight": 5}, "weight"),
    ],
)
def test_a_bad_shadow_upstream_is_refused_naming_the_field(data, named):
    with pytest.raises(ValueError, match=named):
        parse_target(data)


def test_a_shadow_upstream_on_this_machine_is_accepted():
    target = parse_target({"url": "http://127.0.0.1:65535", "version": "v1.2-rc_3"})
    assert (target.url, target.version) == ("http://127.0.0.1:65535", "v1.2-rc_3")
    assert parse_target({"url": "http://localhost:8080", "version": "7"}).url == "http://localhost:8080"
    with pytest.raises(ValueError, match="JSON object"):
        parse_target(["http://127.0.0.1:1"])


def exposition(outcomes: dict[str, int], shadow_s: float, primary_s: float, version: str = "7") -> str:
    """Router metrics as a real Shadow object would expose them after ``outcomes`` mirrored requests."""
    registry = CollectorRegistry()
    shadow = Shadow(registry, (0.005, 0.01, 0.05, 0.1, 0.5, 1.0), timeout=5)
    for outcome, n in outcomes.items():
        for _ in range(n):
            shadow.requests.labels("shadow", version, outcome).inc()
            shadow.duration.labels("shadow", version).observe(shadow_s)
            shadow.duration.labels("stable", version).observe(primary_s)
    shadow.requests.labels("shadow", "other", "error").inc(99)  # another version's series are not read
    return generate_latest(registry).decode()


def test_read_stats_and_since_give_one_versions_window():
    before = read_stats(exposition({"agree": 10}, 0.004, 0.004), "7")
    after = read_stats(exposition({"agree": 110, "disagree": 2, "error": 1}, 0.004, 0.004), "7")
    window = since(after, before)
    assert before.mirrored == 10 and after.mirrored == 113 and window.mirrored == 103
    assert window.outcomes == {"agree": 100.0, "disagree": 2.0, "error": 1.0}
    assert window.shadow_buckets[float("inf")] == 103 and window.primary_buckets[0.005] == 103
    assert read_stats("", "7").mirrored == 0


def test_a_counter_that_went_down_is_a_restarted_router():
    old = ShadowStats(model_version="7", outcomes={"agree": 500.0})
    new = ShadowStats(model_version="7", outcomes={"agree": 40.0})
    assert since(new, old).outcomes == {"agree": 40.0}


POLICY = ShadowPolicy(min_requests=100, min_agreement=0.95, max_error_rate=0.01, max_latency_ratio=2.0)


def test_a_healthy_shadow_passes():
    verdict = shadow_verdict(read_stats(exposition({"agree": 197, "disagree": 3}, 0.004, 0.003), "7"), POLICY)
    assert verdict.passed and verdict.reasons == [], verdict.summary()
    assert verdict.requests == verdict.compared == 200 and verdict.agreement == pytest.approx(0.985)
    assert verdict.error_rate == 0 and verdict.latency_ratio == 1.0  # both under the 50 ms floor
    assert "PASSED" in verdict.summary() and "98.5%" in verdict.summary()


@pytest.mark.parametrize(
    "outcomes, shadow_s, reason",
    [
        ({"agree": 150, "disagree": 50}, 0.004, "agreement 75.0%"),
        ({"agree": 190, "error": 10}, 0.004, "failed 5.0%"),
        ({"agree": 200}, 0.2, "p99 latency is"),  # 200 ms against a primary under the 50 ms floor
        ({"agree": 40}, 0.004, "only 40 mirrored requests"),  # too little traffic never passes
        ({"error": 150}, 0.004, "no answer of the shadow could be compared"),
    ],
)
def test_a_shadow_fails_on_each_rule_with_its_reason(outcomes, shadow_s, reason):
    verdict = shadow_verdict(read_stats(exposition(outcomes, shadow_s, 0.004), "7"), POLICY)
    assert not verdict.passed
    assert any(reason in r for r in verdict.reasons), verdict.reasons
    assert reason in verdict.summary()


def test_the_latency_floor_keeps_millisecond_noise_from_failing_a_verdict():
    stats = read_stats(exposition({"agree": 200}, 0.008, 0.002), "7")  # four times slower, all under 50 ms
    assert shadow_verdict(stats, POLICY).passed
    strict = POLICY.model_copy(update={"latency_floor_ms": 0.0})
    assert not shadow_verdict(stats, strict).passed


def test_policy_refuses_values_out_of_range():
    with pytest.raises(ValueError, match="min_agreement"):
        ShadowPolicy(min_agreement=1.5)
    with pytest.raises(ValueError, match="surprise"):
        ShadowPolicy.model_validate({"surprise": 1})
