"""The router's admin API: what it answers (:class:`Weights`, :class:`ShadowUpstream`) and the shadow upstream's
body, which the router checks with :func:`parse_target`, its OpenAPI document publishes with the same patterns, and
:class:`~mlops_workbench.serving.client.RouterClient` sends.
"""

from __future__ import annotations

from typing import Any, TypedDict

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_workbench.records import problems

_PORT = r"(6553[0-5]|655[0-2][0-9]|65[0-4][0-9]{2}|6[0-4][0-9]{3}|[1-5][0-9]{4}|[1-9][0-9]{0,3})"
URL_PATTERN = rf"^http://(127\.0\.0\.1|localhost|\[::1\]):{_PORT}$"
"""A shadow is a model server on this machine (``http://127.0.0.1:PORT``): the router never mirrors live requests,
headers included, to another host."""
VERSION_PATTERN = r"^[A-Za-z0-9._-]{1,64}$"


class Weights(TypedDict):
    """The router's split in percent, and the upstream URL of each role."""

    canary: float
    stable: float
    upstreams: dict[str, str | None]


class ShadowUpstream(TypedDict):
    """The shadow upstream as the admin API answers it (``{"shadow": ...}``)."""

    url: str
    version: str


class ShadowTarget(BaseModel):
    """The body of ``PUT /admin/shadow``: where the shadow listens and which model version it serves."""

    model_config = ConfigDict(extra="forbid")
    url: str = Field(pattern=URL_PATTERN, description="the shadow model server, http://127.0.0.1:PORT")
    version: str = Field(pattern=VERSION_PATTERN, description="the model version it serves (the metrics' label)")


def parse_target(data: Any) -> ShadowTarget:
    """``data`` (a parsed JSON body) as a :class:`ShadowTarget`; ValueError naming every bad field."""
    if not isinstance(data, dict):
        raise ValueError('send a JSON object like {"url": "http://127.0.0.1:8123", "version": "7"}')
    try:
        return ShadowTarget.model_validate(data)
    except ValidationError as err:
        raise ValueError(f"not a shadow upstream: {problems(err, ShadowTarget)}") from None
