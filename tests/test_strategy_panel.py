"""Lab 08's strategy panel: the split, the versions' cost and approvals, GitOps, and the blue-green buttons.

The pure parts are tested on what the real pieces answer (the router's weights, audit entries); one test runs a
real router whose two environments are down and checks that the panel says so and that both buttons refuse
without moving traffic. The browser test with real model servers is tests/test_browser_strategies.py.
"""

from __future__ import annotations

import pytest

from mlops_workbench import procs
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.rollout.backends.local import ROUTER
from mlops_workbench.serving import paths
from mlops_workbench.strategies import panel
from mlops_workbench.strategies.panel import StrategyView, VersionLine


def weights(canary: float) -> dict:
    return {
        "canary": canary,
        "stable": 100.0 - canary,
        "upstreams": {"stable": "http://127.0.0.1:8001", "canary": "http://127.0.0.1:8002"},
    }


def test_the_split_names_each_environment_its_weight_version_and_health():
    served = {"stable": {"name": "iris", "version": "1"}, "canary": "does not answer (refused)"}
    ups = panel.upstreams(weights(0.0), served)
    assert [(u.environment, u.role, u.weight, u.version, u.healthy, u.problem) for u in ups] == [
        ("blue", "stable", 100.0, "1", True, ""),
        ("green", "canary", 0.0, None, False, "does not answer (refused)"),
    ]
    assert panel.live(ups) == "blue"
    assert panel.live(panel.upstreams(weights(100.0), served)) == "green"
    assert panel.live(panel.upstreams(weights(30.0), served)) is None, "a split has no live environment"


def test_approvals_say_who_asked_who_approved_and_what_was_refused():
    def entry(action, outcome, version, **kw) -> AuditEntry:
        return AuditEntry(action=action, outcome=outcome, model="iris", version=version, alias="production", **kw)

    said = panel.approvals(
        [
            entry(AuditAction.APPROVE, AuditOutcome.REFUSED, "2", approver="me", error="self-approval: me registered"),
            entry(AuditAction.APPROVE, AuditOutcome.APPROVED, "2", approver="rev"),
            entry(AuditAction.PROMOTE, AuditOutcome.PROMOTED, "2", approver="rev", requester="me"),
            entry(AuditAction.APPROVE, AuditOutcome.REFUSED, "3", approver="me", error="self-approval: me registered"),
            entry(AuditAction.PROMOTE, AuditOutcome.PROMOTED, "1", approver="lead"),
            AuditEntry(action=AuditAction.PROMOTE, outcome=AuditOutcome.PROMOTED, model="other", version="2"),
        ],
        "iris",
    )
    assert said == {
        "2": "approved for production by rev; promoted to production: requested by me, approved by rev",
        "3": "approval refused: self-approval: me registered",
        "1": "promoted to production by lead",
    }


def test_the_html_shows_the_split_the_costs_and_the_problems():
    ups = panel.upstreams(
        weights(100.0), {"stable": {"name": "iris", "version": "1"}, "canary": {"name": "iris", "version": "2"}}
    )
    versions = [
        VersionLine(version="2", aliases=["production"], serving=["green"], accuracy=0.9667, accuracy_source="registry", latency="1.8 ms",
                    cost="0.0125 EUR", approvals="approved for production by rev"),
        VersionLine(version="1", aliases=[], serving=["blue"], accuracy=None, latency="", cost="", approvals=""),
    ]  # fmt: skip
    view = StrategyView(
        model="iris", at="10:00:00", router="http://r", live="green", upstreams=ups, versions=versions,
        gitops="Synced at abc1234 (last synced abc1234, auto-sync on), Healthy", problems=["run `workbench x`"],
    )  # fmt: skip
    shown = panel.view_html(view)
    assert "<b>green</b> has all the traffic" in shown
    assert "<tr data-env='green'><td><b>green</b> (canary)</td><td>100%</td><td>v2</td>" in shown
    assert "<td>0.967 (registry)</td><td>1.8 ms</td><td>0.0125 EUR</td><td>approved for production by rev</td>" in shown
    assert "<td>-</td><td>-</td><td>not measured</td>" in shown
    assert "GitOps: <b>Synced at abc1234" in shown and "run <code>workbench x</code>" in shown


def test_with_nothing_running_the_panel_says_what_to_start(wb):
    view = panel.observe(wb, "iris")
    assert view.router is None and view.upstreams == [] and view.live is None
    assert view.problems[0] == panel.NO_BACKEND
    assert "the registry cannot be read" in view.problems[1] and "workbench mlflow up" in view.problems[1]
    assert not wb.layout.rollout_ports.exists(), "reading the panel reserves no ports"
    assert "<code>LocalBackend(lab.wb, model_name=...).up()</code>" in panel.view_html(view)


@pytest.mark.slow
def test_both_buttons_refuse_when_the_environment_does_not_answer_and_traffic_stays(wb):
    dead = [procs.free_port(), procs.free_port()]
    port = procs.free_port()
    stable, canary = (f"http://127.0.0.1:{p}" for p in dead)
    cmd = procs.workbench_cmd("router", "--stable", stable, "--canary", canary, "--port", str(port))
    procs.start(wb, ROUTER, cmd, port, health_path=paths.HEALTH, timeout=60)
    router = panel.router_of(wb)
    assert router is not None and router.url == f"http://127.0.0.1:{port}"
    view = panel.observe(wb, "iris")
    assert [(u.environment, u.weight, u.healthy) for u in view.upstreams] == [
        ("blue", 100.0, False),
        ("green", 0.0, False),
    ]
    assert [u.problem for u in view.upstreams] == ["does not answer (refused)"] * 2 and view.live == "blue"
    ok, message = panel.switch_action(wb, router, by="tester")
    assert not ok and message.startswith("Switch to green refused, traffic unchanged: smoke FAILED at " + canary)
    ok, back = panel.switch_back_action(wb, router, by="tester")
    assert not ok and "Switch back to blue refused" in back and stable in back
    assert router.weight() == 0.0
    refused = [e for e in audit.read(wb) if e.action is AuditAction.SWITCH]
    assert [(e.serving, e.outcome, e.approver) for e in refused] == [
        ("green", AuditOutcome.REFUSED, "tester"),
        ("blue", AuditOutcome.REFUSED, "tester"),
    ]
