"""The report document, its shipped schema and its renderings (pure logic, no notebook runs)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import jsonschema
import pytest

from mlops_workbench.labs.render import index_html, to_gradescope, to_html, to_junit
from mlops_workbench.labs.report import SCHEMA_PATH, CheckResult, IntegrityIssue, Report, schema, validate_report


def make_report() -> Report:
    checks = [
        CheckResult(id="a", description="A", status="passed", score=2, max_score=2, visibility="public"),
        CheckResult(
            id="b",
            description="B",
            status="failed",
            score=0,
            max_score=1,
            visibility="hidden",
            message="Train on <all> rows & rerun.",
        ),
        CheckResult(id="c", description="C", status="error", score=0, max_score=1, visibility="public", message="boom"),
        CheckResult(
            id="d", description="D", status="timeout", score=0, max_score=1, visibility="public", message="slow"
        ),
        CheckResult(
            id="e",
            description="E",
            status="blocked",
            score=0,
            max_score=1,
            visibility="public",
            message="cell x failed",
        ),
    ]
    return Report(
        lab="00-welcome",
        title="Welcome",
        submission="s.ipynb",
        score=2,
        max_score=6,
        pass_mark=0.8,
        passed=False,
        checks=checks,
        integrity=[IntegrityIssue(cell="x", problem="deleted", message="Cell 'x' is missing.")],
    )


def test_shipped_schema_matches_the_model():
    assert json.loads(SCHEMA_PATH.read_text()) == schema(), "run write_schema() and commit report.schema.json"


def test_reports_validate_and_bad_ones_do_not():
    document = make_report().model_dump(mode="json")
    validate_report(document)
    for key in ("schema_version", "lab", "score", "max_score", "passed", "checks"):
        assert key in document
    for key in ("id", "status", "score", "max_score", "visibility", "message"):
        assert key in document["checks"][0]
    document["checks"][0]["status"] = "sort-of"
    with pytest.raises(jsonschema.ValidationError):
        validate_report(document)


def test_junit_counts_each_outcome():
    suite = ET.fromstring(to_junit(make_report()).split("?>", 1)[1])
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors"), suite.get("skipped")) == (
        "5",
        "1",
        "2",
        "1",
    )
    cases = {c.get("name"): c for c in suite.iter("testcase")}
    assert cases["b"].find("failure").get("message") == "Train on <all> rows & rerun."
    assert cases["e"].find("skipped") is not None and cases["a"].find("failure") is None


def test_html_escapes_messages_and_shows_integrity_problems():
    page = to_html(make_report())
    assert "Train on &lt;all&gt; rows &amp; rerun." in page and "<all>" not in page
    assert "Cell &#x27;x&#x27; is missing." in page
    assert "2 / 6" in page and "not passed" in page


def test_gradescope_format():
    doc = to_gradescope(make_report())
    assert doc["score"] == 2
    assert [t["status"] for t in doc["tests"]] == ["passed", "failed", "failed", "failed", "failed"]
    assert doc["tests"][1]["visibility"] == "after_published"
    assert sum(t["max_score"] for t in doc["tests"]) == 6


def test_validation_names_a_solution_cell_that_raises_even_at_full_marks():
    from mlops_workbench.labs.batch import Validation
    from mlops_workbench.labs.report import Report
    from mlops_workbench.labs.run import CellRun

    def report(cells: list[CellRun]) -> Report:
        return Report(
            lab="03-x", submission="s", score=0, max_score=0, pass_mark=1.0, passed=True, checks=[], cells=cells
        )

    clean = Validation("03-x", report([CellRun(id="panel", status="ok")]), report([]))
    assert clean.problems == []
    broken = Validation(
        "03-x", report([CellRun(id="panel", status="error", error="NameError: gate_rules")]), report([])
    )
    assert broken.problems == ["solution cells raise: panel (NameError: gate_rules)"]


def test_the_pipeline_index_links_every_graded_report_and_says_why_others_have_none():
    good = make_report().model_copy(update={"lab": "01-ci-basics", "title": "CI <basics>", "score": 6, "passed": True})
    page = index_html(
        [("00-welcome", make_report(), ""), ("01-ci-basics", good, ""), ("02-versioning", None, "skipped")], 93.4
    )
    assert '<a href="00-welcome/report.html">00-welcome</a>' in page and 'href="01-ci-basics/report.html"' in page
    assert "<strong>1 of 3</strong> labs passed in 93 s" in page
    assert "CI &lt;basics&gt;" in page and "6/6" in page and "2/6" in page
    assert '<tr class="skipped"><td>02-versioning</td><td></td><td>skipped</td>' in page
    assert "02-versioning/report.html" not in page
