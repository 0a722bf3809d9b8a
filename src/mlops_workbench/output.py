"""What the workbench shows a person: its own messages, without other libraries' chatter unless asked.

MLflow, DVC and friends log warnings and draw download bars that bury a check's verdict or a command's
answer. :func:`quiet` keeps them below ERROR for the duration of a ``check()`` or a CLI command; with
``workbench --verbose`` (or ``WORKBENCH_VERBOSE=1``) everything shows. Importing the package already
turns MLflow's artifact download bars off by default (see :mod:`mlops_workbench`).
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from typing import Iterator

VERBOSE_ENV = "WORKBENCH_VERBOSE"
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
CHATTY = ("mlflow", "alembic", "dvc", "git", "urllib3", "httpx", "papermill")
"""Loggers of the libraries under the workbench, kept to errors when not verbose."""


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes", "on")


def set_verbose(on: bool) -> None:
    """Show (or hide) third-party output in this process and the ones it starts."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    os.environ[PROGRESS_BAR_ENV] = "true" if on else "false"


@contextmanager
def quiet() -> Iterator[None]:
    """For the duration (unless verbose): third-party loggers at ERROR, and other libraries' user and deprecation
    warnings hidden. Levels and warning filters come back afterwards. FutureWarnings still show: they announce a
    change that breaks code, and the test suite turns MLflow's into errors."""
    if verbose():
        yield
        return
    loggers = [logging.getLogger(name) for name in CHATTY]
    levels = [logger.level for logger in loggers]
    for logger in loggers:
        logger.setLevel(logging.ERROR)
    try:
        with ExitStack() as stack:
            stack.enter_context(warnings.catch_warnings())
            for category in (UserWarning, DeprecationWarning, PendingDeprecationWarning, RuntimeWarning):
                warnings.filterwarnings("ignore", category=category, module=r"(?!mlops_workbench)")
            yield
    finally:
        for logger, level in zip(loggers, levels):
            logger.setLevel(level)


@contextmanager
def hidden() -> Iterator[None]:
    """For a step the learner must not watch (a drill's setup breaking the system): what this process prints in the
    meantime (MLflow's "Created version 2", "View run ..." lines included) is kept back, and shown only when the step
    fails, so the error has its context. With ``--verbose`` everything shows as it happens."""
    if verbose():
        yield
        return
    kept = io.StringIO()
    try:
        with quiet(), redirect_stdout(kept), redirect_stderr(kept):
            yield
    except BaseException:
        sys.stderr.write(kept.getvalue())
        raise
