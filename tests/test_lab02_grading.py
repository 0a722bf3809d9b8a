"""Lab 02 graded end to end (real git, DVC, MLflow server): answer functions score 0 for their exercise, plausible
wrong implementations fail the hidden seeded scenarios, the reference solution scores full marks.

Each submission variant is graded once per module (a lab 02 grading takes minutes) and shared by its tests.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import grade
from mlops_workbench.labs.report import Report

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
LAB = Lab(ROOT / "labs" / "02-versioning")
SEED = 1234

BANNED_INIT = """ws = versioning.init_workspace(lab.workspace, reset=True, with_remote=False)
ws.dvc("remote", "add", "--default", "local", str(versioning.default_remote(lab.home)))
ws.commit("Default DVC remote")
print(ws.git("log", "--oneline"))"""
BANNED_LOG = """log_run = load_function("log_run.py", "log_run")
ws.commit("Logging code")
run_id = versioning.log_model_run(ws, experiment)"""
# passes every public check in the notebook (its kernel runs in the workspace), wrong anywhere else
CWD_LINEAGE = [("\"git.commit\": ws.git(\"rev-parse\", \"HEAD\"),",
                "\"git.commit\": __import__('subprocess').check_output(['git', 'rev-parse', 'HEAD'], text=True).strip(),"),
               ("\"workspace.path\": str(ws.path),", "\"workspace.path\": __import__('os').getcwd(),")]
# reruns the latest commit instead of the run's own: right for every run of the notebook when it is logged
HEAD_CLONE = [("clone.git(\"checkout\", \"--quiet\", \"--detach\", tags[\"git.commit\"])",
               "clone.git(\"checkout\", \"--quiet\", \"--detach\", \"HEAD\")")]


def submission(folder: Path, cells: dict[str, str] | None = None, edits: dict[str, list] | None = None) -> Path:
    """The reference solution with whole ``cells`` replaced and (old, new) ``edits`` made inside cells."""
    nb = nbformat.read(LAB.source, as_version=4)
    for cell in nb.cells:
        cid = cell.get("id")
        if cid in (cells or {}):
            cell.source = cells[cid]
        for old, new in (edits or {}).get(cid, []):
            assert old in cell.source, (cid, old)
            cell.source = cell.source.replace(old, new)
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / "submission.ipynb")
    return folder / "submission.ipynb"


def graded(tmp_path_factory, name: str, **changes) -> Report:
    folder = tmp_path_factory.mktemp(name)
    return grade(submission(folder, **changes), folder / "out", LAB, seed=SEED)


def by_id(report: Report) -> dict:
    return {c.id: c for c in report.checks}


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Report:
    return graded(tmp_path_factory, "reference")


@pytest.fixture(scope="module")
def banned(tmp_path_factory) -> Report:
    return graded(tmp_path_factory, "banned", cells={"init-workspace": BANNED_INIT, "use-log-run": BANNED_LOG})


@pytest.fixture(scope="module")
def wrong(tmp_path_factory) -> Report:
    return graded(tmp_path_factory, "wrong", edits={"log-run": CWD_LINEAGE, "reproduce": HEAD_CLONE})


def test_the_reference_solution_scores_full_marks_with_the_seed_in_the_report(reference):
    assert reference.seed == SEED
    assert {c.id: c.status for c in reference.checks} == dict.fromkeys(by_id(reference), "passed"), \
        [(c.id, c.message) for c in reference.checks if c.status != "passed"]
    assert reference.score == reference.max_score


def test_answer_functions_score_zero_for_their_exercises_only(banned):
    checks = by_id(banned)
    assert all(c.status == "ok" for c in banned.cells), "the cells ran: only the grade says who did the exercise"
    for cid in ("workspace-ready", "data-tracked"):
        assert checks[cid].score == 0 and checks[cid].message.startswith(
            "`versioning.init_workspace` (cell 'init-workspace', line 1) does the exercise for you: make the folder "
            "a repository yourself: ws.git(\"init\", \"-b\", \"main\"), ws.dvc(\"init\")"), checks[cid].message
    for cid in ("lineage-complete", "dirty-flag-honest", "log-run-scenarios"):
        assert checks[cid].score == 0 and "`versioning.log_model_run` (cell 'use-log-run', line 3)" in \
            checks[cid].message and "mlflow.set_tags" in checks[cid].message, (cid, checks[cid].message)
    kept = ("pipeline-declared", "pipeline-ran", "preprocessing-versioned", "triple-v", "reproduce-scenarios")
    assert {cid: checks[cid].status for cid in kept} == dict.fromkeys(kept, "passed"), \
        {cid: checks[cid].message for cid in kept}


def test_a_log_run_that_reads_the_current_folder_passes_the_notebook_and_fails_the_hidden_scenario(wrong):
    checks = by_id(wrong)
    assert checks["lineage-complete"].status == "passed", checks["lineage-complete"].message
    scenario = checks["log-run-scenarios"]
    assert scenario.status == "failed" and scenario.score == 0
    # the grader's folder is another repository (its commit is named) or none at all (git fails, the error is named)
    assert ("your log_run tagged git.commit" in scenario.message and "never from the notebook, a constant or the "
            "current folder" in scenario.message) or "compute everything from the `ws` argument" in scenario.message, \
        scenario.message
    assert str(SEED) not in scenario.message and "train.C =" not in scenario.message  # the case is not given away


def test_a_reproduction_of_the_latest_commit_fails_the_hidden_scenario(wrong):
    checks = by_id(wrong)
    scenario = checks["reproduce-scenarios"]
    assert scenario.status == "failed" and scenario.score == 0
    assert "not at the run's commit" in scenario.message and "git checkout --detach COMMIT" in scenario.message
    assert checks["preprocessing-versioned"].status == "passed", "the notebook's own runs still reproduce"
