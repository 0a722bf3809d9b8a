"""Lab 01 fixes: non-root Dockerfile enforced, validator and check agree on training, the confusion matrix
renders, the workflow runner shows no colour codes, and the workflow check grades pins and permissions."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_workbench.ci import docker, scaffold
from mlops_workbench.ci.runner import run_workflow
from mlops_workbench.ci.workflow import REQUIREMENTS, validate
from mlops_workbench.labs.checks import CheckFailed, Context, load_checks
from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]
CHECKOUT = "actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0"
SETUP = "actions/setup-python@a26af69be951a213d495a4c3e4e4022e16d87065 # v5.6.0"


# ---------------------------------------------------------------- (a) non-root USER

SERVE = 'EXPOSE 8000\nCMD ["uvicorn", "iris_model.serve:app", "--host", "0.0.0.0", "--port", "8000"]\n'


@pytest.mark.parametrize(
    "text, line, says",
    [
        ("FROM python:3.11-slim\nWORKDIR /app\n" + SERVE, 1, "never sets USER"),
        ("FROM python:3.11-slim\nUSER 10001\nUSER root\n" + SERVE, 3, "`root`"),
        ("FROM python:3.11-slim AS build\nUSER 10001\nFROM python:3.11-slim\n" + SERVE, 3, "never sets USER"),
        ("FROM python:3.11-slim\nUSER 0:0\n" + SERVE, 2, "`0:0`"),
    ],
)
def test_a_root_final_stage_is_a_finding(text, line, says):
    [finding] = docker.user_findings(text)
    assert finding.rule == "non-root-user" and finding.line == line and says in finding.message
    assert "USER 10001" in finding.fix


def test_non_root_final_stage_and_continuations_pass():
    text = "FROM a AS build\nRUN echo \\\n  USER root\nFROM python:3.11-slim\n# USER root\nUSER 10001:10001\n" + SERVE
    assert docker.user_findings(text) == []


def test_lint_reports_the_missing_user_that_hadolint_does_not(tmp_path):
    text = (
        "FROM python:3.11-slim\nWORKDIR /app\nCOPY requirements.txt .\n"
        "RUN pip install --no-cache-dir -r requirements.txt\n" + SERVE
    )
    (tmp_path / "Dockerfile").write_text(text)
    report = docker.lint(tmp_path)
    assert [f.rule for f in report.findings] == ["non-root-user"] and not report.ok


# ---------------------------------------------------------------- (b) train: one rule, one place


def test_a_workflow_without_training_fails_validate_and_says_so(tmp_path):
    scaffold.scaffold_ci_project(tmp_path / "p")
    path = tmp_path / "p" / scaffold.WORKFLOW
    path.write_text(
        path.read_text().replace("      - name: Train the model\n        run: python -m iris_model.train\n", "")
    )
    report = validate(path, require=REQUIREMENTS)
    assert [f.rule for f in report.errors] == ["train-step"]
    assert "python -m iris_model.train" in report.errors[0].fix


# ---------------------------------------------------------------- (c) the confusion matrix renders


def test_confusion_matrix_displays_as_a_png_without_pyplot():
    from IPython.core.formatters import DisplayFormatter

    from mlops_workbench import data
    from mlops_workbench.evaluate import plot_confusion_matrix
    from mlops_workbench.train import TrainParams, train

    params = TrainParams.load()
    train_df, test_df = data.split(data.load_iris_frame(), params.test_size, params.seed)
    fig = plot_confusion_matrix(train(train_df, params), test_df)
    shown, _ = DisplayFormatter().format(fig)
    assert shown["image/png"][:8] == b"\x89PNG\r\n\x1a\n" and len(shown["image/png"]) > 5000


# ---------------------------------------------------------------- (d) no colour codes in step output


def test_step_output_has_no_colour_codes_inside_a_kernel_env(tmp_path, monkeypatch):
    monkeypatch.setenv("FORCE_COLOR", "1")  # what ipykernel sets for its subprocesses
    (tmp_path / "test_x.py").write_text("def test_fails():\n    assert 1 == 2\n")
    workflow = tmp_path / "ci.yml"
    workflow.write_text(
        "on: push\njobs:\n  t:\n    runs-on: ubuntu-latest\n    steps:\n"
        "      - run: python -m pytest -p no:cacheprovider test_x.py\n"
        "      - run: printf '\\033[31mred\\033[0m\\n'; exit 1\n"
    )
    run = run_workflow(workflow, tmp_path, quiet=True)
    outputs = [s.output for s in run.steps]
    assert "assert 1 == 2" in outputs[0] and "red" in outputs[1] or run.steps[1].status == "skipped"
    assert all("\x1b[" not in o for o in outputs), outputs


# ---------------------------------------------------------------- lab 01's workflow-hardened check


@pytest.fixture
def lab01(tmp_path):
    checks = {c.id: c for c in load_checks(ROOT / "labs" / "01-ci-basics" / "checks.py")}
    ctx = Context(lab="01-ci-basics", wb=Workbench.from_env(tmp_path))
    project = ctx.workspace / "iris-ci"
    scaffold.scaffold_ci_project(project)
    return checks, ctx, project / scaffold.WORKFLOW


def test_hardened_check_passes_the_scaffold_reference(lab01):
    checks, ctx, _ = lab01
    checks["workflow-valid"].func(ctx)
    checks["workflow-hardened"].func(ctx)


@pytest.mark.parametrize(
    "edit, says",
    [
        (lambda t: t.replace(CHECKOUT, "actions/checkout@v4"), "unpinned action reference `actions/checkout@v4`"),
        (
            lambda t: t.replace("permissions:\n  contents: read  # every job only reads the repository\n", ""),
            "overly broad permissions",
        ),
        (lambda t: t.replace("contents: read", "contents: write"), "permissions: {contents: read}"),
        (lambda t: t.replace(" # v5.6.0", ""), "does not say which version"),
        (
            lambda t: t.replace(
                f'      - uses: {SETUP}\n        with:\n          python-version: "3.11"\n          cache: pip\n', ""
            ),
            "keep the actions/checkout and actions/setup-python steps",
        ),
    ],
)
def test_hardened_check_grades_pins_and_permissions(lab01, edit, says):
    checks, ctx, workflow = lab01
    workflow.write_text(edit(workflow.read_text()))
    checks["workflow-valid"].func(ctx)  # still a valid workflow: only the supply chain is graded
    with pytest.raises(CheckFailed) as failed:
        checks["workflow-hardened"].func(ctx)
    assert says in str(failed.value), str(failed.value)
