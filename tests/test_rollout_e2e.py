"""Canary rollouts end to end: real mlflow, real `workbench serve` processes, router, Prometheus, load.

One module-scoped environment (tracking server, three registered versions, stable
server, router, Prometheus); each test deploys its own canary through the
controller and checks that the rollout ends safe. The healthy promotion runs last
because it moves the production alias.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from mlops_workbench import procs, tracking
from mlops_workbench.rollout import events, ops, prepare, timeline
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.backends.local import CANARY, LocalBackend
from mlops_workbench.rollout.controller import Controller
from mlops_workbench.rollout.load import BackgroundLoad
from mlops_workbench.rollout.metrics import PrometheusSource
from mlops_workbench.rollout.policy import builtin
from mlops_workbench.serving.faults import Faults
from mlops_workbench.workbench import Workbench

pytestmark = [pytest.mark.slow, pytest.mark.serial]
DEMO = builtin("demo")
SLACK = 6.0  # seconds on top of the policy's bound for process and scrape lag on a busy machine


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    home = tmp_path_factory.mktemp("rollout-home")
    try:
        versions = prepare.ensure_versions(Workbench.from_env(home), roles=("stable", "candidate", "bad"))
        LocalBackend(Workbench.from_env(home)).up()
        yield home, versions
    finally:
        for cleanup in (ops.down, tracking.down, procs.stop_all):
            try:
                cleanup(Workbench.from_env(home))
            except Exception:  # noqa: BLE001 - the next step still has to run
                pass
    assert not procs.running(Workbench.from_env(home))


def production(home) -> str:
    from mlflow import MlflowClient

    return str(MlflowClient().get_model_version_by_alias("iris", "production").version)


def rollout(home, candidate, faults=None, rps=40.0, source=None, metrics="auto", seed=0):
    backend = LocalBackend(Workbench.from_env(home), canary_faults=faults, metrics=metrics)
    ctl = Controller(
        Workbench.from_env(home),
        backend,
        source or backend.metrics_source(),
        ops.registry_promoter(Workbench.from_env(home)),
        tick=0.2,
    )
    with BackgroundLoad(backend.router_url, rps, seed=seed) as bg:
        state = ctl.start(DEMO, candidate)
    return state, backend, bg.result


def assert_rolled_back(home, state, backend, stable) -> dict:
    assert state.phase in ("Aborted", "Inconclusive"), state.reason
    assert backend.weight() == 0 and not backend.canary_alive()
    assert production(home) == stable, "a rollback must leave the production alias untouched"
    evs = events.read(Workbench.from_env(home), rollout=state.id)
    assert not any(e.type == "decision" and e.decision == "promote" for e in evs)
    return timeline.incident(evs)


def test_error_fault_rolls_back_within_the_bound(env) -> None:
    home, v = env
    stable = production(home)
    state, backend, result = rollout(home, v.candidate, Faults(error_rate=0.3, seed=1))
    inc = assert_rolled_back(home, state, backend, stable)
    assert state.phase == "Aborted" and "error-rate" in state.reason
    assert inc["time_to_detect_s"] <= DEMO.detection_bound() + SLACK, inc
    assert inc["blast_radius"]["canary_errors"] > 0
    assert result.summary()["canary"]["errors"] > 0  # the clients did see the incident


def test_latency_fault_rolls_back_on_relative_p99_direct_scrape(env) -> None:
    home, v = env
    stable = production(home)
    state, backend, _ = rollout(home, v.candidate, Faults(latency_ms=300), metrics="direct")
    assert_rolled_back(home, state, backend, stable)
    assert state.phase == "Aborted" and "latency-p99" in state.reason
    failed = [
        e
        for e in events.read(Workbench.from_env(home), rollout=state.id)
        if e.type == "measurement" and e.phase == "failed" and e.metric == "latency-p99"
    ]
    assert failed and failed[0].source == "direct" and failed[0].value > failed[0].baseline * 1.5


def test_bad_model_is_caught_by_the_distribution_check(env) -> None:
    home, v = env
    stable = production(home)
    state, backend, result = rollout(home, v.bad)
    assert_rolled_back(home, state, backend, stable)
    assert state.phase == "Aborted" and "prediction-shift" in state.reason
    assert result.summary()["all"]["errors"] == 0  # it never errs: only its predictions are wrong


def test_low_traffic_canary_is_inconclusive_not_failed(env) -> None:
    home, v = env
    stable = production(home)
    state, backend, _ = rollout(home, v.candidate, rps=2)
    assert_rolled_back(home, state, backend, stable)
    assert state.phase == "Inconclusive"
    assert "failed" not in {p for phases in state.phases.values() for p in phases}


def test_canary_crash_fails_over_and_rolls_back(env) -> None:
    home, v = env
    stable = production(home)
    state, backend, result = rollout(home, v.candidate, Faults(crash_after=40))
    assert_rolled_back(home, state, backend, stable)
    assert state.phase == "Aborted" and "canary process is down" in state.reason
    summary = result.summary()
    assert summary["all"]["errors"] <= 3, summary  # failover to stable: clients barely notice


def test_prometheus_unreachable_is_inconclusive_never_promote(env) -> None:
    home, v = env
    stable = production(home)
    dead = PrometheusSource(f"http://127.0.0.1:{procs.free_port()}")
    state, backend, _ = rollout(home, v.candidate, source=dead)
    assert_rolled_back(home, state, backend, stable)
    assert state.phase == "Inconclusive" and "consecutiveErrorLimit" in state.reason
    measured = [e for e in events.read(Workbench.from_env(home), rollout=state.id) if e.type == "measurement"]
    assert measured and all(e.phase == "error" for e in measured)


def test_controller_killed_mid_rollout_ends_safe(env) -> None:
    home, v = env
    stable = production(home)
    backend = LocalBackend(Workbench.from_env(home))
    environ = {**os.environ, "WORKBENCH_HOME": str(home), "MLFLOW_TRACKING_URI": tracking.url(Workbench.from_env(home))}
    cmd = [
        sys.executable,
        "-m",
        "mlops_workbench.cli.main",
        "rollout",
        "start",
        "--candidate",
        v.candidate,
        "--policy",
        "demo",
    ]
    with BackgroundLoad(backend.router_url, 40, seed=7):
        proc = subprocess.Popen(cmd, env=environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 120
            while time.time() < deadline:
                s = st.load(Workbench.from_env(home))
                if s and s.candidate == v.candidate and not s.done and s.weight > 0:
                    break
                time.sleep(0.2)
            else:
                pytest.fail("the controller never set a canary weight")
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert backend.weight() > 0  # traffic still on the canary, and nobody is driving
        procs.stop(Workbench.from_env(home), CANARY)  # ... and the canary dies too: a half-dead canary
        state = ops.resume(Workbench.from_env(home))
    assert state is not None and state.phase == "Aborted" and "controller restarted" in state.reason
    assert backend.weight() == 0 and not backend.canary_alive() and production(home) == stable


def test_operator_abort_ends_a_running_rollout_safely(env) -> None:
    home, v = env
    stable = production(home)
    backend = LocalBackend(Workbench.from_env(home))
    ctl = Controller(
        Workbench.from_env(home),
        backend,
        backend.metrics_source(),
        ops.registry_promoter(Workbench.from_env(home)),
        tick=0.2,
    )
    outcome: dict = {}
    with BackgroundLoad(backend.router_url, 20.0, seed=5):
        runner = threading.Thread(target=lambda: outcome.update(state=ctl.start(DEMO, v.candidate)))
        runner.start()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
            st.load(Workbench.from_env(home)) and backend.canary_alive() and backend.weight() > 0
        ):
            time.sleep(0.2)
        assert backend.weight() > 0, "the canary never got traffic"
        state = ops.abort(Workbench.from_env(home), reason="operator saw a bad dashboard")
        runner.join(timeout=60)
    assert state is not None and state.phase == "Aborted" and "operator" in state.reason
    assert outcome["state"].phase == "Aborted"
    assert backend.weight() == 0 and not backend.canary_alive()
    assert production(home) == stable
    assert ops.abort(Workbench.from_env(home)).phase == "Aborted", "aborting a finished rollout changes nothing"


MALFORMED = [
    b"[" * 2000 + b"]" * 2000,
    b'{"instances": [[1' + b"0" * 400 + b", 2, 3, 4]]}",
    b'{"dataframe_split": {"columns": [{"a": 1}, "b", "c", "d"], "data": [[1, 2, 3, 4]]}}',
    b'{"instances": [["5.1", 3.5, 1.4, 0.2]]}',
    b"not json",
    b'{"instances": [[NaN, 1, 2, 3]]}',
]


class MalformedBurst:
    """Clients sending broken bodies through the router (about ``rps`` a second) until the block ends."""

    def __init__(self, url: str, rps: float = 20.0) -> None:
        self.url, self.pause, self.statuses = url, 1.0 / rps, []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30) as client:
            i = 0
            while not self._stop.wait(self.pause):
                body = MALFORMED[i % len(MALFORMED)]
                self.statuses.append(
                    client.post("/invocations", content=body, headers={"content-type": "application/json"}).status_code
                )
                i += 1

    def __enter__(self) -> MalformedBurst:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(30)


def test_healthy_candidate_is_promoted_with_an_audit_record(env) -> None:
    """... even while other clients send a steady burst of malformed requests: a 4xx is the client's fault,
    never the canary's, so it must not count as an error in the analysis."""
    home, v = env
    with MalformedBurst(LocalBackend(Workbench.from_env(home)).router_url) as burst:
        state, backend, result = rollout(home, v.candidate, seed=3)
    assert state.phase == "Promoted", state.reason
    assert len(burst.statuses) >= 100 and set(burst.statuses) == {400}, sorted(set(burst.statuses))
    router_metrics = httpx.get(backend.router_url + "/metrics", timeout=5).text
    assert 'workbench_router_requests_total{status="400",version="canary"}' in router_metrics  # it got its share
    rates = [
        e.value
        for e in events.read(Workbench.from_env(home), rollout=state.id)
        if e.type == "measurement" and e.metric == "error-rate" and e.value is not None
    ]
    canary_errors = [
        line
        for line in router_metrics.splitlines()
        if 'version="canary"' in line and ('status="5' in line or "upstream_failures" in line)
    ]  # which failure it was, should one come: a 5xx from the canary, or an upstream that did not answer
    assert rates and max(rates) == 0, (rates, canary_errors)
    assert production(home) == v.candidate
    assert httpx.get(backend.url("stable") + "/version", timeout=5).json()["version"] == v.candidate
    assert backend.weight() == 0 and not backend.canary_alive()
    audit = (home / "audit" / "registry.jsonl").read_text()
    assert '"approver": "rollout-controller"' in audit and "canary rollout" in audit
    assert result.summary()["all"]["errors"] == 0
