"""Lab 02's hidden scenario checks called on the learner's functions: the reference ``log_run`` and
``reproduce_run`` pass, plausible wrong ones that pass every check in the notebook fail, and the message names the
fix without giving the case away.

One real workspace (git, DVC, a local remote, the pipeline run once) and one MLflow server per module; each test
writes its variant of the learner's file into the workspace, as the ``%%writefile`` cell would, and calls the check.
The graded run of the whole reference solution (these checks included, with its seed) is in test_pipeline; calling
an answer function is covered for every exercise by test_labs_answer_functions.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from lab02_state import build_solution_state

from mlops_workbench import procs, tracking
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
LAB_DIR = Path(__file__).resolve().parents[1] / "labs" / "02-versioning"
CHECKS = {c.id: c for c in load_checks(LAB_DIR / "checks.py")}
SEED = 1234


def solution_file(cell_id: str) -> tuple[str, str]:
    """(file name, source) the reference solution's ``%%writefile`` cell ``cell_id`` writes."""
    nb = nbformat.read(LAB_DIR / "lab.ipynb", as_version=4)
    (source,) = [c.source for c in nb.cells if c.get("id") == cell_id]
    first, _, body = source.partition("\n")
    assert first.startswith("%%writefile "), first
    return first.split()[1], body + "\n"


LOG_RUN = solution_file("log-run")
REPRODUCE = solution_file("reproduce")
# passes every public check in the notebook (its kernel runs in the workspace), wrong anywhere else
CWD_LINEAGE = [
    (
        '"git.commit": ws.git("rev-parse", "HEAD"),',
        "\"git.commit\": __import__('subprocess').check_output(['git', 'rev-parse', 'HEAD'], text=True).strip(),",
    ),
    ('"workspace.path": str(ws.path),', "\"workspace.path\": __import__('os').getcwd(),"),
]
# reruns the latest commit instead of the run's own: right for every run of the notebook when it is logged
HEAD_CLONE = [
    (
        'clone.git("checkout", "--quiet", "--detach", tags["git.commit"])',
        'clone.git("checkout", "--quiet", "--detach", "HEAD")',
    )
]


@pytest.fixture(scope="module")
def ctx(tmp_path_factory) -> Context:
    """The state folder after the solution's Exercises 1-3, with its MLflow server running."""
    home = tmp_path_factory.mktemp("lab02-scenarios")
    context = Context(lab=LAB_DIR.name, wb=Workbench.from_env(home), seed=SEED)
    build_solution_state(home)
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)
    yield context
    procs.stop_all(Workbench.from_env(home))


def learner_writes(ctx: Context, file: tuple[str, str], edits: list[tuple[str, str]] = ()) -> None:
    name, source = file
    for old, new in edits:
        assert old in source, old
        source = source.replace(old, new)
    (ctx.workspace / name).write_text(source)


def failure(check_id: str, ctx: Context) -> str:
    with pytest.raises(CheckFailed) as caught:
        CHECKS[check_id].func(ctx)
    return str(caught.value)


def test_the_reference_log_run_passes_the_seeded_scenarios(ctx):
    learner_writes(ctx, LOG_RUN)
    CHECKS["log-run-scenarios"].func(ctx)


def test_a_log_run_that_reads_the_current_folder_fails_the_seeded_scenarios(ctx):
    learner_writes(ctx, LOG_RUN, CWD_LINEAGE)
    message = failure("log-run-scenarios", ctx)
    # the grader's copy is another repository than the current folder: its commit is named, or git fails there
    assert (
        "your log_run tagged git.commit" in message
        and "never from the notebook, a constant or the current folder" in message
    ) or "compute everything from the `ws` argument" in message, message
    assert str(SEED) not in message and "train.C =" not in message  # the case is not given away


def test_the_reference_reproduce_run_passes_the_seeded_scenarios(ctx):
    learner_writes(ctx, REPRODUCE)
    CHECKS["reproduce-scenarios"].func(ctx)


def test_a_reproduction_of_the_latest_commit_fails_the_seeded_scenarios(ctx):
    learner_writes(ctx, REPRODUCE, HEAD_CLONE)
    message = failure("reproduce-scenarios", ctx)
    assert "not at the run's commit" in message and "git checkout --detach COMMIT" in message, message
