"""Blue-green with real processes: two `workbench serve` environments behind `workbench router` on loopback.

Blue is the router's stable upstream, green its canary upstream. The tests run in file order (they share the
servers): refusals first (traffic stays on blue), then the switch, the switch back, and the cost of each version.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_workbench import procs
from mlops_workbench.errors import InputError
from mlops_workbench.paramspec import CostParams
from mlops_workbench.registry import audit
from mlops_workbench.serving.client import ModelServerClient, RouterClient
from mlops_workbench.serving.faults import Faults
from mlops_workbench.serving.server import start_server
from mlops_workbench.strategies import bluegreen as bg
from mlops_workbench.strategies import cost
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
SETOSA, VIRGINICA = [5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3]
CASES = [{"rows": [SETOSA], "expect": "setosa"}, {"rows": [VIRGINICA], "expect": "virginica"}, {"rows": [SETOSA]}]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, save_iris_model):
    """(home, router client, {environment: url}) with weight 0: all traffic on blue."""
    home = tmp_path_factory.mktemp("bluegreen-home")
    model_path = save_iris_model(home)[0]
    try:
        blue = start_server(Workbench.from_env(home), str(model_path), name="bg-blue", model_name="iris")
        green = start_server(
            Workbench.from_env(home), str(model_path), name="bg-green", model_name="iris", allow_faults=True
        )
        port = procs.free_port()
        cmd = procs.workbench_cmd(
            "router", "--stable", blue.url, "--canary", green.url, "--weight", "0", "--port", str(port)
        )
        router = procs.start(Workbench.from_env(home), "bg-router", cmd, port)
        yield home, RouterClient.of(Workbench.from_env(home), router.url), {"blue": blue.url, "green": green.url}
    finally:
        procs.stop_all(Workbench.from_env(home))


def upstreams(router: RouterClient, n: int = 30) -> set[str | None]:
    """Which upstreams answered ``n`` predictions sent through the router (every one must succeed)."""
    replies = [router.send([SETOSA]) for _ in range(n)]
    assert all(r.status == 200 for r in replies), [r.status for r in replies]
    return {r.upstream for r in replies}


def last_switch(home: Path) -> audit.AuditEntry:
    return [e for e in audit.read(Workbench.from_env(home)) if e.action == audit.AuditAction.SWITCH][-1]


def test_environments_are_the_routers_upstreams_and_blue_is_live(stack):
    home, router, urls = stack
    assert bg.environments(router) == urls and bg.live(router) == "blue"
    assert upstreams(router) == {"stable"}
    with pytest.raises(InputError, match="Unknown environment 'purple'"):
        bg.switch(
            Workbench.from_env(home), router, bg.smoke(Workbench.from_env(home), urls["green"], CASES), to="purple"
        )


def test_smoke_reports_each_case_and_bad_cases_are_named(stack):
    home, _, urls = stack
    good = bg.smoke(Workbench.from_env(home), urls["green"], CASES)
    assert (
        good.passed and good.version == "unregistered" and [c.got for c in good.checks][:2] == ["setosa", "virginica"]
    )
    wrong = bg.smoke(Workbench.from_env(home), urls["green"], [{"rows": [SETOSA], "expect": "versicolor"}])
    assert not wrong.passed and "case 0: status 200, got 'setosa', expected 'versicolor'" in wrong.summary()
    with pytest.raises(InputError, match=r"smoke case 0 has 1 bad field"):
        bg.smoke(Workbench.from_env(home), urls["green"], [{"rows": []}])
    with pytest.raises(InputError, match="at least one smoke case"):
        bg.smoke(Workbench.from_env(home), urls["green"], [])


def test_a_failed_smoke_test_keeps_traffic_on_blue_and_is_audited(stack):
    home, router, urls = stack
    green = ModelServerClient.of(Workbench.from_env(home), urls["green"])
    green.set_faults(Faults(error_rate=1.0))
    try:
        failed = bg.smoke(Workbench.from_env(home), urls["green"], CASES)
    finally:
        green.set_faults(Faults())
    assert not failed.passed and all(c.status == 500 for c in failed.checks)
    with pytest.raises(bg.SwitchRefused, match="Switch to green refused, traffic unchanged: smoke FAILED"):
        bg.switch(Workbench.from_env(home), router, failed, by="ops")
    assert router.weight() == 0 and upstreams(router) == {"stable"}
    refused = last_switch(home)
    assert (refused.outcome, refused.serving, refused.approver) == ("refused", "green", "ops")
    assert "0/3 cases passed" in refused.error


def test_a_smoke_test_of_the_wrong_environment_or_a_dead_green_is_refused(stack):
    home, router, urls = stack
    with pytest.raises(bg.SwitchRefused, match=f"the smoke test ran against {urls['blue']}, but green is"):
        bg.switch(Workbench.from_env(home), router, bg.smoke(Workbench.from_env(home), urls["blue"], CASES))
    dead = bg.smoke(Workbench.from_env(home), "http://127.0.0.1:9", CASES)  # nothing listens on the discard port
    assert not dead.passed and dead.version is None and "did not answer" in dead.summary()
    stale = bg.smoke(Workbench.from_env(home), urls["green"], CASES).model_copy(update={"version": "41"})
    with pytest.raises(bg.SwitchRefused, match="green now serves vunregistered, the smoke test passed v41"):
        bg.switch(Workbench.from_env(home), router, stale)
    assert router.weight() == 0


def test_switch_moves_all_traffic_to_green_in_one_call_and_switch_back_returns_it(stack):
    home, router, urls = stack
    done = bg.switch(
        Workbench.from_env(home),
        router,
        bg.smoke(Workbench.from_env(home), urls["green"], CASES),
        by="ops",
        reason="release 2",
    )
    assert (done.live, done.weight, done.url, done.version) == ("green", 100.0, urls["green"], "unregistered")
    assert bg.live(router) == "green" and upstreams(router) == {"canary"}
    switched = last_switch(home)
    assert (switched.outcome, switched.serving, switched.reason, switched.model) == (
        "switched",
        "green",
        "release 2",
        "iris",
    )
    back = bg.switch_back(Workbench.from_env(home), router, by="oncall")
    assert (back.live, back.weight) == ("blue", 0.0) and upstreams(router) == {"stable"}
    assert (last_switch(home).serving, last_switch(home).approver) == ("blue", "oncall")


def test_switch_back_is_refused_while_blue_is_down(stack):
    home, router, urls = stack
    router.set_weight(100)
    procs.stop(Workbench.from_env(home), "bg-blue")
    try:
        with pytest.raises(bg.SwitchRefused, match="blue at .* does not answer"):
            bg.switch_back(Workbench.from_env(home), router)
        assert router.weight() == 100 and last_switch(home).outcome == "refused"
    finally:
        router.set_weight(0)


def test_each_version_has_a_cost_per_1000_predictions(stack):
    home, _, urls = stack
    green = ModelServerClient.of(Workbench.from_env(home), urls["green"])

    def traffic() -> None:
        for _ in range(200):
            assert green.send([SETOSA]).status == 200

    measured = cost.measure(
        Workbench.from_env(home), {"green": urls["green"]}, traffic, CostParams(cpu_hour=0.04, gb_hour=0.005)
    )
    green_cost = measured["green"]
    assert green_cost.predictions == 200 and green_cost.version == "unregistered"
    assert green_cost.cpu_seconds >= 0 and green_cost.gib_hours > 0 and green_cost.per_1k > 0
    assert green_cost.per_1k == pytest.approx(green_cost.cost / 200 * 1000)
    assert green_cost.mean_latency_ms is not None and 0 < green_cost.mean_latency_ms < 1000, "from its histogram"
