"""The model registry: register versions, gate them, promote them by alias, roll back.

``aliases`` does the registering and alias moves (the finished procedures the CLI,
drills and rollouts call), ``gate`` the quality gate, ``audit`` the append-only audit
log, ``approvals`` the approval records on versions, ``integrity`` the sha256 digests
of model artifacts (recorded at registration, verified before use), ``candidates``
logs challenger runs and ``panel`` is the notebook widget. Lab 03's learner writes
promotion and rollback with MLflow's client on the building blocks (``audit``,
``approvals``, ``quality_gate``), never with ``registry.promote``/``rollback``.
"""

from mlops_workbench.registry import aliases
from mlops_workbench.registry.aliases import *  # noqa: F403  (the finished procedures: aliases.__all__)
from mlops_workbench.registry.integrity import IntegrityError, record_digest, verify

__all__ = ["IntegrityError", "record_digest", "verify"]
__all__ += aliases.__all__
