"""Errors of the kind path.

``K8sError`` derives from ``RuntimeError`` because this tree has no package-wide
``WorkbenchError`` root yet; re-parent it there once ``mlops_workbench.errors`` exists.
"""

from __future__ import annotations


class K8sError(RuntimeError):
    """Something on the kind path cannot be done; the message says what to do."""


class ToolMissing(K8sError):
    """A command-line tool (kind, docker engine, kubectl, helm, node) is not available."""
