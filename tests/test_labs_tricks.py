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
from mlops_workbench.labs.grade import grade
from mlops_workbench.labs.release import learner_notebook
from mlops_workbench.labs.report import Report

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
LOAD_IRIS = {"call": "mlops_workbench.data.load_iris_frame", "cells": ["iris-rows"],
             "instead": "count the rows of `sklearn.datasets.load_iris()` yourself"}


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
    return grade(submit(lab, folder, {"iris-rows": answer}), folder / "out", lab)


def test_an_answer_function_scores_zero_for_its_exercise_with_the_api_to_write(answer_function_report):
    checks = by_id(answer_function_report)
    assert checks["iris-rows"].status == "failed" and checks["iris-rows"].score == 0
    assert checks["iris-rows"].message == (
        "`data.load_iris_frame` (cell 'iris-rows', line 2) does the exercise for you: "
        "count the rows of `sklearn.datasets.load_iris()` yourself.")
    assert answer_function_report.cells and all(c.status == "ok" for c in answer_function_report.cells), \
        "the cell itself ran: only the grade says the exercise was not done"
    assert {cid: c.status for cid, c in checks.items() if cid != "iris-rows"} == dict.fromkeys(
        ("hello-file", "seeded-sample", "state-folder"), "passed"), "the other exercises keep their points"
