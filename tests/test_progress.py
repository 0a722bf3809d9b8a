"""`workbench progress`: the record built from fixture reports, check logs and drill reports, and how it is shown."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlops_workbench import settings
from mlops_workbench.labs import checklog
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.progress import active_minutes, build, declared_points
from mlops_workbench.labs.progress_record import Progress
from mlops_workbench.labs.progress_view import fragment, page
from mlops_workbench.labs.report import CheckResult, Report

T0 = datetime(2025, 3, 1, 9, 0, tzinfo=UTC)
LAB00 = {"hello-file": 1, "iris-rows": 1, "seeded-sample": 2, "state-folder": 1}


def stamp(minutes: float) -> str:
    return (T0 + timedelta(minutes=minutes)).isoformat(timespec="seconds")


def result(check_id: str, points: float, message: str = "") -> CheckResult:
    return CheckResult(
        id=check_id,
        description=check_id,
        status="failed" if message else "passed",
        score=0.0 if message else points,
        max_score=points,
        visibility="public",
        message=message,
    )


def report(
    lab: str,
    failing: dict[str, str],
    at: str,
    submission: str = "notebooks/x.ipynb",
    checks: dict[str, float] = LAB00,
    seconds: float = 0.0,
) -> Report:
    """A grade report of ``lab`` in which the checks named in ``failing`` failed with those messages."""
    results = [result(cid, points, failing.get(cid, "")) for cid, points in checks.items()]
    score, total = sum(r.score for r in results), sum(r.max_score for r in results)
    return Report(
        lab=lab,
        submission=submission,
        score=score,
        max_score=total,
        pass_mark=0.8,
        passed=score >= 0.8 * total,
        checks=results,
        graded_at=at,
        timings={"total_seconds": seconds},
    )


def write(path: Path, document: Report) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(document.model_dump_json(indent=1))
    return path


def own(home: Path, document: Report) -> Path:
    """A grading run with the learner's state folder as its home."""
    return write(settings.layout(home).results / f"{document.lab}.json", document)


def demo(home: Path, document: Report) -> Path:
    """What `make demo` leaves: the reference run's report in the pipeline's state folder of that lab."""
    return write(
        settings.layout(settings.layout(home).pipeline_lab(document.lab)).results / f"{document.lab}.json", document
    )


def drill_report(home: Path, name: str, passed: list[bool], seconds: float, hints: int, at: str) -> None:
    from mlops_workbench.drills.spec import CheckOutcome, DrillReport

    checks = [
        CheckOutcome(id=f"c{i}", passed=ok, message="" if ok else f"c{i} is not fixed") for i, ok in enumerate(passed)
    ]
    doc = DrillReport(
        drill=name,
        passed=all(passed),
        seconds=seconds,
        hints_used=hints,
        failed=[c for c in checks if not c.passed],
        checks=checks,
        checked_at=at,
    )
    folder = settings.layout(home).drills.reports
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}-{seconds:.0f}.json").write_text(doc.model_dump_json())


def lab(progress: Progress, lab_id: str):
    return next(row for row in progress.labs if row.lab == lab_id)


def test_a_passed_a_failing_and_an_untouched_lab_and_a_drill(home, tmp_path, wb):
    grades = tmp_path / "grades"
    own(home, report("00-welcome", {}, stamp(0)))
    checks01 = {"bad-data-rejected": 4, "data-tests": 4, "predict-tests": 12}
    write(
        grades / "000-01-ci-basics" / "report.json",
        report(
            "01-ci-basics",
            {
                "data-tests": "tests/test_data.py has no test that fails on a dropped column: add one.",
                "predict-tests": "Write a test for predict().",
            },
            stamp(30),
            checks=checks01,
        ),
    )
    drill_report(home, "bad-model", [True, False, True], 900, 2, stamp(40))
    drill_report(home, "bad-model", [True, True, True], 1200, 3, stamp(60))
    progress = build(wb, grades=[grades])

    assert progress.source == "learner"
    passed = lab(progress, "00-welcome")
    assert passed.status == "passed" and passed.next_step == "done" and passed.failing == []
    assert (passed.grade.score, passed.grade.max_score, passed.grade.reference) == (5, 5, False)
    failing = lab(progress, "01-ci-basics")
    assert failing.status == "in progress" and not failing.grade.passed and failing.grade.score == 4
    assert [f.id for f in failing.failing] == ["data-tests", "predict-tests"]
    assert failing.next_step.startswith("tests/test_data.py has no test that fails")
    assert failing.grade.report == str(grades / "000-01-ci-basics" / "report.json")
    untouched = lab(progress, "02-versioning")
    assert (untouched.status, untouched.grade, untouched.time.minutes) == ("not started", None, None)
    assert untouched.next_step.startswith("start lab 02")
    assert untouched.points == 26 and untouched.time.estimate_minutes == 45  # 20 public and 6 hidden points
    assert (progress.next_lab, progress.next_step) == ("01-ci-basics", failing.next_step)
    (drill,) = progress.drills
    assert (drill.drill, drill.attempts, drill.passed, drill.checks_passed, drill.checks_total) == (
        "bad-model",
        2,
        True,
        3,
        3,
    )
    assert (drill.seconds, drill.hints_used, drill.last_checked_at) == (1200, 3, stamp(60))


def test_check_log_gives_progress_before_any_grading_and_measures_time(home, wb):
    checklog.append(wb, "00-welcome", "start")
    checklog.append(wb, "00-welcome", "check", [result("iris-rows", 1, "n_samples is None: use load_iris().")])
    events, _ = checklog.read(wb, "00-welcome")
    times = [T0 + timedelta(minutes=m) for m in (0, 4, 60, 66)]  # a long break between the second and the third
    lines = [e.model_copy(update={"at": t}).model_dump_json() for e, t in zip(events * 2, times, strict=True)]
    checklog.log_path(wb, "00-welcome").write_text("\n".join(lines) + "\nnot json\n")
    progress = build(wb, grades=[])

    row = lab(progress, "00-welcome")
    assert row.status == "in progress" and row.grade is None
    assert row.failing[0].seen == "check()" and row.next_step == "n_samples is None: use load_iris()."
    assert row.time.method == "activity" and row.time.minutes == 10  # 4 + 6 minutes; the 56-minute break left out
    assert "pauses over 15 min" in row.time.detail
    assert (
        len(progress.problems) == 1 and "line 5" in progress.problems[0] and "delete that line" in progress.problems[0]
    )


def test_a_later_check_overrides_the_graded_result_of_that_check_only(home, wb):
    own(home, report("00-welcome", {"hello-file": "write hello.txt", "seeded-sample": "use the seed"}, stamp(0)))
    checklog.append(wb, "00-welcome", "check", [result("hello-file", 1)])  # now: after the grading
    row = lab(build(wb, grades=[]), "00-welcome")
    assert [(f.id, f.seen) for f in row.failing] == [("seeded-sample", "grade")]
    assert row.next_step == "use the seed" and row.status == "in progress"
    assert row.time.method == "activity"


def test_every_public_check_passing_without_a_grade_says_to_grade(home, wb):
    checklog.append(wb, "00-welcome", "check", [result(c, 1) for c in ("hello-file", "iris-rows", "state-folder")])
    row = lab(build(wb, grades=[]), "00-welcome")
    # the learner's copy (what `make lab` opens), never the tracked release in notebooks/
    assert row.failing == [] and f"workbench grade {home / 'notebooks' / '00-welcome.ipynb'}`" in row.next_step


def test_after_make_demo_the_reference_runs_show_until_the_learner_has_work_of_their_own(home, tmp_path, wb):
    demo(home, report("00-welcome", {}, stamp(0), submission="/x/labs/00-welcome/lab.ipynb", seconds=42))
    demo(
        home,
        report(
            "01-ci-basics",
            {"data-tests": "the demo's data tests failed"},
            stamp(1),
            checks={"data-tests": 4, "predict-tests": 16},
        ),
    )
    progress = build(wb, grades=[])
    assert progress.source == "reference" and "make demo" in progress.note
    row = lab(progress, "00-welcome")
    assert row.status == "not started" and row.grade.reference and row.grade.score == 5
    assert row.time.method == "reference-run" and row.time.minutes == 0.7
    assert row.next_step.startswith("start lab 00") and progress.next_lab == "00-welcome"
    assert lab(progress, "01-ci-basics").failing[0].message == "the demo's data tests failed"

    checklog.append(wb, "02-versioning", "start")  # the learner's first own step
    progress = build(wb, grades=[])
    assert progress.source == "learner" and lab(progress, "00-welcome").grade is None
    assert lab(progress, "02-versioning").status == "in progress"


def test_a_graded_instructor_source_counts_as_a_reference_run(home, tmp_path, wb):
    grades = tmp_path / "grades"
    write(
        grades / "000-lab" / "report.json",
        report("00-welcome", {}, stamp(0), submission="/co/labs/00-welcome/lab.ipynb"),
    )
    progress = build(wb, grades=[grades])
    assert progress.source == "reference" and lab(progress, "00-welcome").grade.reference


def test_an_unreadable_report_is_skipped_and_named_with_the_fix(home, tmp_path, wb):
    grades = tmp_path / "grades"
    (grades / "000-broken").mkdir(parents=True)
    (grades / "000-broken" / "report.json").write_text("{not json")
    write(grades / "001-bad-time" / "report.json", report("01-ci-basics", {}, "yesterday"))
    own(home, report("00-welcome", {}, stamp(0)))
    progress = build(wb, grades=[grades])
    assert lab(progress, "00-welcome").status == "passed" and lab(progress, "01-ci-basics").grade is None
    assert [("000-broken" in p, "001-bad-time" in p) for p in progress.problems] == [(True, False), (False, True)]
    assert all("grade the notebook again" in p for p in progress.problems)


def test_active_minutes_leave_out_breaks():
    assert active_minutes([T0]) == 0
    assert active_minutes([T0 + timedelta(minutes=m) for m in (30, 0, 10, 12)]) == 12  # the 18-minute gap is a break


def test_points_read_statically_match_the_loaded_checks():
    for each in Lab.all():
        assert declared_points(each) == each.max_score, each.id


def test_the_record_forbids_unknown_fields(home, wb):
    document = json.loads(build(wb, grades=[]).model_dump_json())
    document["labs"][0]["surprise"] = 1
    with pytest.raises(ValueError, match="surprise"):
        Progress.model_validate(document)


def test_html_escapes_messages(home, wb):
    own(home, report("00-welcome", {"hello-file": "<script>alert(1)</script> & more"}, stamp(0)))
    text = page(build(wb, grades=[]))
    assert "<script>alert" not in text and "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in text
    assert text.startswith("<!doctype html>") and 'data-lab="00-welcome"' in fragment(build(wb, grades=[]))


def test_the_cli_prints_the_table_and_json(home, tmp_path):
    from mlops_workbench.cli.main import app

    own(
        home,
        report(
            "00-welcome", {"iris-rows": "n_samples is 0: count the rows.", "hello-file": "[b]no[/b] file"}, stamp(0)
        ),
    )
    runner = CliRunner()
    out = runner.invoke(app, ["progress", "--grades", str(tmp_path / "none")], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "00-welcome" in out.output and "3/5 ✘" in out.output
    assert "hello-file: [b]no[/b] file" in out.output and "(also failing: iris-rows)" in out.output
    assert "next: lab 00-welcome:" in out.output and "not started" in out.output
    out = runner.invoke(app, ["progress", "--json", "--grades", str(tmp_path / "none")])
    record = Progress.model_validate_json(out.output)
    assert lab(record, "00-welcome").grade.score == 3 and record.home == str(home)


def test_the_cli_after_make_demo_shows_the_demos_state(home, tmp_path):
    from mlops_workbench.cli.main import app

    demo(home, report("00-welcome", {}, stamp(0), submission="/x/labs/00-welcome/lab.ipynb"))
    out = CliRunner().invoke(app, ["progress", "--grades", str(tmp_path / "none")], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "5/5 ✔ demo" in out.output and "make demo" in out.output
    assert "start lab 00" in out.output


def test_session_check_writes_the_log_the_page_reads(home, monkeypatch, tmp_path, wb):
    from mlops_workbench.labs import session

    monkeypatch.setattr(session, "_user_namespace", lambda: {"n_samples": 150})
    monkeypatch.chdir(tmp_path)
    live = session.start("00-welcome")
    live.check("iris-rows")
    live.check_all()
    events, problems = checklog.read(wb, "00-welcome")
    assert [e.kind for e in events] == ["start", "check", "check"] and problems == []
    assert [r.id for r in events[2].results] == ["hello-file", "iris-rows", "state-folder"]
    row = lab(build(wb, grades=[]), "00-welcome")
    assert row.status == "in progress" and row.failing[0].id == "hello-file"


def test_the_progress_server_renders_on_every_request(home, wb):
    from mlops_workbench.jupyter.progress import ProgressServer, progress_server

    spec = progress_server()
    assert "{port}" in spec["command"] and spec["launcher_entry"]["title"] == "Progress" and spec["new_browser_tab"]
    server = ProgressServer(wb, 0)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        first = httpx.get(f"{base}/", timeout=30)
        assert (
            first.status_code == 200 and "start lab 00" in first.text and "no-store" in first.headers["cache-control"]
        )
        own(home, report("00-welcome", {"hello-file": "hello.txt does not exist: write it."}, stamp(0)))
        again = httpx.get(f"{base}/", timeout=30)
        assert "4/5 passed" in again.text and "hello.txt does not exist: write it." in again.text
        record = Progress.model_validate_json(httpx.get(f"{base}/progress.json", timeout=30).text)
        assert lab(record, "00-welcome").grade.score == 4
        missing = httpx.get(f"{base}/elsewhere", timeout=30)
        assert missing.status_code == 404 and "/progress.json" in missing.text
    finally:
        server.shutdown()
        server.server_close()
