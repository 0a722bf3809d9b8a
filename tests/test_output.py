"""Quiet output: other libraries' chatter stays out of checks and commands unless asked for."""

from __future__ import annotations

import logging
import os
import subprocess
import sys

from mlops_workbench import output


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
    probe = ("import os, mlops_workbench; from mlops_workbench import output; a = os.environ[output.PROGRESS_BAR_ENV]; "
             "output.set_verbose(True); print(a, os.environ[output.PROGRESS_BAR_ENV], output.verbose())")
    env = {k: v for k, v in os.environ.items() if k != output.PROGRESS_BAR_ENV}
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, timeout=120,
                            check=True)
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
        (UserWarning, "mlops_workbench.labs.py"), (FutureWarning, "mlflow.tracking.py"), (UserWarning, "sklearn.base.py")]
