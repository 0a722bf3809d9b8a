"""The model registry: register versions, gate them, promote them by alias, roll back.

``aliases`` does the registering and alias moves, ``gate`` the quality gate,
``audit`` the append-only audit log, ``candidates`` logs challenger runs and
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

__all__ = [
    "ALIASES", "GateResult", "RegistryError", "RegistryParams", "client", "get_alias", "list_versions",
    "promote", "quality_gate", "register", "rollback",
]
