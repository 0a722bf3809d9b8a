"""The admin token: one bearer token per state folder guards every server's ``/admin/*`` endpoints.

The token lives in the state folder (``wb.layout.admin_token``), readable by its owner only
(mode 0600). Servers started by the workbench read it at start-up; the workbench's own clients
(:mod:`mlops_workbench.serving.client`) send it as ``Authorization: Bearer <token>``. A server in a
container takes it from ``WORKBENCH_ADMIN_TOKEN`` instead (a Kubernetes Secret, say).
"""

from __future__ import annotations

import hmac
import os
import secrets

from mlops_workbench import settings
from mlops_workbench.errors import InputError
from mlops_workbench.workbench import Workbench

TOKEN_ENV = "WORKBENCH_ADMIN_TOKEN"
SCHEME = "Bearer"


def ensure_token(wb: Workbench) -> str:
    """The state folder's admin token, created (random, mode 0600) the first time it is needed."""
    settings.secret(wb.layout.admin_token, lambda: secrets.token_urlsafe(32))
    return read_token(wb)


def read_token(wb: Workbench) -> str:
    """The admin token of ``wb``, from ``WORKBENCH_ADMIN_TOKEN`` or the state folder's token file."""
    if os.environ.get(TOKEN_ENV):
        return os.environ[TOKEN_ENV]
    path = wb.layout.admin_token
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        raise InputError(
            f"No admin token at {path}: the servers of this state folder were not started by the "
            f"workbench. Start them with `workbench serve` / `workbench router`, or set {TOKEN_ENV}."
        ) from None
    if not token:
        raise InputError(f"The admin token file {path} is empty: delete it and restart the servers.")
    return token


def headers(token: str) -> dict[str, str]:
    """The request headers that carry ``token``."""
    return {"Authorization": f"{SCHEME} {token}"}


def authorized(header: str | bytes | None, token: str) -> bool:
    """Whether an ``Authorization`` header value carries ``token`` (compared in constant time)."""
    if isinstance(header, bytes):
        header = header.decode("latin-1")
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == SCHEME.lower() and hmac.compare_digest(given.strip().encode(), token.encode())


UNAUTHORIZED = (
    "This admin endpoint needs the state folder's bearer token (Authorization: Bearer <token>): "
    "use the workbench's ModelServerClient/RouterClient, or send the token stored in "
    "<state folder>/admin-token."
)
