"""Every lab's learner notebook, as released (exercise stubs in place), scores zero on every graded check."""

from __future__ import annotations

import pytest

from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import fresh_workbench, grade
from mlops_workbench.labs.release import learner_notebook, render
from mlops_workbench.workbench import Workbench

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
LABS = Lab.all()


@pytest.mark.parametrize("lab", LABS, ids=[lab.id for lab in LABS])
def test_learner_version_scores_zero_on_every_graded_check(lab, tmp_path):
    learner = tmp_path / f"{lab.id}.ipynb"
    learner.write_text(render(learner_notebook(lab)))
    report = grade(fresh_workbench(Workbench.from_env(), tmp_path / "out"), learner, tmp_path / "out", lab)
    assert report.score == 0
    assert [c.id for c in report.checks if c.status == "passed"] == []
