"""The model registry: register versions, gate them, promote them by alias, roll back.

``aliases`` does the registering and alias moves, ``gate`` the quality gate,
``audit`` the append-only audit log, ``integrity`` the
sha256 digests of model artifacts (recorded at registration, verified before use), ``candidates`` logs challenger runs and
``panel`` is the notebook widget. The package itself is the one import a
notebook needs: ``from mlops_workbench import registry; registry.promote(...)``.
"""

from mlops_workbench.registry.aliases import (
    ALIASES,
    GateResult,
    RegistryError,
    RegistryParams,
    client,
    get_alias,
    list_versions,
    promote,
    quality_gate,
    register,
    rollback,
)
from mlops_workbench.registry.integrity import IntegrityError, record_digest, verify

__all__ = [
    "ALIASES", "GateResult", "RegistryError", "RegistryParams", "client", "get_alias", "list_versions",
    "promote", "quality_gate", "register", "rollback", "IntegrityError", "record_digest", "verify",
]
