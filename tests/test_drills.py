"""Drills: the catalog, the pure post-mortem logic, the session and CLI, and the schema-break drill end to end
(git + pytest only, no services)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml
from typer.testing import CliRunner

from mlops_workbench import drills
from mlops_workbench.cli.main import app
from mlops_workbench.drills import catalog, postmortem, session
from mlops_workbench.drills.base import DrillError
from mlops_workbench.drills.spec import CheckOutcome, DrillReport, PostMortem, PostMortemTruth

runner = CliRunner()


def test_catalog_has_the_seven_drills_of_the_issue():
    assert set(catalog.names()) >= {"bad-model", "stuck-canary", "irreproducible", "schema-break",
                                    "signature-mismatch", "metrics-down", "triple-v"}
    for name in catalog.names():
        drill = catalog.get(name)
        assert drill.spec.hints and drill.spec.answer and drill.destructive_fixes()
        assert any(c.guard for c in drill.all_checks()), f"{name} has no guard check"
        assert ("postmortem" in [c.id for c in drill.all_checks()]) == drill.spec.incident
    assert sorted(catalog.names(shuffle=True, seed=3)) == sorted(catalog.names())


def test_unknown_drill_names_the_known_ones():
    with pytest.raises(DrillError, match="Known drills: bad-model"):
        catalog.get("nope")


TRUTH = PostMortemTruth(time_to_detect_s=30.0, time_to_restore_s=45.0, blast_radius=40, root_cause="model",
                        evidence="test")


def test_postmortem_matches_within_tolerance_and_names_each_wrong_field():
    ok = PostMortem(time_to_detect_s=31, time_to_restore_s=44, blast_radius=41, root_cause="model")
    assert postmortem.compare(ok, TRUTH) == []
    bad = PostMortem(time_to_detect_s=5, time_to_restore_s=45, blast_radius=10, root_cause="data")
    problems = postmortem.compare(bad, TRUTH)
    assert len(problems) == 3
    assert any(p.startswith("root_cause") for p in problems) and any("blast_radius 10" in p for p in problems)
    open_incident = TRUTH.model_copy(update={"time_to_restore_s": None})
    assert any("not over yet" in p for p in postmortem.compare(ok, open_incident))


def test_postmortem_rejects_unknown_fields_and_negative_values():
    with pytest.raises(ValueError):
        PostMortem(time_to_detect_s=-1, time_to_restore_s=1, blast_radius=0, root_cause="model")
    with pytest.raises(ValueError):
        PostMortem.model_validate({"time_to_detect_s": 1, "time_to_restore_s": 1, "blast_radius": 0,
                                   "root_cause": "model", "lesson": "prose is not graded"})


def test_registry_truth_from_audit_entries():
    entries = [
        {"ts": "2026-01-01T10:00:20.000+00:00", "action": "promote", "alias": "staging", "version": "1",
         "outcome": "promoted"},
        {"ts": "2026-01-01T10:00:50.000+00:00", "action": "rollback", "alias": "production", "version": "1",
         "outcome": "rolled_back"},
    ]
    truth = postmortem.registry_truth(entries, "2026-01-01T10:00:00.000+00:00", "2", 40, "model")
    assert (truth.time_to_detect_s, truth.time_to_restore_s, truth.blast_radius) == (20.0, 50.0, 40)
    assert postmortem.registry_truth([], "2026-01-01T10:00:00.000+00:00", "2", 0, "model").time_to_restore_s is None


def test_rollout_truth_from_the_event_log():
    totals = lambda c, s: {"canary": {"requests": c, "errors": 0}, "stable": {"requests": s, "errors": 0}}  # noqa: E731
    evs = [
        {"t": 100.0, "type": "start", "rollout": "r1"},
        {"t": 101.0, "type": "weight", "rollout": "r1", "canary": 25},
        {"t": 110.0, "type": "fault", "rollout": "r1", "totals": totals(5, 15)},
        {"t": 130.0, "type": "decision", "rollout": "r1", "decision": "abort"},
        {"t": 130.5, "type": "weight", "rollout": "r1", "canary": 0},
        {"t": 130.6, "type": "traffic", "rollout": "r1", "totals": totals(20, 60)},
        {"t": 131.0, "type": "fault", "rollout": "other", "totals": totals(0, 0)},
    ]
    truth = postmortem.rollout_truth(evs, "r1", "config")
    assert (truth.time_to_detect_s, truth.time_to_restore_s, truth.blast_radius) == (20.0, 20.5, 15)
    assert postmortem.rollout_truth(evs, "missing", "config").time_to_detect_s is None


def test_debrief_lists_failures_then_shows_the_model_answer_once_passed():
    failed = CheckOutcome(id="ci-green", passed=False, message="CI is red")
    report = DrillReport(drill="schema-break", passed=False, seconds=75, hints_used=1, failed=[failed],
                         checks=[failed], checked_at="now")
    text = session.debrief(report)
    assert "NOT YET after 1m15s" in text and "FAILED ci-green: CI is red" in text and "Model answer" not in text
    passed = report.model_copy(update={"passed": True, "failed": [], "checks": []})
    assert "Model answer" in session.debrief(passed)


def test_cli_without_a_running_drill_exits_2(home):
    for args in (["drill", "status"], ["drill", "check"], ["drill", "hint"], ["drill", "start", "nope"],
                 ["drill", "start"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
    assert "No drill is running" in runner.invoke(app, ["drill", "check"]).output
    listed = json.loads(runner.invoke(app, ["drill", "list", "--json"]).output)
    assert len(listed) == len(catalog.names()) and listed[0]["name"] == "bad-model"


def test_drill_that_needs_prometheus_refuses_clearly_without_it(home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PROMETHEUS", str(home / "no-such-prometheus"))
    result = runner.invoke(app, ["drill", "start", "metrics-down"])
    assert result.exit_code == 2 and "needs a Prometheus server" in result.output


def test_schema_break_through_the_cli(home):
    """start (setup) -> check fails (exit 1, report) -> hint -> reference fix -> check passes -> reset."""
    assert runner.invoke(app, ["drill", "start", "schema-break"]).exit_code == 0
    status = json.loads(runner.invoke(app, ["drill", "status", "--json"]).output)
    assert status["drill"] == "schema-break" and status["elapsed_s"] >= 0
    broken = runner.invoke(app, ["drill", "check"])
    assert broken.exit_code == 1 and "FAILED ci-green" in broken.output
    report = json.loads((home / "drills" / "report.json").read_text())
    assert report["passed"] is False and [f["id"] for f in report["failed"]] == ["ci-green", "data-complete"]
    assert all(f["message"] for f in report["failed"])
    assert "hint 1/" in runner.invoke(app, ["drill", "hint"]).output
    drill = drills.get("schema-break")
    drill.reference_fix(drill.context(home))
    fixed = runner.invoke(app, ["drill", "check", "--json"])
    assert fixed.exit_code == 0, fixed.output
    report = json.loads(fixed.output)
    assert report["passed"] and report["hints_used"] == 1 and report["failed"] == [] and report["seconds"] > 0
    assert len(list((home / "drills" / "reports").glob("schema-break-*.json"))) == 2
    assert runner.invoke(app, ["drill", "reset"]).exit_code == 0
    assert not (home / "drills" / "schema-break").exists() and session.current(home) is None


def test_schema_break_guards_catch_every_destructive_fix(home):
    drill = drills.get("schema-break")
    ctx = drill.context(home)
    for name, destroy in drill.destructive_fixes().items():
        drill.reset(ctx)
        drill.setup(ctx)
        destroy(ctx)
        outcomes = {o.id: o for o in drill.grade(ctx)}
        assert not all(o.passed for o in outcomes.values()), name
        assert any(not o.passed and o.guard for o in outcomes.values()), f"{name}: no guard caught it"
    every = [c.id for c in drill.all_checks()]
    picked = drill.grade(ctx, only=every[-1:])
    assert len(every) > 1 and [o.id for o in picked] == every[-1:], "only= runs just the checks asked for"


def test_record_writes_a_validated_postmortem(home):
    path = drills.record("bad-model", home=home, time_to_detect_s=3, time_to_restore_s=4, blast_radius=5,
                         root_cause="model")
    assert yaml.safe_load(path.read_text())["blast_radius"] == 5
    with pytest.raises(ValueError):
        drills.record("bad-model", home=home, time_to_detect_s=3, time_to_restore_s=4, blast_radius=5,
                      root_cause="gremlins")
    with pytest.raises(DrillError, match="takes no record"):
        drills.record("schema-break", home=home, cause="x")


def test_drill_tests_run_by_hand_ignore_the_project_around_the_state_folder(tmp_path):
    """The state folder sits inside the checkout by default: `python -m pytest` typed in a drill's repo must use
    the repo's own settings, not the options of the project around it."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "--no-such-option"\n')
    drill = drills.get("schema-break")
    ctx = drill.context(checkout / ".workbench")
    drill.setup(ctx)
    try:
        by_hand = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
                                 cwd=ctx.folder / "repo", capture_output=True, text=True, timeout=300)
        assert "no-such-option" not in by_hand.stderr, by_hand.stderr[-2000:]
        assert by_hand.returncode == 1 and "1 failed" in by_hand.stdout, by_hand.stdout[-2000:]  # the broken data
    finally:
        drill.reset(ctx)


def test_validate_stops_what_the_drills_started_and_keeps_what_ran_before(home, monkeypatch):
    """A drill's setup starts the tracking server; `workbench drill validate` must not leave it running, nor stop
    a service that was running before it."""
    from mlops_workbench import procs
    from mlops_workbench.drills import validate as v
    from mlops_workbench.procs import alive

    http_server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]

    def serve(name):
        port = procs.free_port()
        return procs.start(name, [*http_server, str(port)], port, health_path="/", home=home)

    def fake_validation(drill, where, say):
        started.append(serve("started-by-setup"))
        raise DrillError("setup went wrong")  # the services go even when a drill fails

    before, started = serve("before"), []
    monkeypatch.setattr(v, "validate_drill", fake_validation)
    try:
        with pytest.raises(DrillError):
            v.validate(["schema-break"], home)
        assert not alive(started[0].pid) and [s.name for s in procs.running(home)] == ["before"]
        assert alive(before.pid)
    finally:
        procs.stop_all(home)
