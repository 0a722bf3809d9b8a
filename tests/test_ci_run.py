"""`workbench ci run`: steps run in order with env, failures stop the job, unknown actions and docker are skipped."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mlops_workbench.ci import docker
from mlops_workbench.ci.runner import job_order, run_workflow
from mlops_workbench.cli.main import app


@pytest.fixture()
def project(tmp_path) -> Path:
    path = tmp_path / "project"
    (path / ".github" / "workflows").mkdir(parents=True)
    (path / "sub").mkdir()
    return path


@pytest.fixture()
def no_engine(monkeypatch):
    """No Docker engine: point the docker CLI at a socket that does not exist (or there is no CLI at all)."""
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    docker.engine.cache_clear()
    yield
    docker.engine.cache_clear()


def workflow(project: Path, text: str) -> Path:
    path = project / ".github" / "workflows" / "ci.yml"
    path.write_text(textwrap.dedent(text))
    return path


def test_steps_run_in_order_with_env_and_venv_python(project):
    path = workflow(
        project,
        """\
        on: push
        env: {LEVEL: workflow, SHARED: w}
        jobs:
          build:
            runs-on: ubuntu-latest
            env: {SHARED: job}
            steps:
              - run: echo "$LEVEL $SHARED $STEP" > order.txt
                env: {STEP: step}
              - run: python -c "import sys; print(sys.executable)" > python.txt
              - run: pwd > ../where.txt
                working-directory: sub
              - run: echo "FROM_ENV_FILE=yes" >> "$GITHUB_ENV"
              - id: ver
                run: echo "version=1.2" >> "$GITHUB_OUTPUT"
              - run: echo "$FROM_ENV_FILE ${{ steps.ver.outputs.version }} ${{ env.LEVEL }}" >> order.txt
        """,
    )
    result = run_workflow(path, quiet=True)
    assert result.ok and [s.status for s in result.steps] == ["passed"] * 6
    assert (project / "order.txt").read_text().split("\n")[:2] == ["workflow job step", "yes 1.2 workflow"]
    assert Path((project / "python.txt").read_text().strip()).parent == Path(sys.executable).parent
    assert (project / "where.txt").read_text().strip() == str((project / "sub").resolve())


def test_a_red_step_stops_the_job(project):
    path = workflow(
        project,
        """\
        on: push
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - name: fine
                run: echo fine
              - name: broken
                run: |
                  echo "about to fail"
                  exit 3
              - name: never
                run: touch never.txt
              - name: report
                if: failure()
                run: touch report.txt
        """,
    )
    result = run_workflow(path, quiet=True)
    assert not result.ok and result.exit_code == 1
    assert [(s.name, s.status) for s in result.steps] == [
        ("fine", "passed"),
        ("broken", "failed"),
        ("never", "skipped"),
        ("report", "passed"),
    ]
    broken = result.steps[1]
    assert broken.returncode == 3 and "exit code 3" in broken.reason and "about to fail" in broken.output
    assert result.steps[2].reason == "an earlier step failed"
    assert not (project / "never.txt").exists() and (project / "report.txt").exists()


def test_a_failed_job_skips_the_jobs_that_need_it(project):
    path = workflow(
        project,
        """\
        on: push
        jobs:
          deploy:
            needs: test
            runs-on: ubuntu-latest
            steps: [{run: touch deployed.txt}]
          test:
            runs-on: ubuntu-latest
            steps: [{run: "false"}]
        """,
    )
    result = run_workflow(path, quiet=True)
    assert [(s.job, s.status) for s in result.steps] == [("test", "failed"), ("deploy", "skipped")]
    assert "needs test" in result.steps[1].reason and not (project / "deployed.txt").exists()
    with pytest.raises(ValueError, match="cycle"):
        job_order({"a": {"needs": "b"}, "b": {"needs": ["a"]}})


def test_uses_steps_have_local_meanings_or_are_skipped_with_reason(project):
    here = ".".join(map(str, sys.version_info[:2]))
    path = workflow(
        project,
        f"""\
        on: push
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - uses: actions/checkout@v4
              - uses: actions/setup-python@v5
                with: {{python-version: "{here}", cache: pip}}
              - uses: actions/cache@v4
                with: {{path: ~/.cache/pip, key: pip}}
              - name: Lint
                uses: hadolint/hadolint-action@v3.1.0
              - uses: actions/setup-python@v5
                with: {{python-version: "2.7"}}
              - run: echo after
        """,
    )
    result = run_workflow(path, quiet=True)
    statuses = [s.status for s in result.steps]
    assert statuses == ["passed", "passed", "passed", "skipped", "warning", "passed"] and result.ok
    assert "already here" in result.steps[0].reason
    assert "matches" in result.steps[1].reason and "cache: pip" in result.steps[1].reason
    lint = result.steps[3]
    assert lint.name == "Lint" and "hadolint/hadolint-action@v3.1.0" in lint.reason and "GitHub" in lint.reason
    assert "2.7" in result.steps[4].reason


def test_docker_build_is_skipped_with_reason_without_an_engine(project, no_engine):
    assert not docker.engine().available
    path = workflow(
        project,
        """\
        on: push
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - name: Build the image
                run: docker build -t iris-model .
              - run: touch after.txt
        """,
    )
    result = run_workflow(path, quiet=True)
    build = result.steps[0]
    assert build.status == "skipped" and "no Docker engine" in build.reason and build.returncode is None
    assert result.ok and (project / "after.txt").exists()
    skipped = docker.build(project)
    assert skipped.status == "skipped" and "no Docker engine" in skipped.reason


def test_secrets_and_unknown_expressions_are_noted(project):
    path = workflow(
        project,
        """\
        on: push
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - run: echo "[${{ secrets.TOKEN }}][${{ github.event.pull_request.number }}]" > out.txt
        """,
    )
    result = run_workflow(path, quiet=True)
    assert (project / "out.txt").read_text().strip() == "[][]"
    assert "secrets live on GitHub" in result.steps[0].reason and "cannot be evaluated" in result.steps[0].reason


def test_cli_run_prints_a_line_per_step_and_exits_non_zero_when_red(project):
    path = workflow(
        project,
        """\
        on: push
        jobs:
          build:
            runs-on: ubuntu-latest
            steps:
              - {name: green step, run: "true"}
              - {name: red step, run: "exit 1"}
        """,
    )
    result = CliRunner().invoke(app, ["ci", "run", str(path), "--project", str(project)])
    assert result.exit_code == 1
    assert "✔ build › green step" in result.output and "✘ build › red step" in result.output
    assert "workflow red" in result.output
