"""Quiet output: other libraries' chatter stays out of checks and commands unless asked for."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

import pytest
from drill_fakes import FakeDrill

from mlops_workbench import output
from mlops_workbench.workbench import Workbench


def test_quiet_keeps_chatty_loggers_to_errors_and_restores_them(monkeypatch, caplog):
    monkeypatch.delenv(output.VERBOSE_ENV, raising=False)
    mlflow_log = logging.getLogger("mlflow.tracking._model_registry.fluent")
    logging.getLogger("mlflow").setLevel(logging.INFO)
    with caplog.at_level(logging.DEBUG):
        with output.quiet():
            mlflow_log.warning("Run has no artifacts at artifact path 'model'")
            mlflow_log.error("a real failure")
            logging.getLogger("mlops_workbench.x").warning("ours")
        mlflow_log.warning("after")
    messages = [r.getMessage() for r in caplog.records]
    assert messages == ["a real failure", "ours", "after"]
    assert logging.getLogger("mlflow").level == logging.INFO


def test_verbose_shows_everything(monkeypatch, caplog):
    monkeypatch.setenv(output.VERBOSE_ENV, "1")
    with caplog.at_level(logging.DEBUG), output.quiet():
        logging.getLogger("mlflow").warning("shown")
    assert [r.getMessage() for r in caplog.records] == ["shown"]


def test_the_package_turns_mlflow_download_bars_off_and_verbose_turns_them_on():
    probe = (
        "import os, mlops_workbench; from mlops_workbench import output; a = os.environ[output.PROGRESS_BAR_ENV]; "
        "output.set_verbose(True); print(a, os.environ[output.PROGRESS_BAR_ENV], output.verbose())"
    )
    env = {k: v for k, v in os.environ.items() if k != output.PROGRESS_BAR_ENV}
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120, check=True
    )
    assert result.stdout.split() == ["false", "true", "True"]


def test_quiet_hides_other_libraries_user_warnings_but_not_ours_nor_future_warnings(monkeypatch):
    import warnings

    monkeypatch.delenv(output.VERBOSE_ENV, raising=False)

    def warn_from(module: str, category: type[Warning]) -> None:
        warnings.warn_explicit("noise", category, filename=f"{module}.py", lineno=1, module=module)

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with output.quiet():
            warn_from("sklearn.base", UserWarning)
            warn_from("pydantic.main", DeprecationWarning)
            warn_from("mlops_workbench.labs", UserWarning)
            warn_from("mlflow.tracking", FutureWarning)
        warn_from("sklearn.base", UserWarning)
    assert [(w.category, w.filename) for w in seen] == [
        (UserWarning, "mlops_workbench.labs.py"),
        (FutureWarning, "mlflow.tracking.py"),
        (UserWarning, "sklearn.base.py"),
    ]


class _Chatty(FakeDrill):
    """A setup that prints and logs what it breaks, as MLflow does when the setup registers a version."""

    def __init__(self, fails: bool = False) -> None:
        super().__init__("chatty", serve=False)
        self.fails = fails

    def setup(self, ctx, variant) -> None:
        print("Created version '2' of model 'incident-90'.")
        sys.stderr.write("Successfully registered model 'incident-90'.\n")
        logging.getLogger("mlflow.tracking").warning("View run at http://127.0.0.1:5000")
        if self.fails:
            raise RuntimeError("the setup broke")
        super().setup(ctx, variant)


def test_a_drill_setup_prints_nothing_that_gives_the_puzzle_away(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(output.VERBOSE_ENV, raising=False)
    drill = _Chatty()
    drill.prepare(drill.context(Workbench.from_env(tmp_path)), seed=1)
    shown = capsys.readouterr()
    assert "version" not in shown.out + shown.err and "registered" not in shown.out + shown.err


def test_a_failed_drill_setup_shows_what_it_printed_and_verbose_shows_it_always(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv(output.VERBOSE_ENV, raising=False)
    drill = _Chatty(fails=True)
    with pytest.raises(RuntimeError, match="the setup broke"):
        drill.prepare(drill.context(Workbench.from_env(tmp_path)), seed=1)
    assert "Created version '2'" in capsys.readouterr().err, "the context of the failure is kept"
    monkeypatch.setenv(output.VERBOSE_ENV, "1")
    _Chatty().prepare(_Chatty().context(Workbench.from_env(tmp_path / "verbose")), seed=1)
    assert "Created version '2'" in capsys.readouterr().out
