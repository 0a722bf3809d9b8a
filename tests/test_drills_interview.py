"""`workbench drill interview`: drills in a row under one clock and a scorecard, tested with small fake drills."""

from __future__ import annotations

import json

import pytest
from drill_fakes import FakeDrill, install
from typer.testing import CliRunner

from mlops_workbench import procs
from mlops_workbench.cli.main import app
from mlops_workbench.drills import catalog, interview, session
from mlops_workbench.drills.base import DrillError
from mlops_workbench.drills.scorecard import Outcome, Scorecard

runner = CliRunner()


def test_plan_draws_different_drills_and_seeds_from_one_seed():
    names = ["a", "b", "c", "d"]
    first = interview.plan(7, 3, names)
    assert first == interview.plan(7, 3, names) and len({n for n, _ in first}) == 3
    assert {tuple(n for n, _ in interview.plan(s, 3, names)) for s in range(20)} != {tuple(n for n, _ in first)}
    with pytest.raises(DrillError, match="more than the 4 drills this machine can run"):
        interview.plan(7, 5, names)
    with pytest.raises(DrillError, match="at least one"):
        interview.plan(7, 0, names)


@pytest.fixture
def fakes(home, monkeypatch):
    install(
        monkeypatch,
        FakeDrill("fake-a", number=91),
        FakeDrill("fake-b", number=92, minutes=1),
        FakeDrill("fake-c", number=93, needs=("prometheus",)),
    )


def test_an_interview_runs_drills_in_a_row_and_leaves_a_scorecard_and_no_process(home, fakes, wb):
    running, left_out = interview.start(wb, 2, seed=4, probe=lambda tool: False)
    assert "fake-c" in left_out and all(slot.drill != "fake-c" for slot in running.slots)
    first, second = (slot.drill for slot in running.slots)
    state = session.current(wb)
    assert state.drill == first and state.blind and state.interview == running.id
    assert state.seed == running.slots[0].seed
    drill = catalog.get(first)
    drill.reference_fix(drill.context(wb))
    assert interview.check(wb).passed
    assert session.current(wb).drill == second and interview.current(wb).current == 1  # set up by the check
    session.hint(wb)
    folder = interview.give_up(wb)
    assert interview.current(wb) is None and session.current(wb) is None
    card = Scorecard.model_validate_json((folder / "scorecard.json").read_text())
    assert [row.outcome for row in card.rows] == [Outcome.PASSED, Outcome.GIVEN_UP]
    assert [row.drill for row in card.rows] == [first, second] and card.passed == 1
    assert card.rows[1].report.hints_used == 1 and card.score == round(sum(r.points for r in card.rows) / 2, 1)
    assert card.par_seconds == sum(catalog.get(n).spec.minutes * 60 for n in (first, second))
    page = (folder / "scorecard.html").read_text()
    assert "Interview scorecard" in page and catalog.get(second).spec.title() in page and "given-up" in page
    assert procs.running(wb) == []


def test_interview_through_the_cli_a_passing_check_moves_on_and_stop_ends_it(home, fakes, wb):
    started = runner.invoke(app, ["drill", "interview", "--count", "2", "--seed", "9"])
    assert started.exit_code == 0, started.output
    assert "drill 1/2: incident 9" in started.output and "seed 9" in started.output
    assert "An interview is already running" in runner.invoke(app, ["drill", "interview", "--count", "1"]).output
    status = json.loads(runner.invoke(app, ["drill", "interview", "status", "--json"]).output)
    assert status["drill"] == 1 and status["drills"] == 2 and status["done"] == []
    drill = catalog.get(session.current(wb).drill)
    drill.reference_fix(drill.context(wb))
    passed = runner.invoke(app, ["drill", "check"])
    assert passed.exit_code == 0 and "drill 2/2: incident 9" in passed.output, passed.output
    stopped = runner.invoke(app, ["drill", "interview", "stop"])
    assert stopped.exit_code == 0 and "interview over" in stopped.output and "scorecard.html" in stopped.output
    (folder,) = interview.folder(wb, "x").parent.iterdir()
    card = Scorecard.model_validate_json((folder / "scorecard.json").read_text())
    assert [row.outcome for row in card.rows] == [Outcome.PASSED, Outcome.GIVEN_UP] and card.score < 100
    assert "No interview is running" in runner.invoke(app, ["drill", "interview", "stop"]).output
