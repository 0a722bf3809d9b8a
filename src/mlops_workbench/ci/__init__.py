"""CI for ML projects, offline: GitHub Actions workflows validated and run locally, Dockerfiles linted.

* :mod:`~mlops_workbench.ci.workflow`: read a workflow with line numbers, JSON-schema and meaning checks.
* :mod:`~mlops_workbench.ci.runner`: run a workflow's steps locally (``workbench ci run``).
* :mod:`~mlops_workbench.ci.docker`: hadolint findings, Docker engine detection, image builds.
"""

from mlops_workbench.ci.findings import Finding, Report

__all__ = ["Finding", "Report"]
