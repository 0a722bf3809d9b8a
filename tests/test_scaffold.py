"""`workbench scaffold ci-project`: a real project whose own tests pass, a learner variant, planted bugs."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_workbench.ci import docker, scaffold
from mlops_workbench.ci.workflow import REQUIREMENTS, validate
from mlops_workbench.cli.main import app


def pytest_in(project: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def full(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("scaffold") / "iris"
    scaffold.scaffold_ci_project(path)
    return path


def test_full_project_files(full):
    for rel in [
        "iris_model/model.py",
        "iris_model/train.py",
        "iris_model/serve.py",
        "tests/test_data.py",
        "tests/test_predict.py",
        "requirements.txt",
        "Dockerfile",
        ".dockerignore",
        scaffold.WORKFLOW,
    ]:
        assert (full / rel).is_file(), rel
    assert not (full / "requirements.txt.tmpl").exists() and not list(full.rglob("*learner*"))
    assert f"scikit-learn=={importlib.metadata.version('scikit-learn')}" in (full / "requirements.txt").read_text()


def test_full_workflow_validates_with_every_requirement(full):
    assert validate(full / scaffold.WORKFLOW, require=REQUIREMENTS).findings == []


def test_the_deploy_workflow_waits_for_the_production_environment(full):
    from mlops_workbench.ci.yamldoc import YamlDoc

    path = full / scaffold.DEPLOY_WORKFLOW
    assert validate(path).findings == []
    text = path.read_text()
    deploy = YamlDoc.parse(text).data["jobs"]["deploy-production"]
    assert deploy["environment"] == {"name": "production"} and deploy["needs"] == "test"
    assert "Required reviewers" in text and "prevent_self_review" in text, "the settings YAML cannot hold are named"
    assert "is NOT in this file" in text


def test_dockerfile_lints_clean(full):
    report = docker.lint(full / "Dockerfile")
    assert report.findings == [], [str(f) for f in report.findings]


def test_hadolint_findings_have_lines_and_rules(tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    report = docker.lint(tmp_path)
    assert not report.ok and {"DL3007", "DL3008"} <= report.rules()
    assert {f.line for f in report.findings if f.rule == "DL3008"} == {2}
    assert CliRunner().invoke(app, ["ci", "lint", str(tmp_path / "Dockerfile")]).exit_code == 1


@pytest.mark.slow
def test_scaffolded_project_tests_pass(full):
    result = pytest_in(full)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "10 passed" in result.stdout


def test_learner_variant_omits_tests_and_workflow_steps(tmp_path):
    result = CliRunner().invoke(app, ["scaffold", "ci-project", str(tmp_path / "p"), "--learner"])
    assert result.exit_code == 0, result.output
    project = tmp_path / "p"
    assert not (project / "tests" / "test_data.py").exists() and not (project / "tests" / "test_predict.py").exists()
    assert (project / "tests" / "test_serve.py").exists() and (project / "iris_model" / "model.py").exists()
    report = validate(project / scaffold.WORKFLOW, require=REQUIREMENTS)
    assert {"push-trigger", "install-step", "test-step", "build-step"} <= report.rules() and not report.ok
    assert "TODO" in (project / scaffold.WORKFLOW).read_text()
    assert not (project / scaffold.DEPLOY_WORKFLOW).exists(), "the deploy workflow shows the steps lab 01 asks for"
    lint = docker.lint(project / "Dockerfile")  # the learner variant ships a Dockerfile to fix
    assert not lint.ok and {"DL3007", "DL3042", "DL3025"} <= lint.rules()


def test_scaffold_refuses_a_non_empty_folder(tmp_path):
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(scaffold.ScaffoldError, match="not empty"):
        scaffold.scaffold_ci_project(tmp_path)
    scaffold.scaffold_ci_project(tmp_path, force=True)
    assert (tmp_path / "keep.txt").read_text() == "mine" and (tmp_path / "Dockerfile").exists()


def test_break_and_restore_model(tmp_path):
    scaffold.scaffold_ci_project(tmp_path)
    original = (tmp_path / scaffold.MODEL_FILE).read_text()
    for bug in scaffold.BUGS:
        assert scaffold.break_model(tmp_path, bug)
        assert (tmp_path / scaffold.MODEL_FILE).read_text() != original
        scaffold.restore_model(tmp_path)
    assert (tmp_path / scaffold.MODEL_FILE).read_text() == original
    with pytest.raises(scaffold.ScaffoldError, match="unknown bug"):
        scaffold.break_model(tmp_path, "nope")


@pytest.mark.slow
@pytest.mark.parametrize(
    "bug, tests", [("train-shuffled", "tests/test_predict.py"), ("data-wrong-labels", "tests/test_data.py")]
)
def test_planted_bugs_turn_the_shipped_tests_red(tmp_path, bug, tests):
    scaffold.scaffold_ci_project(tmp_path)
    scaffold.break_model(tmp_path, bug)
    result = pytest_in(tmp_path, tests)
    assert result.returncode == 1 and "failed" in result.stdout, result.stdout


@pytest.mark.slow
def test_tests_catch_reports_which_bugs_the_tests_notice(full):
    assert scaffold.tests_catch(full, "data-wrong-labels", "tests/test_data.py")
    caught = scaffold.bugs_caught(full, ["data-drops-feature", "train-shuffled"], "tests/test_data.py")
    assert caught == {"data-drops-feature": True, "train-shuffled": False}  # data tests do not train
    assert (full / scaffold.MODEL_FILE).read_text() == scaffold.template_text(scaffold.MODEL_FILE), "project untouched"


@pytest.mark.slow
def test_full_workflow_runs_green_locally(full, monkeypatch):
    """The scaffold's own workflow, run step by step: install, pytest, train pass; Docker parts skipped with reasons."""
    from mlops_workbench.ci.runner import run_workflow

    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    docker.engine.cache_clear()
    try:
        run = run_workflow(full / scaffold.WORKFLOW, quiet=True)
    finally:
        docker.engine.cache_clear()
    statuses = {s.name: s.status for s in run.steps}
    assert run.ok, [(s.name, s.status, s.reason, s.output[-500:]) for s in run.steps]
    assert statuses["Install dependencies"] == statuses["Run the tests"] == statuses["Train the model"] == "passed"
    assert statuses["Lint the Dockerfile"] == statuses["Build the image"] == "skipped"
    assert (full / "metrics.json").is_file() and (full / "models" / "model.joblib").is_file()
