"""Drills: the catalog, the pure post-mortem logic, the session and CLI, and the schema-break drill end to end
(git + pytest only, no services)."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from drill_fakes import VALIDATE_TIMEOUT
from typer.testing import CliRunner

from mlops_workbench import drills, settings
from mlops_workbench.cli.main import app
from mlops_workbench.drills import catalog, grading, session, variants
from mlops_workbench.drills.base import DrillError
from mlops_workbench.drills.spec import CheckOutcome, DrillReport
from mlops_workbench.workbench import Workbench

runner = CliRunner()


def test_catalog_has_the_seven_drills_of_the_issue():
    assert set(catalog.names()) >= {
        "bad-model",
        "stuck-canary",
        "irreproducible",
        "schema-break",
        "signature-mismatch",
        "metrics-down",
        "triple-v",
    }
    for name in catalog.names():
        drill = catalog.get(name)
        assert drill.spec.hints and drill.spec.answer and drill.destructive_fixes()
        keys = [v.key for v in drill.variants]
        assert len(keys) >= variants.MIN_VARIANTS and len(set(keys)) == len(keys), f"{name}: {keys}"
        assert len({type(v) for v in drill.variants}) == 1 and drill.teardown in drill.destructive_fixes()
        assert set(variants.seeds(drill.variants, name)) == set(keys)
        assert any(c.guard for c in drill.all_checks()), f"{name} has no guard check"
        assert ("postmortem" in [c.id for c in drill.all_checks()]) == drill.spec.incident
    assert sorted(catalog.names(shuffle=True, seed=3)) == sorted(catalog.names())


def test_unknown_drill_names_the_known_ones():
    with pytest.raises(DrillError, match="Known drills: bad-model"):
        catalog.get("nope")


def test_debrief_lists_failures_then_shows_the_model_answer_once_passed():
    failed = CheckOutcome(id="ci-green", passed=False, message="CI is red")
    report = DrillReport(
        drill="schema-break", passed=False, seconds=75, hints_used=1, failed=[failed], checks=[failed], checked_at="now"
    )
    text = session.debrief(report)
    assert "NOT YET after 1m15s" in text and "FAILED ci-green: CI is red" in text and "Model answer" not in text
    passed = report.model_copy(update={"passed": True, "failed": [], "checks": []})
    assert "Model answer" in session.debrief(passed)


def test_cli_without_a_running_drill_exits_2(home):
    for args in (
        ["drill", "status"],
        ["drill", "check"],
        ["drill", "hint"],
        ["drill", "start", "nope"],
        ["drill", "start"],
    ):
        result = runner.invoke(app, args)
        assert result.exit_code == 2, (args, result.output)
    assert "No drill is running" in runner.invoke(app, ["drill", "check"]).output
    listed = json.loads(runner.invoke(app, ["drill", "list", "--json"]).output)
    assert len(listed) == len(catalog.names()) and listed[0]["name"] == "bad-model"


def test_drill_that_needs_prometheus_refuses_clearly_without_it(home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PROMETHEUS", str(home / "no-such-prometheus"))
    result = runner.invoke(app, ["drill", "start", "metrics-down"])
    assert result.exit_code == 2 and "needs prometheus" in result.output and "apt-get install" in result.output


def test_shuffle_picks_only_drills_whose_tools_are_installed_and_names_the_others():
    ok, left_out = catalog.runnable(probe=lambda tool: False)
    assert "metrics-down" in left_out and "metrics-down" not in ok and "prometheus" in left_out["metrics-down"]
    assert set(ok) | set(left_out) == set(catalog.names())
    picked = {catalog.pick(seed, probe=lambda tool: False)[0] for seed in range(40)}
    assert "metrics-down" not in picked and len(picked) > 2
    everything, nothing = catalog.runnable(probe=lambda tool: True)
    assert everything == catalog.names() and nothing == {}


def test_shuffled_list_says_what_it_left_out(home, monkeypatch):
    monkeypatch.setenv("WORKBENCH_PROMETHEUS", str(home / "no-such-prometheus"))
    result = runner.invoke(app, ["drill", "list", "--shuffle"])
    assert result.exit_code == 0 and "left out metrics-down" in result.output and "prometheus" in result.output


def test_reset_all_resets_every_drill_that_left_a_folder(home, wb):
    session.start(wb, "schema-break")
    stray = settings.layout(home).drills.folder(catalog.get("triple-v").spec.handle)
    stray.mkdir(parents=True)
    result = runner.invoke(app, ["drill", "reset", "--all"])
    assert result.exit_code == 0 and "schema-break" in result.output and "triple-v" in result.output
    assert not stray.exists()
    assert not settings.layout(home).drills.folder(catalog.get("schema-break").spec.handle).exists()
    assert session.current(wb) is None
    assert "nothing to reset" in runner.invoke(app, ["drill", "reset", "--all"]).output


def test_schema_break_through_the_cli(home, wb):
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
    drill.reference_fix(drill.context(wb))
    fixed = runner.invoke(app, ["drill", "check", "--json"])
    assert fixed.exit_code == 0, fixed.output
    report = json.loads(fixed.output)
    assert report["passed"] and report["hints_used"] == 1 and report["failed"] == [] and report["seconds"] > 0
    assert len(list((home / "drills" / "reports").glob("schema-break-*.json"))) == 2
    assert runner.invoke(app, ["drill", "reset"]).exit_code == 0
    assert not (home / "drills" / drill.spec.handle).exists() and session.current(wb) is None


def test_schema_break_guards_catch_every_destructive_fix(home):
    drill = drills.get("schema-break")
    ctx = drill.context(Workbench.from_env(home))
    for name, destroy in drill.destructive_fixes().items():
        drill.reset(ctx)
        drill.prepare(ctx, 3)
        destroy(ctx)
        outcomes = {o.id: o for o in grading.outcomes(drill, ctx)}
        assert not all(o.passed for o in outcomes.values()), name
        assert any(not o.passed and o.guard for o in outcomes.values()), f"{name}: no guard caught it"
    every = [c.id for c in drill.all_checks()]
    picked = grading.outcomes(drill, ctx, only=every[-1:])
    assert len(every) > 1 and [o.id for o in picked] == every[-1:], "only= runs just the checks asked for"


def test_drill_tests_run_by_hand_ignore_the_project_around_the_state_folder(tmp_path):
    """The state folder sits inside the checkout by default: `python -m pytest` typed in a drill's repo must use
    the repo's own settings, not the options of the project around it."""
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "pyproject.toml").write_text('[tool.pytest.ini_options]\naddopts = "--no-such-option"\n')
    drill = drills.get("schema-break")
    ctx = drill.context(Workbench.from_env(checkout / ".workbench"))
    drill.prepare(ctx, 0)
    try:
        by_hand = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
            cwd=ctx.folder / "repo",
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert "no-such-option" not in by_hand.stderr, by_hand.stderr[-2000:]
        assert by_hand.returncode == 1 and "1 failed" in by_hand.stdout, by_hand.stdout[-2000:]  # the broken data
    finally:
        drill.reset(ctx)


def test_validate_stops_what_the_drills_started_and_keeps_what_ran_before(home, monkeypatch, wb):
    """A drill's setup starts the tracking server; `workbench drill validate` must not leave it running, nor stop
    a service that was running before it."""
    from mlops_workbench import procs
    from mlops_workbench.drills import validate as v
    from mlops_workbench.procs import alive

    http_server = [sys.executable, "-m", "http.server", "--bind", "127.0.0.1"]

    def serve(name):
        port = procs.free_port()
        return procs.start(wb, name, [*http_server, str(port)], port, health_path="/")

    def fake_validation(wb, drill, say, thorough):
        started.append(serve("started-by-setup"))
        raise DrillError("setup went wrong")  # the services go even when a drill fails

    before, started = serve("before"), []
    monkeypatch.setattr(v, "validate_drill", fake_validation)
    try:
        with pytest.raises(DrillError):
            v.validate(wb, ["schema-break"])
        assert not alive(started[0].pid) and [s.name for s in procs.running(wb)] == ["before"]
        assert alive(before.pid)
    finally:
        procs.stop_all(wb)


def test_a_passing_check_stops_what_the_drill_started_and_keeps_what_ran_before(home, monkeypatch, wb):
    from drill_fakes import FakeDrill, _serve, install

    from mlops_workbench import procs

    install(monkeypatch, FakeDrill("fake-one"))
    before = _serve("learners-own", home)
    session.start(wb, "fake-one")
    drill = catalog.get("fake-one")
    started = procs.get(wb, drill.context(wb).server)
    assert started is not None
    assert not session.check(wb).passed and procs.get(wb, started.name) is not None  # still working on it
    drill.reference_fix(drill.context(wb))
    report = session.check(wb)
    assert report.passed and procs.get(wb, started.name) is None and procs.alive(before.pid)
    assert session.check(wb) == report  # a finished drill is not graded again
    session.reset(wb)
    assert procs.alive(before.pid) and session.current(wb) is None


def test_two_seeds_of_a_drill_break_different_things_each_graded_correctly(home):
    """The schema-break drill's millimetre and inch deliveries: each fails broken and passes its own repair; the
    repair of one applied to the other does not pass."""
    from mlops_workbench.drills import schema_break

    drill = drills.get("schema-break")
    ctx = drill.context(Workbench.from_env(home))
    seeds = variants.seeds(drill.variants, drill.name)
    delivered = {}
    for key, wrong in (("millimetres", "inches"), ("inches", "millimetres")):
        drill.reset(ctx)
        assert drill.prepare(ctx, seeds[key]).key == key
        data = ctx.folder / "repo" / schema_break.DATA
        delivered[key] = data.read_text()
        assert {o.id for o in grading.outcomes(drill, ctx) if not o.passed} == {"ci-green", "data-complete"}
        other = next(v for v in drill.variants if v.key == wrong)
        try:
            schema_break.undo(other, pd.read_csv(data)).to_csv(data, index=False)
        except KeyError:
            pass  # that repair does not even apply to this delivery
        assert not all(o.passed for o in grading.outcomes(drill, ctx)), f"the {wrong} repair passed the {key} variant"
        drill.reset(ctx)
        drill.prepare(ctx, seeds[key])
        drill.reference_fix(ctx)
        assert all(o.passed for o in grading.outcomes(drill, ctx)), key
    assert delivered["millimetres"].splitlines()[0] != delivered["inches"].splitlines()[0]
    drill.reset(ctx)


def test_start_with_a_seed_breaks_the_same_thing_again_and_the_report_shows_the_seed(home, wb):
    first = session.start(wb, "schema-break", seed=41)
    data = drills.get("schema-break").context(wb).folder / "repo" / "data" / "iris.csv"
    delivered = data.read_bytes()
    again = session.start(wb, "schema-break", seed=41)
    assert (first.seed, first.variant) == (again.seed, again.variant) == (41, drills.get("schema-break").pick(41).key)
    assert data.read_bytes() == delivered
    report = session.check(wb)
    assert report.seed == 41 and report.variant is None  # the variant is named once the drill is passed
    assert "--seed" in runner.invoke(app, ["drill", "start", "--help"]).output
    session.reset(wb)


@pytest.mark.slow
@pytest.mark.timeout(VALIDATE_TIMEOUT)
def test_validate_covers_every_variant_of_schema_break(home, wb):
    """Per variant: broken fails, the reference fix passes, deleting the repository after it fails; every other
    destructive fix fails on the first variant."""
    from mlops_workbench.drills import validate as v

    drill = drills.get("schema-break")
    result = v.validate_drill(wb, drill)
    assert result.ok, result.model_dump()
    by_variant = {}
    for case in result.cases:
        by_variant.setdefault(case.variant, set()).add(case.case)
    assert set(by_variant) == {variant.key for variant in drill.variants}
    for cases in by_variant.values():
        assert {"broken", "reference-fix", "teardown:delete-the-repository"} <= cases
    others = {f"destructive:{name}" for name in drill.destructive_fixes() if name != drill.teardown}
    assert others <= set().union(*by_variant.values())


def test_the_lineage_names_the_cause_a_reproduction_reports():
    from mlops_workbench.drills.reproducibility import expected

    assert expected({"data.modified": "true", "data.path": "data/iris.csv", "dvc.stale": "false"}) == (
        "data-modified",
        "data/iris.csv",
    )
    assert expected({"data.modified": "false", "dvc.stale": "data/iris.csv,data/prepared/train.csv"}) == (
        "stale-outputs",
        "data/iris.csv",
    )
    assert expected({"data.modified": "false", "dvc.stale": "params.yaml:train.C"}) == ("stale-outputs", "params.yaml")
    assert expected({"data.modified": "false", "dvc.stale": "false"}) == (None, None)


def test_each_data_commit_variant_changes_the_data_differently():
    from mlops_workbench.data import load_iris_frame, validate
    from mlops_workbench.drills import unlocked_data

    iris = load_iris_frame()
    frames = {v.key: unlocked_data.changed(v, iris, seed=5) for v in unlocked_data.DRILL.variants}
    assert len(frames["rows-added"]) == 180 and len(frames["rows-dropped"]) == 130
    assert (frames["labels-corrected"]["species"] != iris["species"]).sum() == 10
    assert all(validate(df) is not None for df in frames.values())  # the commit is valid data, only unrebuilt
    assert frames["rows-added"].equals(unlocked_data.changed(unlocked_data.DRILL.variants[0], iris, seed=5))


def test_each_stalled_canary_variant_asks_more_than_its_canary_gets():
    from mlops_workbench.drills import stalled_canary
    from mlops_workbench.rollout import policy

    for variant in stalled_canary.DRILL.variants:
        spec = policy.parse(yaml.safe_load(variant.policy()))
        metric = spec.analysis.metrics[0]
        needed = metric.min_sample_size or spec.analysis.min_sample_size
        per_window = stalled_canary.RPS * spec.weights[0] / 100 * metric.lookback
        assert needed > 2 * per_window, variant.key
    fixed = policy.parse(yaml.safe_load(stalled_canary.CORRECTED))
    assert (
        fixed.analysis.min_sample_size
        < stalled_canary.RPS * fixed.weights[0] / 100 * fixed.analysis.metrics[0].lookback
    )


def test_a_proper_release_is_staged_gated_and_approved_by_someone_else():
    from mlops_workbench.drills.unapproved_release import _proper
    from mlops_workbench.registry.audit import AuditEntry
    from mlops_workbench.registry.gate import GateResult

    def move(alias, approver="reviewer", passed=True, version="3"):
        gate = GateResult(
            passed=passed,
            model="iris",
            candidate_version=version,
            production_version=None,
            metric="f1_macro",
            min_gain=0.0,
            candidate={},
            production=None,
            reasons=[],
            holdout_rows=1,
        )
        return AuditEntry(
            action="promote",
            model="iris",
            alias=alias,
            version=version,
            approver=approver,
            registered_by="dev",
            gate=gate,
            outcome="promoted",
        )

    assert _proper([move("staging"), move("production")], "3") == 1
    assert _proper([move("production")], "3") is None  # staging skipped
    assert _proper([move("staging"), move("production", approver="dev")], "3") is None  # its own author
    assert _proper([move("staging"), move("production", passed=False)], "3") is None
    assert _proper([move("staging", version="2"), move("production")], "3") is None
