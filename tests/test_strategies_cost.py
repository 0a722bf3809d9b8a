"""Cost per 1,000 predictions: readings of a server's /metrics, priced by params.yaml's `cost` section (pure parts).

The measurement against real model servers is in test_strategies_bluegreen.py, on the blue and green servers.
"""

from __future__ import annotations

import json

import pytest

from mlops_workbench import paramspec
from mlops_workbench.errors import InputError, ServiceError
from mlops_workbench.paramspec import CostParams
from mlops_workbench.registry.gate import COST_CURRENCY_TAG, COST_TAG, LATENCY_TAG, measured_cost
from mlops_workbench.strategies import cost

PRICES = CostParams(cpu_hour=0.04, gb_hour=0.005, currency="EUR")


def metrics(cpu: float, rss: float, ok: float, started: float = 1000.0) -> str:
    """A model server's /metrics text, as prometheus_client writes it."""
    return (
        "# TYPE process_cpu_seconds_total counter\n"
        f"process_cpu_seconds_total {cpu}\n"
        "# TYPE process_resident_memory_bytes gauge\n"
        f"process_resident_memory_bytes {rss}\n"
        "# TYPE process_start_time_seconds gauge\n"
        f"process_start_time_seconds {started}\n"
        "# TYPE workbench_model_requests_total counter\n"
        f'workbench_model_requests_total{{status="200",version="3"}} {ok}\n'
        'workbench_model_requests_total{status="400",version="3"} 7.0\n'
        'workbench_model_requests_total{status="500",version="3"} 2.0\n'
    )


def test_a_reading_takes_cpu_memory_start_and_only_answered_predictions():
    s = cost.parse_sample(metrics(cpu=12.5, rss=2**30, ok=40), t=5.0)
    assert (s.t, s.cpu_seconds, s.rss_bytes, s.predictions, s.started) == (5.0, 12.5, 2**30, 40.0, 1000.0)
    with pytest.raises(
        ServiceError,
        match="x exposes no process_cpu_seconds_total, process_resident_memory_bytes, process_start_time_seconds",
    ):
        cost.parse_sample('workbench_model_requests_total{status="200",version="3"} 1\n', t=0, where="x")


def test_the_cost_of_a_window_is_cpu_plus_memory_priced_and_divided_by_predictions():
    before = cost.parse_sample(metrics(cpu=10, rss=2**30, ok=100), t=0.0)
    after = cost.parse_sample(metrics(cpu=46, rss=2**30, ok=1000), t=360.0)
    result = cost.cost_of([before, after], PRICES, version="3")
    assert result.cpu_seconds == 36 and result.predictions == 900 and result.window_seconds == 360
    assert result.cpu_cost == pytest.approx(36 / 3600 * 0.04)  # 0.01 CPU-hour
    assert result.gib_hours == pytest.approx(0.1) and result.memory_cost == pytest.approx(0.1 * 0.005)
    assert result.per_1k == pytest.approx((0.0004 + 0.0005) / 900 * 1000)
    assert "EUR per 1,000 predictions" in result.summary() and result.summary().startswith("v3: 0.001000")


def test_memory_is_integrated_over_every_reading():
    readings = [
        cost.parse_sample(metrics(cpu=0, rss=rss, ok=ok), t=t)
        for t, rss, ok in ((0.0, 0, 0), (1800.0, 2 * 2**30, 10), (3600.0, 2 * 2**30, 20))
    ]
    result = cost.cost_of(readings, PRICES, version="1")
    assert result.gib_hours == pytest.approx(1 * 0.5 + 2 * 0.5)  # 0 -> 2 GiB over half an hour, then 2 GiB held


def test_bad_windows_are_refused_with_the_fix():
    a = cost.parse_sample(metrics(cpu=1, rss=1, ok=1), t=10.0)
    with pytest.raises(InputError, match="at least two readings"):
        cost.cost_of([a], PRICES, "1")
    with pytest.raises(InputError, match="not in time order"):
        cost.cost_of([a, a.model_copy(update={"t": 5.0})], PRICES, "1")
    restarted = cost.parse_sample(metrics(cpu=0.2, rss=1, ok=0, started=2000.0), t=20.0)
    with pytest.raises(ServiceError, match="v1's server restarted during the window"):
        cost.cost_of([a, restarted], PRICES, "1")
    idle = cost.cost_of([a, a.model_copy(update={"t": 70.0})], PRICES, "1")
    assert idle.per_1k is None and idle.predictions == 0 and "no predictions" in idle.summary()
    with pytest.raises(InputError, match="send traffic during the measurement"):
        cost.record(None, "iris", idle)


class FakeClient:
    def __init__(self) -> None:
        self.tags: dict[tuple[str, str], dict[str, str]] = {}

    def set_model_version_tag(self, name: str, version: str, key: str, value: str) -> None:
        self.tags.setdefault((name, version), {})[key] = value


def test_recorded_cost_is_what_the_gate_reads():
    before = cost.parse_sample(metrics(cpu=10, rss=2**30, ok=100), t=0.0)
    after = cost.parse_sample(metrics(cpu=46, rss=2**30, ok=1000), t=360.0)
    result = cost.cost_of([before, after], PRICES, version="3")
    client = FakeClient()
    cost.record(client, "iris", result)
    tags = client.tags[("iris", "3")]
    assert measured_cost(tags) == pytest.approx(result.per_1k) and tags[COST_CURRENCY_TAG] == "EUR"
    assert json.loads(tags[cost.REPORT_TAG])["predictions"] == 900
    assert measured_cost({COST_TAG: "cheap"}) is None and measured_cost({}) is None


def test_prices_come_from_params_and_bad_ones_name_the_key(tmp_path):
    assert CostParams.load() == CostParams.model_validate(paramspec.load_params("cost"))
    with pytest.raises(InputError, match=r"cost\.cpu_hour"):
        CostParams.load({"cpu_hour": -1})
    bad = tmp_path / "params.yaml"
    bad.write_text("cost:\n  cpu_hour: '0.04'\n  gb_hours: 1\n")
    with pytest.raises(InputError) as err:
        paramspec.load_params(path=bad)
    assert "cost.cpu_hour" in str(err.value) and "cost.gb_hours" in str(err.value) and "gb_hour" in str(err.value)


def test_the_mean_latency_of_a_window_comes_from_the_servers_histogram_and_is_recorded():
    def timed(seconds: float, count: float) -> str:
        return (
            "# TYPE workbench_model_request_duration_seconds histogram\n"
            f'workbench_model_request_duration_seconds_sum{{version="3"}} {seconds}\n'
            f'workbench_model_request_duration_seconds_count{{version="3"}} {count}\n'
        )

    before = cost.parse_sample(metrics(cpu=10, rss=2**30, ok=100) + timed(0.2, 100), t=0.0)
    after = cost.parse_sample(metrics(cpu=11, rss=2**30, ok=300) + timed(0.6, 300), t=10.0)
    result = cost.cost_of([before, after], PRICES, version="3")
    assert result.mean_latency_ms == pytest.approx(2.0)  # 0.4 s over 200 requests
    untimed = cost.cost_of(
        [cost.parse_sample(metrics(cpu=1, rss=1, ok=1), t=0.0), cost.parse_sample(metrics(cpu=2, rss=1, ok=2), t=1.0)],
        PRICES,
        version="3",
    )
    assert untimed.mean_latency_ms is None

    client = FakeClient()
    cost.record(client, "iris", result)
    tags = client.tags[("iris", "3")]
    assert measured_cost(tags, LATENCY_TAG) == pytest.approx(2.0) and measured_cost(tags) == pytest.approx(
        result.per_1k
    )
