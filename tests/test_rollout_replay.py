"""The error-rate decision hook and the seeded replay of a policy (pure analysis, no servers)."""

from __future__ import annotations

import pytest

from mlops_workbench.errors import InputError
from mlops_workbench.rollout import analysis, replay
from mlops_workbench.rollout import policy as pol
from mlops_workbench.rollout.metrics import Snapshot

METRIC = {
    "interval": "2s",
    "window": "8s",
    "initialDelay": "2s",
    "failureLimit": 1,
    "consecutiveErrorLimit": 2,
    "inconclusiveLimit": 4,
}


def policy_doc(
    window: str = "8s", min_sample: int = 20, first: float = 5, max_rate: float = 0.02, pause: str = "10s"
) -> dict:
    metric = {**METRIC, "window": window}
    return {
        "name": "t",
        "steps": [
            {"setWeight": first},
            {"pause": {"duration": pause}},
            {"setWeight": 25},
            {"pause": {"duration": "8s"}},
        ],
        "analysis": {
            "minSampleSize": min_sample,
            "metrics": [
                {"name": "error-rate", "kind": "errorRate", **metric, "condition": {"max": max_rate, "alpha": 0.05}},
                {"name": "latency-p99", "kind": "latencyP99", **metric, "condition": {"maxIncrease": 0.5}},
                {
                    "name": "prediction-shift",
                    "kind": "predictionShift",
                    **metric,
                    "condition": {"max": 0.25, "alpha": 0.01},
                },
            ],
        },
    }


def test_installed_decision_decides_every_measurement_and_its_failure_is_an_error():
    metric = pol.parse(policy_doc()).analysis.metrics[0]
    win = Snapshot(t=10, start=2, requests={("canary", "200"): 30, ("canary", "500"): 10, ("stable", "200"): 600})
    assert analysis.measure(metric, win, 20).phase == analysis.MeasurementPhase.FAILED
    previous = analysis.use_error_rate_decision(lambda *counts: "successful")
    try:
        m = analysis.measure(metric, win, 20)
        assert m.phase == analysis.MeasurementPhase.SUCCESSFUL and "custom decision" in m.message
        analysis.use_error_rate_decision(lambda *counts: 1 / 0)
        m = analysis.measure(metric, win, 20)
        assert m.phase == analysis.MeasurementPhase.ERROR and "ZeroDivisionError" in m.message
        assert analysis.measure(metric, win, 20, decide=lambda *c: "maybe").phase == analysis.MeasurementPhase.ERROR
    finally:
        analysis.use_error_rate_decision(previous)
    assert analysis.measure(metric, win, 20).phase == analysis.MeasurementPhase.FAILED


def test_replay_is_deterministic_and_catches_the_fault_within_the_bound():
    policy = pol.parse(policy_doc())
    faulty = replay.Traffic(rps=80, fault_at=4.0)
    first, again = replay.replay(policy, faulty, 3), replay.replay(policy, faulty, 3)
    assert first == again
    assert first.outcome == "abort" and first.detected_in_bound and "error-rate" in first.reason
    assert replay.replay(policy, replay.Traffic(rps=80), 3).outcome == "promote"
    assert replay.expected_canary_requests(80, 5, 8) == pytest.approx(32)


def test_a_pause_without_a_duration_cannot_be_replayed():
    doc = policy_doc()
    doc["steps"][1] = {"pause": {}}
    with pytest.raises(
        InputError, match=r"step 1 of policy 't' is an indefinite pause.*give step 1's pause a duration"
    ):
        replay.replay(pol.parse(doc), replay.Traffic(rps=60), seed=0)
