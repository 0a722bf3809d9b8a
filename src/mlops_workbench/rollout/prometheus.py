"""A real Prometheus server (Debian's ``/usr/bin/prometheus``) scraping the router and model servers.

:func:`write_config` renders the scrape config (a short scrape interval, one job
per role: ``router``, and ``model`` targets labelled ``role=stable|canary``);
:func:`up` starts Prometheus through :mod:`mlops_workbench.procs` with its data
under ``<home>/rollout/prometheus/``; :func:`down` stops it. :func:`query` is the one client of its
HTTP API: every PromQL query of the workbench (the analysis, the Argo ``web`` provider, the drill
checks) goes through it.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from mlops_workbench import procs
from mlops_workbench.errors import ServiceError
from mlops_workbench.workbench import Workbench

SERVICE = "rollout-prometheus"
BINARY_ENV = "WORKBENCH_PROMETHEUS"
QUERY_PATH = "/api/v1/query"


class PrometheusError(ServiceError):
    """Prometheus did not answer a query, or answered that it could not run it."""


def query(url: str, promql: str, at: float | None = None, timeout: float = 3.0) -> list[dict[str, Any]]:
    """Run one PromQL instant query (at unix time ``at``, default now) on the Prometheus at ``url``.

    Returns the ``result`` vector of the answer. Raises :class:`PrometheusError` when Prometheus cannot be
    reached, answers something that is not JSON, or rejects the query (the message says which)."""
    import httpx

    params = {"query": promql}
    if at is not None:
        params["time"] = f"{at:.3f}"
    base = url.rstrip("/")
    try:
        body = procs.http().get(base + QUERY_PATH, params=params, timeout=timeout).json()
    except (httpx.HTTPError, ValueError) as err:
        raise PrometheusError(f"Prometheus at {base} did not answer ({err}); is it running?") from err
    if body.get("status") != "success":
        raise PrometheusError(f"Prometheus rejected {promql!r}: {body.get('error', body)}")
    result: list[dict[str, Any]] = body["data"]["result"]
    return result


def binary() -> str | None:
    """Path of the prometheus executable (``WORKBENCH_PROMETHEUS``, PATH, /usr/bin), or None."""
    if os.environ.get(BINARY_ENV):
        return os.environ[BINARY_ENV] if Path(os.environ[BINARY_ENV]).exists() else None
    return shutil.which("prometheus") or ("/usr/bin/prometheus" if Path("/usr/bin/prometheus").exists() else None)


def available() -> bool:
    return binary() is not None


def config(
    router: str | None,
    models: dict[str, str],
    scrape_interval: str = "1s",
    *,
    monitor: str | None = None,
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
) -> dict[str, Any]:
    """The scrape config: ``router`` job plus one ``model`` target per role (``host:port`` strings).

    Lab 07 adds, when given: a ``monitor`` job (the drift metrics), the alert ``rule_files`` Prometheus
    evaluates every ``scrape_interval``, and the ``alertmanager`` (``host:port``) it sends firing alerts to."""
    jobs: list[dict[str, Any]] = []
    if router:
        jobs.append(
            {"job_name": "router", "scrape_timeout": scrape_interval, "static_configs": [{"targets": [router]}]}
        )
    jobs.append(
        {
            "job_name": "model",
            "scrape_timeout": scrape_interval,
            "static_configs": [{"targets": [addr], "labels": {"role": role}} for role, addr in models.items()],
        }
    )
    if monitor:
        jobs.append(
            {"job_name": "monitor", "scrape_timeout": scrape_interval, "static_configs": [{"targets": [monitor]}]}
        )
    out: dict[str, Any] = {"global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval}}
    if rule_files:
        out["rule_files"] = [str(Path(f).resolve()) for f in rule_files]
    if alertmanager:
        out["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
    return {**out, "scrape_configs": jobs}


def write_config(
    wb: Workbench, router: str | None, models: dict[str, str], scrape_interval: str = "1s", **extra: Any
) -> Path:
    """Write :func:`config` (``extra``: its keyword-only lab 07 parts) to ``<home>/rollout/prometheus/``."""
    folder = wb.layout.prometheus
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "prometheus.yml"
    path.write_text(yaml.safe_dump(config(router, models, scrape_interval, **extra), sort_keys=False))
    return path


def up(
    wb: Workbench,
    router: str | None,
    models: dict[str, str],
    port: int | None = None,
    scrape_interval: str = "1s",
    timeout: float = 60.0,
    **extra: Any,
) -> str:
    """Start Prometheus (or reuse the running one) scraping ``router`` and ``models``; returns its URL. Without
    ``port`` it listens on its default port (9090 + ``WORKBENCH_PORT_OFFSET``) or the next free one. ``extra``
    (``monitor``, ``rule_files``, ``alertmanager``: see :func:`config`) is for lab 07's monitoring; to add
    them to a Prometheus that already runs, use :func:`reconfigure`."""
    running = procs.get(wb, SERVICE)
    if running:
        return running.url
    exe = binary()
    if exe is None:
        raise ServiceError(
            "No prometheus binary found: install it (`apt-get install prometheus`) or set "
            f"{BINARY_ENV}; without it the analysis scrapes /metrics directly (metrics source 'direct')."
        )
    cfg = write_config(wb, router, models, scrape_interval, **extra)
    data = cfg.parent / "data"

    def start(listen: int) -> procs.Service:
        cmd = [
            exe,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data}",
            f"--web.listen-address=127.0.0.1:{listen}",
            "--storage.tsdb.retention.time=1d",
            "--log.level=warn",
            "--web.enable-lifecycle",  # POST /-/reload: lab 07 adds its monitor and rules to a running one
            # a firing alert goes (again) to Alertmanager within seconds, not the minute it waits by default
            "--rules.alert.resend-delay=2s",
        ]
        return procs.start(wb, SERVICE, cmd, listen, health_path="/-/ready", timeout=timeout)

    return (start(port) if port else procs.on_default_port(wb, "prometheus", start)).url


def down(wb: Workbench) -> bool:
    """Stop Prometheus; True if it was running."""
    return procs.stop(wb, SERVICE)


def url(wb: Workbench) -> str | None:
    running = procs.get(wb, SERVICE)
    return running.url if running else None


def reconfigure(
    wb: Workbench,
    *,
    monitor: str | None = None,
    rule_files: Sequence[Path] = (),
    alertmanager: str | None = None,
    timeout: float = 10.0,
) -> str:
    """Add lab 07's parts (see :func:`config`) to the running Prometheus's config and reload it; returns its URL.

    The router and model targets it already scrapes are kept (one started without reloads enabled is started
    again, on its port and data). Raises :class:`ServiceError` when no Prometheus
    runs for ``wb``, and :class:`PrometheusError` when it refuses the new config (its answer says why)."""
    import httpx

    running = procs.get(wb, SERVICE)
    if running is None:
        raise ServiceError("Prometheus is not running for this state folder: start it first (`prometheus.up`).")
    path = wb.layout.prometheus / "prometheus.yml"
    current = yaml.safe_load(path.read_text())
    jobs = [job for job in current["scrape_configs"] if job["job_name"] != "monitor"]
    router = next((job["static_configs"][0]["targets"][0] for job in jobs if job["job_name"] == "router"), None)
    models = {
        group["labels"]["role"]: group["targets"][0]
        for job in jobs
        if job["job_name"] == "model"
        for group in job["static_configs"]
    }
    interval = current["global"]["scrape_interval"]
    extra: dict[str, Any] = {"monitor": monitor, "rule_files": rule_files, "alertmanager": alertmanager}
    write_config(wb, router, models, interval, **extra)
    try:
        answer = procs.http().post(running.url + "/-/reload", timeout=timeout)
    except httpx.HTTPError as err:
        raise PrometheusError(f"Prometheus at {running.url} did not answer the reload ({err}).") from err
    if answer.status_code == 403:  # started before reloads were enabled: start it again on its port and data
        down(wb)
        return up(wb, router, models, port=running.port, scrape_interval=interval, **extra)
    if answer.status_code != 200:
        raise PrometheusError(f"Prometheus at {running.url} refused the new config: {answer.text.strip()}")
    return running.url
