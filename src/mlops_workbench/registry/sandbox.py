"""Throw-away registries for scenarios: a fresh registered model on a real tracking server, and its own audit log.

Lab 03's hidden checks hand one to the learner's ``promote`` and ``rollback`` and
grade what is left: the aliases, the approval records and the audit lines. Its
versions share the files of an existing version (registering needs no training),
its audit log lives in a scratch folder, and :meth:`Sandbox.close` removes both.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from mlops_workbench.registry import audit
from mlops_workbench.registry.aliases import REGISTERED_BY, RegistryError
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    from mlflow import MlflowClient


class Sandbox:
    """Model ``name`` made afresh (an older one of that name is deleted) with ``versions`` versions of ``source``.

    ``client`` is an ``MlflowClient``; ``source`` a ``ModelVersion`` whose files the versions reuse, each tagged
    ``registered_by: registrant``. ``record(entry)`` appends to the sandbox's own audit log, read by :meth:`lines`.
    """

    def __init__(self, client: MlflowClient, name: str, source: Any, versions: int, registrant: str) -> None:
        if versions < 1:
            raise RegistryError(f"A sandbox needs at least one version, not {versions}.")
        self.client, self.name = client, name
        self.drop()
        client.create_registered_model(name)
        model_id = getattr(source, "model_id", None) or str(source.source).removeprefix("models:/")
        # the tracking server registers a version READY at once; awaiting it would only log a line per version
        self.versions = [
            str(
                client.create_model_version(
                    name,
                    source.source,
                    run_id=source.run_id,
                    tags={REGISTERED_BY: registrant},
                    model_id=model_id,
                    await_creation_for=0,
                ).version
            )
            for _ in range(versions)
        ]
        self.folder = Path(tempfile.mkdtemp(prefix="registry-sandbox-"))
        self.audit_wb = Workbench(home=self.folder)  # the sandbox's own audit log, apart from any state folder
        self.record = audit.recorder(self.audit_wb)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def drop(self) -> None:
        """Delete the registered model (its versions and aliases) if it exists."""
        if self.client.search_registered_models(f"name='{self.name}'"):
            self.client.delete_registered_model(self.name)

    def close(self) -> None:
        self.drop()
        shutil.rmtree(self.folder, ignore_errors=True)

    def set(self, **aliases: str) -> None:
        """Point each alias at its version directly (the scenario's starting state, not a promotion)."""
        for alias, version in aliases.items():
            self.client.set_registered_model_alias(self.name, alias, version)

    def aliases(self) -> dict[str, str]:
        return dict(self.client.get_registered_model(self.name).aliases)

    def lines(self) -> list[audit.AuditEntry]:
        """The audit lines written through :attr:`record` for this model, oldest first."""
        return [e for e in audit.read(self.audit_wb) if e.model == self.name]
