"""The one exception root of the workbench.

Every error the workbench raises on purpose derives from :class:`WorkbenchError`
and says what went wrong and what to do. The ``workbench`` CLI catches this root
alone (anything else is a bug and shows its traceback) and exits with
:data:`EXIT_ERROR`. Each family also derives from the built-in exception a
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


class InputError(WorkbenchError, ValueError):
    """Bad input: a parameter, file content, payload or request that cannot be used as given."""


class NotFoundError(WorkbenchError, FileNotFoundError):
    """A file, folder, checkout or tool the command needs does not exist."""


class ServiceError(WorkbenchError, RuntimeError):
    """A background service (tracking server, model server, router, Prometheus) is missing or failing."""


class ToolError(WorkbenchError, RuntimeError):
    """An external command-line tool (git, dvc, kubectl, node, ...) is missing, failed or did not finish."""


class ToolMissing(ToolError):
    """A command-line tool is not installed (or cannot start); the message gives its install command."""


class ToolFailed(ToolError):
    """A command-line tool ran and failed, or ran too long; the message holds the command and its last output."""


class TrackingServerDown(ServiceError):
    """No MLflow tracking server runs for the state folder (or it does not answer)."""


class ModelLoadError(WorkbenchError, RuntimeError):
    """A model URI that cannot be resolved or loaded (the model server answers 409 and keeps the model it has)."""


class RegistryError(InputError):
    """A registry action that cannot be done; nothing was changed. The message says what to do."""
