"""Every answer function of labs 02-05 and 08, called in its exercise's cell of the learner notebook, scores that
exercise's checks 0 with a message naming the call and what to write instead, and leaves the other checks alone.

This drives the grader's own steps (the scan of the submitted cells, then the scores) on the real lab files; the
graded runs of whole submissions are in the lab tests (test_lab03_grading, test_lab05_grading, test_labs_tricks)."""

from __future__ import annotations

import copy

import nbformat
import pytest

from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import answer_violations, give_away
from mlops_workbench.labs.release import learner_notebook
from mlops_workbench.labs.report import CheckResult

LABS = [lab for lab in Lab.all() if lab.spec.answer_functions]
CASES = [
    pytest.param(lab, index, id=f"{lab.id}:{entry.call.removeprefix('mlops_workbench.')}")
    for lab in LABS
    for index, entry in enumerate(lab.spec.answer_functions)
]


def test_labs_02_to_05_07_and_08_each_name_answer_functions():
    assert {
        "02-versioning",
        "03-registry-promotion",
        "04-canary-rollback",
        "05-kind-canary",
        "07-monitor-retrain",
        "08-strategies-governance",
    } <= {lab.id for lab in LABS}


def _all_passed(lab: Lab) -> list[CheckResult]:
    return [
        CheckResult(
            id=c.id,
            description=c.description,
            status="passed",
            score=c.points,
            max_score=c.points,
            visibility=c.visibility,
        )
        for c in lab.checks
    ]


@pytest.mark.parametrize("lab, index", CASES)
def test_calling_an_answer_function_zeroes_its_exercise_only(lab: Lab, index: int):
    entry = lab.spec.answer_functions[index]
    released = learner_notebook(lab)
    submitted = copy.deepcopy(released)
    module, name = entry.call.rsplit(".", 1)
    (cell,) = [c for c in submitted.cells if c.get("id") == entry.cells[0]]
    cell.source = f"{cell.source}\nfrom {module} import {name} as _given\n_given\n"  # inside a %%writefile body too
    assert answer_violations(lab, released, released) == [], "the released notebook itself calls nothing banned"
    violations = answer_violations(lab, submitted, nbformat.from_dict(released))
    assert entry.call in {v.call for v in violations}, f"{entry.call} in cell {entry.cells[0]!r} was not found"
    results = {r.id: r for r in give_away(_all_passed(lab), lab.checks, violations)}
    hit = {c.id for c in lab.checks if set(c.cells) & {cid for v in violations for cid in v.cells}}
    assert hit, f"no check grades the cells {entry.cells} of {entry.call}"
    short = entry.call.removeprefix("mlops_workbench.")
    for check in lab.checks:
        result = results[check.id]
        if check.id in hit:
            assert result.score == 0 and result.status == "failed", check.id
            assert "does the exercise for you" in result.message, result.message
            if set(check.cells) & set(entry.cells):
                assert f"`{short}`" in result.message, result.message
        else:
            assert result.score == check.points, f"{check.id} lost points though its cells call nothing banned"
