"""What the workbench shows a person: its own messages, without other libraries' chatter unless asked.

MLflow, DVC and friends log warnings and draw download bars that bury a check's verdict or a command's
answer. :func:`quiet` keeps them below ERROR for the duration of a ``check()`` or a CLI command; with
``workbench --verbose`` (or ``WORKBENCH_VERBOSE=1``) everything shows. Importing the package already
turns MLflow's artifact download bars off by default (see :mod:`mlops_workbench`).

This module is also the one owner of the terminal: :func:`console` hands out the console every command and report
prints to, :func:`error_console` the one for errors (stderr). ``workbench --quiet`` (or ``WORKBENCH_QUIET=1``)
mutes the first, so only errors and each command's final verdict line (:func:`final`) show; the exit code says the
rest.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, redirect_stderr, redirect_stdout
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # rich loads with the first console: a kernel that only needs quiet() does not pay for it
    from rich.console import Console

VERBOSE_ENV = "WORKBENCH_VERBOSE"
QUIET_ENV = "WORKBENCH_QUIET"
PROGRESS_BAR_ENV = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
CHATTY = ("mlflow", "alembic", "dvc", "git", "urllib3", "httpx", "papermill")
"""Loggers of the libraries under the workbench, kept to errors when not verbose."""


_consoles: dict[str, Console] = {}
"""The two consoles of this process ("out" and "err"), made on first use."""


def _on(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def verbose() -> bool:
    return _on(os.environ.get(VERBOSE_ENV))


def set_verbose(on: bool) -> None:
    """Show (or hide) third-party output in this process and the ones it starts."""
    os.environ[VERBOSE_ENV] = "1" if on else "0"
    os.environ[PROGRESS_BAR_ENV] = "true" if on else "false"


def terse() -> bool:
    """Is ``--quiet`` on: only errors and final verdict lines are printed?"""
    return _on(os.environ.get(QUIET_ENV))


def set_terse(on: bool) -> None:
    """Turn ``--quiet`` on (or off) for this process and the ones it starts; the workbench's own loggers follow."""
    os.environ[QUIET_ENV] = "1" if on else "0"
    if "out" in _consoles:
        _consoles["out"].quiet = on
    logging.getLogger("mlops_workbench").setLevel(logging.ERROR if on else logging.NOTSET)


@contextmanager
def terse_while(on: bool) -> Iterator[None]:
    """``--quiet`` for the duration when ``on`` (what one CLI command asked for); the earlier setting comes back."""
    if not on:
        yield
        return
    before = os.environ.get(QUIET_ENV)
    set_terse(True)
    try:
        yield
    finally:
        set_terse(_on(before))
        if before is None:
            del os.environ[QUIET_ENV]


def new_command() -> None:
    """Forget the consoles made so far: the next command measures its own terminal (width, colours). The CLI calls
    this as each command starts, so commands run one after another in one process (tests, a notebook's
    ``!workbench``) never print at the width the first one saw."""
    _consoles.clear()


def console() -> Console:
    """The console for what a command shows (tables, progress, verdicts); silent under ``--quiet``. Made on first
    use (a kernel that never prints a table never makes one); it writes to whatever ``sys.stdout`` is then."""
    if "out" not in _consoles:
        from rich.console import Console

        _consoles["out"] = Console(quiet=terse())
    return _consoles["out"]


def error_console() -> Console:
    """The console for errors, on stderr; never silenced, lines never wrapped."""
    if "err" not in _consoles:
        from rich.console import Console

        _consoles["err"] = Console(stderr=True, soft_wrap=True)
    return _consoles["err"]


def log_to_stderr(level: int = logging.WARNING) -> None:
    """Log records of ``level`` and above to stderr with a time stamp: what a background service (a model server)
    writes to its log file. The one place the workbench configures the root logger."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def say(text: str) -> None:
    """Print plain text (no markup, no wrapping) on stdout, unless ``--quiet``: for long prose such as a debrief."""
    if not terse():
        print(text, flush=True)


def final(message: str, **kwargs: Any) -> None:
    """Print a command's final verdict line: the one line besides errors that ``--quiet`` still shows."""
    out = console()
    was, out.quiet = out.quiet, False
    try:
        out.print(message, **kwargs)
    finally:
        out.quiet = was


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
        for logger, level in zip(loggers, levels, strict=True):
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
