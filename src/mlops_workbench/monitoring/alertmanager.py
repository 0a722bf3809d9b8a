"""A real Alertmanager (Debian's ``prometheus-alertmanager``) routing lab 07's alerts to the workbench's webhook.

:func:`config` renders one route to one receiver, the monitor's ``POST /alerts`` with ``send_resolved`` and the
state folder's bearer token read from its token file; group waits and intervals are seconds, not minutes, so a
lab sees its alert at once. :func:`up` starts it through :mod:`mlops_workbench.procs` on loopback with
clustering off and its data under ``<home>/monitoring/alertmanager/``; :func:`down` stops it; :func:`alerts`
reads ``/api/v2/alerts``. Without the binary (:func:`binary` is None) the monitor service evaluates the same
rules itself (:mod:`mlops_workbench.monitoring.fallback`) with the same :class:`Timing`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench import procs, tools
from mlops_workbench.errors import ServiceError, ToolMissing
from mlops_workbench.serving import auth
from mlops_workbench.workbench import Workbench

SERVICE = "monitor-alertmanager"
BINARY_ENV = "WORKBENCH_ALERTMANAGER"
RECEIVER = "workbench"
GROUP_BY = ("alertname",)
ALERTS_PATH = "/api/v2/alerts"


@dataclass(frozen=True)
class Timing:
    """How soon a new group is notified, how often a changed one, how often a firing one again (seconds)."""

    group_wait: float = 1.0
    group_interval: float = 2.0
    repeat_interval: float = 60.0

    def route(self) -> dict[str, str]:
        return {
            "group_wait": f"{self.group_wait * 1000:.0f}ms",
            "group_interval": f"{self.group_interval * 1000:.0f}ms",
            "repeat_interval": f"{self.repeat_interval * 1000:.0f}ms",
        }


LAB_TIMING = Timing()
"""Seconds, not Alertmanager's minutes: a lab sees its alert (and its resolution) at once."""


def binary() -> str | None:
    """The alertmanager executable: ``WORKBENCH_ALERTMANAGER`` if set (None when it names no file, which is
    how a test hides it), else ``prometheus-alertmanager`` (Debian's name) or ``alertmanager`` on PATH."""
    if BINARY_ENV in os.environ:
        chosen = os.environ[BINARY_ENV]
        return chosen if chosen and Path(chosen).is_file() else None
    return tools.find("prometheus-alertmanager") or tools.find("alertmanager")


def config(webhook_url: str, token_file: Path, timing: Timing = LAB_TIMING) -> dict[str, Any]:
    """One route (grouped by alert name) to the workbench's webhook, resolved alerts included, token from a file."""
    return {
        "route": {"receiver": RECEIVER, "group_by": list(GROUP_BY), **timing.route()},
        "receivers": [
            {
                "name": RECEIVER,
                "webhook_configs": [
                    {
                        "url": webhook_url,
                        "send_resolved": True,
                        "http_config": {"authorization": {"type": auth.SCHEME, "credentials_file": str(token_file)}},
                    }
                ],
            }
        ],
    }


def write_config(wb: Workbench, webhook_url: str, timing: Timing = LAB_TIMING) -> Path:
    """Write :func:`config` to ``<home>/monitoring/alertmanager/alertmanager.yml`` (the token file is made)."""
    auth.ensure_token(wb)
    folder = wb.layout.alertmanager
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config(webhook_url, wb.layout.admin_token, timing), sort_keys=False))
    return path


def up(
    wb: Workbench, webhook_url: str, port: int | None = None, timing: Timing = LAB_TIMING, timeout: float = 60.0
) -> str:
    """Start Alertmanager (or reuse the running one) notifying ``webhook_url``; returns its URL. Without ``port``
    it listens on its default port (9093 + ``WORKBENCH_PORT_OFFSET``) or the next free one."""
    running = procs.get(wb, SERVICE)
    if running:
        return running.url
    exe = binary()
    if exe is None:
        raise ToolMissing(f"No Alertmanager binary found: {tools.install_hint('prometheus-alertmanager')}.")
    cfg = write_config(wb, webhook_url, timing)

    def start(listen: int) -> procs.Service:
        cmd = [
            exe,
            f"--config.file={cfg}",
            f"--storage.path={cfg.parent / 'data'}",
            f"--web.listen-address=127.0.0.1:{listen}",
            f"--web.external-url=http://127.0.0.1:{listen}",
            "--cluster.listen-address=",  # no gossip port: one instance, loopback only
            "--data.retention=24h",
            "--log.level=warn",
        ]
        return procs.start(wb, SERVICE, cmd, listen, health_path="/-/ready", timeout=timeout)

    return (start(port) if port else procs.on_default_port(wb, "alertmanager", start)).url


def down(wb: Workbench) -> bool:
    """Stop Alertmanager; True if it was running."""
    return procs.stop(wb, SERVICE)


def url(wb: Workbench) -> str | None:
    running = procs.get(wb, SERVICE)
    return running.url if running else None


class AlertState(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    state: str = Field(description="unprocessed, active or suppressed")
    silenced_by: list[str] = Field(alias="silencedBy")
    inhibited_by: list[str] = Field(alias="inhibitedBy")


class Receiver(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str


class ActiveAlert(BaseModel):
    """One alert as Alertmanager's API v2 lists it."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    labels: dict[str, str]
    annotations: dict[str, str]
    fingerprint: str
    starts_at: datetime = Field(alias="startsAt")
    ends_at: datetime = Field(alias="endsAt")
    updated_at: datetime = Field(alias="updatedAt")
    generator_url: str = Field("", alias="generatorURL")
    receivers: list[Receiver]
    status: AlertState


def alerts(base_url: str, timeout: float = 3.0) -> list[ActiveAlert]:
    """The alerts Alertmanager at ``base_url`` holds now (``GET /api/v2/alerts``)."""
    import httpx

    try:
        answer = procs.http().get(base_url.rstrip("/") + ALERTS_PATH, timeout=timeout)
        answer.raise_for_status()
        return [ActiveAlert.model_validate(item) for item in answer.json()]
    except (httpx.HTTPError, ValueError) as err:
        raise ServiceError(f"Alertmanager at {base_url} did not answer {ALERTS_PATH} ({err}); is it running?") from err
