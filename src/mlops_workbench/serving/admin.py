"""The bodies of the router's admin API that are more than a number: the shadow upstream.

The router checks a ``PUT /admin/shadow`` body with :func:`parse_target`, its OpenAPI document publishes the same
patterns, and :class:`~mlops_workbench.serving.client.RouterClient` sends it.
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
