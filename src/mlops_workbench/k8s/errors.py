"""Errors of the kind path, under the package's :class:`~mlops_workbench.errors.WorkbenchError` root."""

from __future__ import annotations

from mlops_workbench.errors import InputError, WorkbenchError


class K8sError(WorkbenchError, RuntimeError):
    """Something on the kind path cannot be done; the message says what to do."""


class ManifestError(K8sError, InputError):
    """A manifest that cannot be read as Kubernetes objects (bad YAML, too big, too deep, anchors, not a mapping)."""


class ToolMissing(K8sError):
    """A command-line tool (kind, docker engine, kubectl, helm, node) is not available."""
