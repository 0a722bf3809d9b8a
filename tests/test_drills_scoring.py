"""Interview mode, pure parts: symptom-only briefs and neutral titles, hints that cost points, time against par,
and a report that shows each part of the score apart (with small fake drills for the session)."""

from __future__ import annotations

import json
import time

import pytest
from drill_fakes import FakeDrill, install
from typer.testing import CliRunner

from mlops_workbench import settings
from mlops_workbench.cli.main import app
from mlops_workbench.drills import catalog, causes, scoring, session
from mlops_workbench.drills.spec import CheckOutcome, DrillSession, ScorePart
from mlops_workbench.workbench import Workbench

runner = CliRunner()


def _briefs(drill, home) -> list[str]:
    return [drill.brief(drill.context(Workbench.from_env(home)))]


def test_no_title_or_brief_names_its_cause_or_fix(tmp_path):
    """The forbidden words come from each drill's own root cause and fixes (causes.CAUSE_TERMS, CHANGE_TERMS)."""
    for name in catalog.names():
        drill = catalog.get(name)
        spec = drill.spec
        terms = (
            causes.giveaways(spec.root_cause, spec.fixes)
            if spec.root_cause
            else [t for fix in spec.fixes for t in causes.CHANGE_TERMS[fix]]
        )
        assert terms or spec.root_cause is None, f"{name}: no words to keep out of its brief"
        for text in [spec.title(), spec.title(time.time()), *_briefs(drill, tmp_path)]:
            assert causes.named(text, terms) == [], f"{name} gives away {causes.named(text, terms)} in: {text}"
        assert name not in spec.title() and spec.handle in spec.title().replace(" ", "-")


def test_the_giveaway_words_would_catch_a_brief_that_names_the_fix():
    spec = catalog.get("bad-model").spec
    terms = causes.giveaways(spec.root_cause, spec.fixes)
    assert causes.named("Roll production back by alias and reload the server.", terms) == [
        "roll production back",
        "reload",
    ]


def test_titles_are_neutral_and_say_when_it_began():
    spec = catalog.get("signature-mismatch").spec
    began = time.mktime((2026, 5, 4, 10, 2, 0, 0, 0, -1))
    assert spec.title(began) == "incident 5: every request failing after 10:02"
    listed = json.loads(runner.invoke(app, ["drill", "list", "--shuffle", "--seed", "1", "--json"]).output)
    assert all(row["name"] is None and row["title"].startswith("incident ") for row in listed)
    handles = [catalog.get(n).spec.handle for n in catalog.names()]
    assert len(set(handles)) == len(handles), "two drills share a handle"


def test_hints_cost_more_the_more_specific_they_get():
    assert [scoring.hint_cost(n) for n in (1, 2, 3)] == [5, 10, 15] and scoring.hints_cost(3) == 30
    checks = [CheckOutcome(id="a", passed=True), CheckOutcome(id="b", passed=True)]
    totals = [scoring.score(checks, 60, 600, used, None).total for used in range(4)]
    assert totals == sorted(totals, reverse=True) and totals[0] - totals[2] == 15


def test_time_beyond_par_costs_points_down_to_none_at_twice_par():
    assert scoring.time_points(599, 600) == scoring.time_points(600, 600) == scoring.TIME_POINTS
    assert scoring.time_points(900, 600) == scoring.TIME_POINTS / 2 and scoring.time_points(1200, 600) == 0
    assert scoring.time_points(5000, 600) == 0
    checks = [CheckOutcome(id="a", passed=True)]
    assert scoring.score(checks, 900, 600, 0, None).total < scoring.score(checks, 300, 600, 0, None).total


def test_a_failed_guard_leaves_the_state_nothing_and_the_post_mortem_counts_apart():
    checks = [CheckOutcome(id="fixed", passed=True), CheckOutcome(id="kept", passed=False, guard=True)]
    score = scoring.score(checks, 10, 600, 0, 1.0)
    assert score.line(ScorePart.STATE).points == 0 and "guard failed (kept)" in score.line(ScorePart.STATE).detail
    assert score.line(ScorePart.POSTMORTEM).points == scoring.POSTMORTEM_POINTS
    assert [line.part for line in score.lines] == [
        ScorePart.STATE,
        ScorePart.POSTMORTEM,
        ScorePart.TIME,
        ScorePart.HINTS,
    ]
    full = scoring.score([CheckOutcome(id="fixed", passed=True)], 10, 600, 0, None)
    assert full.total == 100 and full.line(ScorePart.STATE).max_points == 85  # no post-mortem: its share goes here


def test_doing_nothing_and_checking_at_once_earns_nothing():
    """Guards pass on an untouched system and a quick check is within par: neither may buy points."""
    untouched = [
        CheckOutcome(id="fixed", passed=False),
        CheckOutcome(id="kept", passed=True, guard=True),
        CheckOutcome(id="intact", passed=True, guard=True),
    ]
    score = scoring.score(untouched, 5, 600, 0, None)
    assert score.total == 0 and "not solved" in score.line(ScorePart.TIME).detail
    half = scoring.score([CheckOutcome(id="a", passed=True), *untouched], 5, 600, 0, None)
    assert half.line(ScorePart.STATE).points == pytest.approx(85 / 2) and half.line(ScorePart.TIME).points == 0


@pytest.fixture
def fake(home, monkeypatch):
    install(monkeypatch, FakeDrill("fake-drill", minutes=10, serve=False))
    return catalog.get("fake-drill")


def _started_ago(home, seconds: float) -> None:
    path = settings.layout(home).drills.session
    state = DrillSession.model_validate_json(path.read_text())
    state.started -= seconds
    path.write_text(state.model_dump_json())


def test_hints_lower_the_score_of_a_session(home, fake, wb):
    session.start(wb, "fake-drill")
    fake.reference_fix(fake.context(wb))
    clean = session.grade(wb, fake, 30, 0).score
    assert [session.hint(wb)[3] for _ in range(4)] == [5, 10, 15, 0]  # the last hint again costs nothing more
    report = session.check(wb)
    assert report.passed and report.hints_used == 3
    assert report.score.line(ScorePart.HINTS).points == -30 and report.score.total == clean.total - 30


def test_time_beyond_par_lowers_the_score_of_a_session(home, fake, wb):
    session.start(wb, "fake-drill")
    fake.reference_fix(fake.context(wb))
    _started_ago(home, 15 * 60)  # par is 10 minutes
    report = session.check(wb)
    time_line = report.score.line(ScorePart.TIME)
    assert report.passed and time_line.points == pytest.approx(scoring.TIME_POINTS / 2, abs=0.2)
    assert "against a par of 10m00s" in time_line.detail and report.score.total < 100


def test_check_prints_state_time_and_hints_apart_and_the_cause_once_passed(home, fake):
    assert runner.invoke(app, ["drill", "start", "--shuffle"]).exit_code == 0
    status = json.loads(runner.invoke(app, ["drill", "status", "--json"]).output)
    assert status["drill"] == fake.spec.handle and status["title"].startswith("incident 90: fake-drill symptom after")
    assert "(-5 points)" in runner.invoke(app, ["drill", "hint"]).output
    failing = runner.invoke(app, ["drill", "check"])
    assert failing.exit_code == 1 and "It was drill" not in failing.output
    fake.reference_fix(fake.context(Workbench.from_env(home)))
    passing = runner.invoke(app, ["drill", "check"])
    assert passing.exit_code == 0, passing.output
    for part in ("state", "time", "hints", "total", "It was drill 'fake-drill'", "analysis-config"):
        assert part in passing.output, part
    report = json.loads(settings.layout(home).drills.latest_report.read_text())
    assert [line["part"] for line in report["score"]["lines"]] == ["state", "time", "hints"]


def test_a_drill_started_by_its_handle_keeps_its_name_hidden():
    assert catalog.resolve("incident-4") == ("schema-break", True)
    assert catalog.resolve("schema-break") == ("schema-break", False)
    with pytest.raises(catalog.DrillError, match="Known drills"):
        catalog.resolve("incident-99")
