"""Errors of the kind path, under the package's :class:`~mlops_workbench.errors.WorkbenchError` root.

Its command-line tools (kind, kubectl, helm, node, promtool) run through :mod:`mlops_workbench.tools`, whose errors
are :class:`~mlops_workbench.errors.ToolError` rather than :class:`K8sError`: catch :data:`FAILURES` where
either may come. :class:`ToolMissing` is importable from here too.
"""

from __future__ import annotations

from mlops_workbench.errors import InputError, ToolError, ToolMissing, WorkbenchError

__all__ = ["FAILURES", "K8sError", "ManifestError", "ToolError", "ToolMissing"]


class K8sError(WorkbenchError, RuntimeError):
    """Something on the kind path cannot be done; the message says what to do."""


class ManifestError(K8sError, InputError):
    """A manifest that cannot be read as Kubernetes objects (bad YAML, too big, too deep, anchors, not a mapping)."""


FAILURES = (K8sError, ToolError)
"""What a step of the kind path raises when it cannot be done: its own errors and its tools' errors."""
