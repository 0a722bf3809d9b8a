"""``workbench monitor up|down|status``: the monitor service, Alertmanager (or the fallback) and Prometheus, together.

:func:`up` checks the rule file first (nothing starts for a bad one), starts the monitor service, then
Alertmanager routing to its webhook when the binary exists, else the monitor's own evaluation of the same rules;
Prometheus, where installed, scrapes the monitor and the model servers, evaluates the rules and sends to
Alertmanager (a Prometheus the rollout already runs is reconfigured, keeping its targets).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops_workbench import procs, tools
from mlops_workbench.errors import InputError
from mlops_workbench.monitoring import alertmanager, autoretrain, rules, service, watch, webhook
from mlops_workbench.monitoring.alertmanager import LAB_TIMING, Timing
from mlops_workbench.rollout import prometheus
from mlops_workbench.rollout.backends.local import CANARY, ROUTER, STABLE
from mlops_workbench.workbench import Workbench


@dataclass(frozen=True)
class Status:
    """How lab 07's alerting runs now."""

    monitor: str | None
    alerting: str
    """``alertmanager``, ``fallback`` or ``down``."""
    reason: str
    alertmanager: str | None
    prometheus: str | None
    received: int
    """Notifications the webhook has accepted so far."""
    scorer: str | None = None
    """The log scorer's last outcome and why (``--watch``); None for another scorer or none."""
    answer: Mapping[str, Any] = field(default_factory=dict)
    """The monitor's own ``/status`` answer (with the fallback: the rules firing and pending), empty when down."""


def serving_targets(wb: Workbench) -> tuple[str | None, dict[str, str]]:
    """The local rollout's router and model servers that run now, as ``host:port`` (what Prometheus scrapes)."""
    found = {role: procs.get(wb, name) for role, name in (("router", ROUTER), ("stable", STABLE), ("canary", CANARY))}
    addr = {role: f"127.0.0.1:{s.port}" for role, s in found.items() if s is not None}
    return addr.pop("router", None), addr


def fallback_reason() -> str:
    """Why alerts go through the fallback, and how to have Alertmanager instead."""
    return "no Alertmanager binary, so the monitor evaluates the rules itself; for Alertmanager, " + tools.install_hint(
        "prometheus-alertmanager"
    )


def up(
    wb: Workbench,
    *,
    rules_path: Path = rules.REFERENCE,
    scorer: str | None = None,
    on_firing: str | None = None,
    watching: watch.Watch | None = None,
    retrain: autoretrain.RetrainWiring | None = None,
    router: str | None = None,
    models: Mapping[str, str] | None = None,
    timing: Timing = LAB_TIMING,
    interval: float = 1.0,
    port: int | None = None,
) -> Status:
    """Start the monitor, Alertmanager or the fallback, and Prometheus's part; ``router``/``models`` default to
    the local rollout's services that run. ``watching`` has the monitor score the prediction log itself
    (:mod:`~.watch`), ``retrain`` retrain a workspace on each newly firing alert group (:mod:`~.autoretrain`).
    Raises before starting anything for a rule file that the model or ``promtool check rules`` refuses
    (:class:`~.rules.RulesError`), a watch or retrain wiring that cannot work, or a monitor that runs already
    (naming the fix)."""
    _check(rules_path)
    _check_wiring(wb, scorer, on_firing, watching, retrain)
    running = procs.get(wb, service.SERVICE)
    if running is not None:  # its scorer and alert action were fixed when it started: never reuse it silently
        raise InputError(
            f"A monitor already runs at {running.url}, with the scorer and alert action it was started with: "
            "`workbench monitor down` first (it also receives the registry webhooks: `workbench registry watch` "
            "again afterwards), then `workbench monitor up` with the new options."
        )
    if router is None and models is None:
        router, found = serving_targets(wb)
        models = found
    models = dict(models or {})
    has_am = alertmanager.binary() is not None
    scrape = [f"http://{addr}" for addr in ([router] if router else []) + list(models.values())]
    fallback = None if has_am else service.Fallback(rules_path, scrape, interval, timing)
    monitor = service.start(
        wb, port=port, scorer=scorer, on_firing=on_firing, watch=watching, retrain=retrain, fallback=fallback
    )
    am_url = alertmanager.up(wb, monitor.url + webhook.PATH, timing=timing) if has_am else None
    if prometheus.available():
        mon, rule_files = f"127.0.0.1:{monitor.port}", [Path(rules_path).resolve()]
        am = am_url.removeprefix("http://") if am_url else None
        if prometheus.url(wb):
            prometheus.reconfigure(wb, monitor=mon, rule_files=rule_files, alertmanager=am)
        else:
            prometheus.up(wb, router, models, monitor=mon, rule_files=rule_files, alertmanager=am)
    return status(wb)


def _check(path: Path) -> None:
    rules.load(path)
    if tools.find("promtool"):
        result = rules.check(path)
        if not result.ok:
            raise rules.RulesError(f"promtool check rules refused {path}:\n" + "\n".join(result.problems))


def _check_wiring(
    wb: Workbench,
    scorer: str | None,
    on_firing: str | None,
    watching: watch.Watch | None,
    retrain: autoretrain.RetrainWiring | None,
) -> None:
    if scorer and watching is not None:
        raise InputError("Give the monitor one drift scorer: --scorer (a function) or --watch (the log), not both.")
    if on_firing and retrain is not None:
        raise InputError("Give the monitor one alert action: --on-firing (a function) or --retrain-*, not both.")
    if watching is not None:
        watch.check(wb, watching)
    if retrain is not None:
        autoretrain.check(wb, retrain)


def down(wb: Workbench) -> list[str]:
    """Stop the monitor and Alertmanager; Prometheus stops too unless the rollout still uses it (then it only
    forgets the monitor, the rules and Alertmanager). Returns the services stopped."""
    stopped = [name for name in (alertmanager.SERVICE, service.SERVICE) if procs.stop(wb, name)]
    if prometheus.url(wb):
        router, models = serving_targets(wb)
        if router or models:
            prometheus.reconfigure(wb)
        elif prometheus.down(wb):
            stopped.append(prometheus.SERVICE)
    return stopped


def status(wb: Workbench) -> Status:
    """How alerts are routed now, as the monitor itself says (``/status``), and its scorer's last outcome."""
    from mlops_workbench.errors import ServiceError
    from mlops_workbench.serving.client import MonitorClient

    monitor = procs.get(wb, service.SERVICE)
    am_url = alertmanager.url(wb)
    received = len(webhook.read(wb.layout.alerts_received))
    said: dict[str, Any] = {}
    if monitor is not None:
        try:
            said = MonitorClient(monitor.url).status()
        except ServiceError as err:
            said = {"alerting": "down", "error": str(err)}
    scorer = watch.ScorerStatus.model_validate(said["scorer"]) if said.get("scorer") else None
    scoring = f"{scorer.outcome}: {scorer.reason}" if scorer else None
    if monitor is None:
        alerting, reason = "down", "the monitor service is not running: `workbench monitor up` starts it"
    elif said.get("alerting") == "fallback":
        alerting, reason = "fallback", fallback_reason()
    elif said.get("alerting") == "down":
        alerting, reason = (
            "down",
            f"the monitor service does not answer ({said['error']}): `workbench monitor down`, then up",
        )
    elif am_url:
        alerting, reason = "alertmanager", f"Alertmanager at {am_url} notifies {monitor.url}{webhook.PATH}"
    else:
        alerting = "down"
        reason = (
            "the monitor expects Alertmanager, which is not running (it stopped after `workbench monitor up`): "
            "`workbench monitor down`, then `workbench monitor up` starts both again"
        )
    answer = {} if "error" in said else said
    return Status(
        monitor.url if monitor else None, alerting, reason, am_url, prometheus.url(wb), received, scoring, answer
    )
