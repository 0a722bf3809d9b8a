"""The one exception root of the workbench.

Every error the workbench raises on purpose derives from :class:`WorkbenchError`
and says what went wrong and what to do. Each class carries the exit code a
``workbench`` command ends with when it escapes (``exit_code``); the CLI's root
group catches this root alone, in one place, and exits with that code (anything
else is a bug and shows its traceback). Each family also derives from the built-in exception a
caller would expect, so ``except ValueError`` keeps working for bad input.

Exit codes of every ``workbench`` command:

* ``0`` (:data:`EXIT_OK`): the command did its job and its verdict is good;
* ``1`` (:data:`EXIT_FAILED`): the command ran and its verdict is bad (a check
  or grade failed, the gate refused, the rollout aborted, a validation found
  problems);
* ``2`` (:data:`EXIT_ERROR`): the command could not do its job (bad input, a
  missing file or tool, a service that is not running); the message names the fix.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_ERROR = 2


class WorkbenchError(Exception):
    """Root of every error the workbench raises on purpose; the message names the fix."""

    exit_code: int = EXIT_ERROR


class Failed(WorkbenchError):
    """Not a breakdown but a bad verdict: the command did its work and the answer is no (a check or grade failed,
    the gate refused, the rollout rolled back, a validation found problems).

    The command has usually printed its own verdict line already, so the message may be empty; the CLI then prints
    nothing more and only exits with code 1."""

    exit_code = EXIT_FAILED


def verdict(ok: bool, message: str = "") -> None:
    """End a command on its verdict: return when ``ok``, else raise :class:`Failed` (exit code 1)."""
    if not ok:
        raise Failed(message)


class InputError(WorkbenchError, ValueError):
    """Bad input: a parameter, file content, payload or request that cannot be used as given."""

    exit_code = EXIT_ERROR


class NotFoundError(WorkbenchError, FileNotFoundError):
    """A file, folder, checkout or tool the command needs does not exist."""

    exit_code = EXIT_ERROR


class ServiceError(WorkbenchError, RuntimeError):
    """A background service (tracking server, model server, router, Prometheus) is missing or failing."""

    exit_code = EXIT_ERROR


class ToolError(WorkbenchError, RuntimeError):
    """An external command-line tool (git, dvc, kubectl, node, ...) is missing, failed or did not finish."""


class ToolMissing(ToolError):
    """A command-line tool is not installed (or cannot start); the message gives its install command."""


class ToolFailed(ToolError):
    """A command-line tool ran and failed, or ran too long; the message holds the command and its last output."""


class ToolTimeout(ToolFailed):
    """A command-line tool did not finish within its time limit (and was killed)."""


class TrackingServerDown(ServiceError):
    """No MLflow tracking server runs for the state folder (or it does not answer)."""


class ModelLoadError(WorkbenchError, RuntimeError):
    """A model URI that cannot be resolved or loaded (the model server answers 409 and keeps the model it has)."""

    exit_code = EXIT_ERROR


class RegistryError(InputError):
    """A registry action that cannot be done; nothing was changed. The message says what to do."""
