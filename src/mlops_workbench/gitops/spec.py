"""What the deployment repository holds: the desired state (``desired.yaml``) and the sync policy (``app.yaml``).

``desired.yaml`` says which registered versions the local runtime serves, in the words of a Rollout::

    model: iris          # the registered model
    stable: 3            # the version serving the stable share
    canary:              # optional: a second version behind the router
      version: 4
      weight: 10         # percent of traffic to the canary

``app.yaml`` is Argo CD's ``syncPolicy`` in one switch: ``autoSync: true`` applies every new commit
(``workbench gitops watch``) and refuses a manual rollback to an older commit; ``false`` applies only on
``workbench gitops sync``.

Both are read with :mod:`mlops_workbench.safeyaml` into strict models: an unknown field, a wrong type or a
missing one is a :class:`DesiredStateError` that lists every bad field with its fix.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

import yaml
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, model_validator

from mlops_workbench import fielderrors, safeyaml
from mlops_workbench.errors import InputError

DESIRED = "desired.yaml"
APP = "app.yaml"
MAX_BYTES = 64 << 10
"""Largest desired-state file read (64 kB): a real one is a few lines."""


class DesiredStateError(InputError):
    """The deployment repository's desired state or sync policy cannot be applied; nothing was changed live."""


class SyncRefused(InputError):
    """A sync or rollback the sync policy does not allow (Argo CD's FailedPrecondition); nothing was changed."""


def _version_text(value: Any) -> Any:
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


Version = Annotated[
    str,
    BeforeValidator(_version_text),
    Field(pattern=r"^[1-9][0-9]{0,8}$", description="a registered version number, like 3"),
]


class Canary(BaseModel):
    """A second version served behind the router with a share of the traffic."""

    model_config = ConfigDict(extra="forbid")

    version: Version
    weight: float = Field(ge=0, le=100, description="percent of the traffic sent to the canary, 0 to 100")


class DesiredState(BaseModel):
    """What the local runtime must serve."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(min_length=1, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", description="the registered model name")
    stable: Version
    canary: Canary | None = None

    @model_validator(mode="after")
    def _canary_differs(self) -> DesiredState:
        if self.canary is not None and self.canary.version == self.stable:
            raise ValueError(
                f"canary.version {self.stable} is the stable version: a canary is another version; "
                "remove the canary block or name a newer version"
            )
        return self

    def uri(self, version: str) -> str:
        """The pinned model URI a server of ``version`` loads (never an alias: git is the one source)."""
        return f"models:/{self.model}/{version}"

    def versions(self) -> list[str]:
        return [self.stable] + ([self.canary.version] if self.canary else [])


class AppConfig(BaseModel):
    """How the reconciler treats the repository: Argo CD's sync policy."""

    model_config = ConfigDict(extra="forbid")

    auto_sync: bool = Field(
        alias="autoSync",
        description="true: every new commit is applied and a manual rollback is refused; false: sync by hand",
    )


Model = TypeVar("Model", bound=BaseModel)


def parse(text: str, model: type[Model], where: str) -> Model:
    """``text`` (YAML) as ``model``; :class:`DesiredStateError` naming ``where`` and every bad field."""
    return validated(safeyaml.load(text, what=where, max_bytes=MAX_BYTES, error=DesiredStateError), model, where)


def validated(data: Any, model: type[Model], where: str) -> Model:
    """``data`` as ``model``; :class:`DesiredStateError` naming ``where`` and every bad field with its fix."""
    if not isinstance(data, dict):
        raise DesiredStateError(
            f"{where} is not a mapping of key: value lines (it holds {fielderrors.shown(data)}): "
            f"write the fields {', '.join(fielderrors.field_names(model))}."
        )
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = "\n".join(fielderrors.describe(err, model))
        raise DesiredStateError(f"{where} cannot be applied; fix these fields and commit:\n{lines}") from None


def desired_text(state: DesiredState) -> str:
    """``desired.yaml`` for ``state``, with a comment saying what it is."""
    body = yaml.safe_dump(state.model_dump(exclude_none=True), sort_keys=False)
    return "# What the local runtime serves: `workbench gitops sync` applies the commit at HEAD.\n" + body


def app_text(config: AppConfig) -> str:
    flag = "true" if config.auto_sync else "false"
    return (
        "# Sync policy. autoSync: true applies every new commit (`workbench gitops watch`) and refuses\n"
        "# `workbench gitops rollback`; false applies only on `workbench gitops sync`.\n"
        f"autoSync: {flag}\n"
    )
