"""Exit codes live on the errors; the CLI's root group maps them in one place, and --quiet keeps the verdict."""

from __future__ import annotations

import inspect

import pytest
import typer
from typer.testing import CliRunner

from mlops_workbench import errors, output
from mlops_workbench.cli import main as cli
from mlops_workbench.errors import EXIT_ERROR, EXIT_FAILED, Failed, InputError, WorkbenchError, verdict


def test_every_error_family_carries_its_exit_code():
    families = [obj for obj in vars(errors).values() if inspect.isclass(obj) and issubclass(obj, WorkbenchError)]
    assert {cls: cls.exit_code for cls in families if cls is not Failed} == dict.fromkeys(
        [cls for cls in families if cls is not Failed], EXIT_ERROR
    )
    assert Failed.exit_code == EXIT_FAILED


def test_verdict_returns_on_a_good_answer_and_raises_failed_on_a_bad_one():
    assert verdict(True) is None
    with pytest.raises(Failed) as caught:
        verdict(False, "2 checks failed")
    assert str(caught.value) == "2 checks failed" and caught.value.exit_code == EXIT_FAILED


@pytest.fixture
def probe_app(monkeypatch):
    """The real root group and callback with three probe commands: a good verdict, a bad one, a broken input."""
    app = typer.Typer(cls=cli.WorkbenchGroup)
    app.callback()(cli.main)

    @app.command("good")
    def good() -> None:
        output.console().print("a table row")
        output.final("✔ all good")

    @app.command("bad")
    def bad() -> None:
        output.console().print("a table row")
        output.final("✘ 1 problem")
        raise Failed()

    @app.command("broken")
    def broken() -> None:
        raise InputError("--weight must be from 0 to 100, got 500")

    monkeypatch.delenv(output.QUIET_ENV, raising=False)
    return app


def test_the_root_group_maps_each_error_to_its_exit_code(probe_app):
    runner = CliRunner()
    good = runner.invoke(probe_app, ["good"])
    assert good.exit_code == 0 and "a table row" in good.stdout and "✔ all good" in good.stdout
    bad = runner.invoke(probe_app, ["bad"])
    assert bad.exit_code == EXIT_FAILED and "✘ 1 problem" in bad.stdout and bad.stderr == ""
    broken = runner.invoke(probe_app, ["broken"])
    assert broken.exit_code == EXIT_ERROR
    assert broken.stderr.strip() == "error: --weight must be from 0 to 100, got 500"
    assert "Traceback" not in broken.output


def test_quiet_prints_only_errors_and_the_final_verdict_line(probe_app):
    runner = CliRunner()
    good = runner.invoke(probe_app, ["--quiet", "good"])
    assert good.exit_code == 0 and good.stdout.strip() == "✔ all good"
    bad = runner.invoke(probe_app, ["-q", "bad"])
    assert bad.exit_code == EXIT_FAILED and bad.stdout.strip() == "✘ 1 problem"
    broken = runner.invoke(probe_app, ["--quiet", "broken"])
    assert broken.exit_code == EXIT_ERROR and "error: --weight" in broken.stderr
    after = runner.invoke(probe_app, ["good"])  # --quiet lasts one command
    assert "a table row" in after.stdout and not output.terse()


def test_verbose_and_quiet_together_are_refused(probe_app):
    result = CliRunner().invoke(probe_app, ["--verbose", "--quiet", "good"])
    assert result.exit_code == 2 and "contradict" in result.output


def test_a_failed_verdict_with_a_message_prints_it_plainly_on_stderr(probe_app):
    @probe_app.command("gone")
    def gone() -> None:
        raise Failed("No service 'x' is running; see `workbench ps`.")

    result = CliRunner().invoke(probe_app, ["gone"])
    assert result.exit_code == EXIT_FAILED and result.stderr.strip() == "No service 'x' is running; see `workbench ps`."
