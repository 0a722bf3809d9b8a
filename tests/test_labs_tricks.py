"""Grading holds against the known notebook tricks and answer functions (real papermill runs of a lab 00 copy).

Each trick is one graded submission, made once per module and shared by its tests.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import nbformat
import pytest
import yaml

from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import fresh_workbench, grade
from mlops_workbench.labs.release import learner_notebook
from mlops_workbench.labs.report import Report
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
LOAD_IRIS = {
    "call": "mlops_workbench.data.load_iris_frame",
    "cells": ["iris-rows"],
    "instead": "count the rows of `sklearn.datasets.load_iris()` yourself",
}


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    """A copy of lab 00 whose iris-rows exercise names an answer function."""
    folder = tmp_path_factory.mktemp("project") / "labs" / "00-welcome"
    shutil.copytree(ROOT / "labs" / "00-welcome", folder)
    spec = yaml.safe_load((folder / "lab.yaml").read_text())
    spec["timeouts"] = {"cell": 30, "lab": 150}
    spec["answer_functions"] = [LOAD_IRIS]
    (folder / "lab.yaml").write_text(yaml.safe_dump(spec))
    return Lab(folder)


def submit(lab: Lab, folder: Path, answers: dict[str, str], extra: str | None = None, learner: bool = False) -> Path:
    """The solution (or the learner version) with ``answers`` replacing cells and an ``extra`` cell after setup."""
    nb = learner_notebook(lab) if learner else nbformat.read(lab.source, as_version=4)
    for cell in nb.cells:
        if cell.get("id") in answers:
            cell.source = answers[cell.get("id")]
    if extra is not None:
        cheat = nbformat.v4.new_code_cell(extra)
        cheat.id = "trick"
        setup = next(i for i, c in enumerate(nb.cells) if c.get("id") == "setup")
        nb.cells.insert(setup + 1, cheat)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "submission.ipynb"
    nbformat.write(nb, path)
    return path


def by_id(report: Report) -> dict:
    return {c.id: c for c in report.checks}


@pytest.fixture(scope="module")
def answer_function_report(lab, tmp_path_factory) -> Report:
    folder = tmp_path_factory.mktemp("answer-function")
    answer = "from mlops_workbench import data as d\nn_samples = len(d.load_iris_frame())\nprint(n_samples)"
    return grade(
        fresh_workbench(Workbench.from_env(), folder / "out"),
        submit(lab, folder, {"iris-rows": answer}),
        folder / "out",
        lab,
    )


def test_an_answer_function_scores_zero_for_its_exercise_with_the_api_to_write(answer_function_report):
    checks = by_id(answer_function_report)
    assert checks["iris-rows"].status == "failed" and checks["iris-rows"].score == 0
    assert checks["iris-rows"].message == (
        "`data.load_iris_frame` (cell 'iris-rows', line 2) does the exercise for you: "
        "count the rows of `sklearn.datasets.load_iris()` yourself."
    )
    assert answer_function_report.cells and all(c.status == "ok" for c in answer_function_report.cells), (
        "the cell itself ran: only the grade says the exercise was not done"
    )
    assert {cid: c.status for cid, c in checks.items() if cid != "iris-rows"} == dict.fromkeys(
        ("hello-file", "seeded-sample", "state-folder"), "passed"
    ), "the other exercises keep their points"


@pytest.fixture(scope="module")
def always_equal_report(lab, tmp_path_factory) -> Report:
    folder = tmp_path_factory.mktemp("always-equal")
    answers = {
        "iris-rows": "class Always:\n    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\n    __hash__ = object.__hash__\n"
        "n_samples = Always()",
        "seeded-sample": "class AlwaysList(list):\n    def __eq__(self, other):\n        return True\n"
        "    def __ne__(self, other):\n        return False\nsample = AlwaysList([1])",
    }
    return grade(
        fresh_workbench(Workbench.from_env(), folder / "out"), submit(lab, folder, answers), folder / "out", lab
    )


def test_an_object_equal_to_everything_passes_no_check(always_equal_report):
    checks = by_id(always_equal_report)
    assert checks["iris-rows"].status == "failed"
    assert (
        checks["iris-rows"].message == "`n_samples` is a Always, not a plain int: assign the int itself to `n_samples`."
    )
    assert checks["seeded-sample"].status == "failed", "a list subclass is graded as the plain list it holds"
    assert checks["hello-file"].status == checks["state-folder"].status == "passed"


@pytest.fixture(scope="module")
def hidden_traceback_report(lab, tmp_path_factory) -> Report:
    folder = tmp_path_factory.mktemp("hidden-traceback")
    hide = (
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "InteractiveShell.showtraceback = lambda *args, **kwargs: None\n"
        "get_ipython().showtraceback = lambda *args, **kwargs: None\n"
    )
    answers = {"hello-file": "raise RuntimeError('the file was never written')"}
    return grade(
        fresh_workbench(Workbench.from_env(), folder / "out"),
        submit(lab, folder, answers, extra=hide),
        folder / "out",
        lab,
    )


def test_an_error_whose_traceback_is_hidden_still_blocks_its_check(hidden_traceback_report):
    cells = {c.id: c for c in hidden_traceback_report.cells}
    assert cells["trick"].status == "ok"
    assert cells["hello-file"].status == "error"
    assert cells["hello-file"].error.startswith("RuntimeError: the file was never written (its traceback was hidden")
    check = by_id(hidden_traceback_report)["hello-file"]
    assert check.status == "blocked" and "RuntimeError: the file was never written" in check.message
    assert by_id(hidden_traceback_report)["iris-rows"].status == "passed", "the other cells were graded as usual"


FAKE_REPORTS = """\
import json, os, pathlib, re
out = pathlib.Path(re.search(r"'([^']*exports-[0-9a-f]+[.]json)'", In[1]).group(1)).parent.parent
home = pathlib.Path(os.environ["WORKBENCH_HOME"])
fake = {"lab": "00-welcome", "score": 5, "max_score": 5, "passed": True, "checks": []}
for path in (out / "report.json", home / "results" / "00-welcome.json", pathlib.Path("report.json")):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(fake))
print("wrote fake reports to", out)
"""


@pytest.fixture(scope="module")
def fake_report(lab, tmp_path_factory) -> tuple[Report, Path]:
    folder = tmp_path_factory.mktemp("fake-report")
    return grade(
        fresh_workbench(Workbench.from_env(), folder / "out"),
        submit(lab, folder, {}, extra=FAKE_REPORTS, learner=True),
        folder / "out",
        lab,
    ), folder / "out"


def test_reports_written_by_the_notebook_are_replaced_by_the_grader(fake_report):
    report, out = fake_report
    assert report.score == 0 and not report.passed
    executed = nbformat.read(out / "executed.ipynb", as_version=4)
    assert f"wrote fake reports to {out}" in str(executed.cells), "the trick found the grader's folder"
    for path in (out / "report.json", out / "home" / "results" / "00-welcome.json"):
        assert Report.model_validate_json(path.read_text()).score == 0, path


@pytest.fixture(scope="module")
def tamper(tmp_path_factory) -> tuple[Report, Lab]:
    """The learner version with a cell that rewrites the lab's checks and plants a module beside them.

    (Planting in the package itself is tested on a copy in test_labs_guard.py: other gradings running beside this
    test watch the real package and would rightly see the plant.)"""
    folder = tmp_path_factory.mktemp("tamper")
    lab = Lab(folder / "labs" / "00-welcome")
    shutil.copytree(ROOT / "labs" / "00-welcome", lab.folder)
    trick = (
        "import pathlib\n"
        f"checks = pathlib.Path({str(lab.folder / 'checks.py')!r})\n"
        "checks.write_text(checks.read_text().replace('fail(', 'print('))\n"
        "planted = checks.parent / 'conftest.py'\n"
        "planted.write_text('GRADE = 100\\n')\n"
    )
    report = grade(
        fresh_workbench(Workbench.from_env(), folder / "out"),
        submit(lab, folder, {}, extra=trick, learner=True),
        folder / "out",
        lab,
    )
    return report, lab


def test_a_notebook_that_edits_the_labs_checks_scores_zero_and_no_check_runs(tamper):
    report, lab = tamper
    (issue,) = [i for i in report.integrity if i.problem == "tampered"]
    assert "00-welcome/checks.py" in issue.message and "00-welcome/conftest.py" in issue.message
    assert report.score == 0 and {c.status for c in report.checks} == {"failed"}
    assert all("no check ran" in c.message for c in report.checks)
    assert "print(" in (lab.folder / "checks.py").read_text(), "the grader names the change, it never writes back"
