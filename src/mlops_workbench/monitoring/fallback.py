"""Alerting without the Alertmanager binary: the same rule file, evaluated in the monitor service.

:func:`evaluate` is Prometheus's part, pure: it turns each rule's query result into pending, firing and
resolved alerts, honouring ``for:`` (and ``keep_firing_for:``) against the time it is given. :func:`plan` is
Alertmanager's part, pure too: it groups firing and resolved alerts by alert name and says which group to
notify now (``group_wait``, ``group_interval``, ``repeat_interval`` of :class:`~.alertmanager.Timing`), each as
the version-4 :class:`~.webhook.Notification` Alertmanager would send. :class:`Evaluator` is the thin loop
around them: it queries, delivers to the webhook, and commits a group only once its notification went out.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import numpy as np

from mlops_workbench.monitoring.alertmanager import GROUP_BY, RECEIVER, Timing
from mlops_workbench.monitoring.rules import Rule, seconds
from mlops_workbench.monitoring.webhook import Alert, Notification

ZERO_TIME = datetime(1, 1, 1, tzinfo=UTC)
"""``endsAt`` of a firing alert in Alertmanager's payload."""
_TEMPLATE = re.compile(r"\{\{-?\s*(?:\$labels\.(\w+)|\$value(?:\s*\|\s*printf\s+\"([^\"]*)\")?)\s*-?\}\}")
_FNV_OFFSET, _FNV_PRIME, _SEPARATOR = 14695981039346656037, 1099511628211, 0xFF


@dataclass(frozen=True)
class Sample:
    """One sample of a rule's query result."""

    labels: Mapping[str, str]
    value: float


@dataclass(frozen=True)
class ActiveAlert:
    """An alert of one rule and label set, from its first true evaluation until it has been notified resolved."""

    rule: str
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    value: float
    active_at: float
    last_seen: float
    fired_at: float | None = None
    resolved_at: float | None = None
    missing_since: float | None = None
    """First evaluation its expression no longer returned it (``keep_firing_for`` counts from there)."""

    @property
    def firing(self) -> bool:
        return self.fired_at is not None and self.resolved_at is None


@dataclass(frozen=True)
class Group:
    """What was last notified of one alert group: when, and which (fingerprint, status) pairs."""

    first_seen: float
    last_sent: float | None = None
    sent: frozenset[tuple[str, str]] = frozenset()


@dataclass(frozen=True)
class State:
    alerts: Mapping[str, ActiveAlert] = field(default_factory=dict)
    """Alerts by fingerprint."""
    groups: Mapping[str, Group] = field(default_factory=dict)


@dataclass(frozen=True)
class Send:
    """A change of one group's state, committed once its notification (if any) went out."""

    group_key: str
    group: Group | None
    """The group's state afterwards (None: forgotten, as Alertmanager forgets a group with nothing firing)."""
    notification: Notification | None = None
    drop: frozenset[str] = frozenset()
    """Fingerprints of resolved alerts forgotten afterwards (told of, or resolved before anyone was told)."""


def fingerprint(labels: Mapping[str, str]) -> str:
    """Alertmanager's fingerprint of a label set (FNV-1a 64 over sorted names and values), as 16 hex digits."""
    h = _FNV_OFFSET
    for name in sorted(labels):
        for part in (name, labels[name]):
            for byte in part.encode():
                h = ((h ^ byte) * _FNV_PRIME) % 2**64
            h = ((h ^ _SEPARATOR) * _FNV_PRIME) % 2**64
    return f"{h:016x}"


def go_float(value: float) -> str:
    """``value`` as Go's ``%v`` prints a float64 (what ``{{ $value }}`` shows): shortest digits, in exponent form
    when the exponent is below -4 or 6 and above (``0.35``, ``123456.5``, ``1e+06``, ``2e-05``)."""
    scientific = np.format_float_scientific(value, unique=True, trim="-", exp_digits=2)
    if value != 0 and not -4 <= int(scientific.rsplit("e", 1)[1]) < 6:
        return scientific
    return np.format_float_positional(value, unique=True, trim="-")


def expand(template: str, labels: Mapping[str, str], value: float) -> str:
    """``{{ $labels.name }}``, ``{{ $value }}`` and ``{{ $value | printf "%.2f" }}`` filled in."""

    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return labels.get(match.group(1), "<no value>")
        return match.group(2) % value if match.group(2) else go_float(value)

    return _TEMPLATE.sub(one, template)


def evaluate(
    alerts: Mapping[str, ActiveAlert], rules: list[Rule], results: Mapping[str, list[Sample] | None], now: float
) -> dict[str, ActiveAlert]:
    """The alerts after one evaluation at ``now``; ``results`` maps each alert name to its samples (None: the
    query failed, and that rule's alerts stay as they were)."""
    out = dict(alerts)
    for rule in rules:
        assert rule.alert is not None
        samples = results.get(rule.alert)
        if samples is None:
            continue
        seen: set[str] = set()
        for sample in samples:
            base = {k: v for k, v in sample.labels.items() if k != "__name__"}
            labels = {**base, **{k: expand(v, base, sample.value) for k, v in rule.labels.items()}}
            labels["alertname"] = rule.alert
            fp = fingerprint(labels)
            seen.add(fp)
            notes = {k: expand(v, labels, sample.value) for k, v in rule.annotations.items()}
            prev = out.get(fp)
            if prev is None or prev.resolved_at is not None:
                prev = ActiveAlert(rule.alert, labels, notes, sample.value, active_at=now, last_seen=now)
            alert = replace(prev, annotations=notes, value=sample.value, last_seen=now, missing_since=None)
            if alert.fired_at is None and now - alert.active_at >= rule.for_seconds:
                alert = replace(alert, fired_at=now)
            out[fp] = alert
        keep = seconds(rule.keep_firing_for) if rule.keep_firing_for else 0.0
        for fp, alert in list(out.items()):
            if alert.rule != rule.alert or fp in seen or alert.resolved_at is not None:
                continue
            if alert.fired_at is None:
                del out[fp]  # pending and no longer true: forgotten, never notified
            else:
                since = now if alert.missing_since is None else alert.missing_since
                out[fp] = replace(alert, missing_since=since, resolved_at=now if now - since >= keep else None)
    return out


def group_key(labels: Mapping[str, str]) -> str:
    """Alertmanager's key of the group an alert belongs to (the root route, grouped by :data:`GROUP_BY`)."""
    shown = ", ".join(f'{name}="{labels.get(name, "")}"' for name in sorted(GROUP_BY))
    return "{}:{" + shown + "}"


def plan(state: State, timing: Timing, now: float, external_url: str = "") -> list[Send]:
    """The notifications due at ``now``, one per alert group, as Alertmanager would send them (pure)."""
    members: dict[str, dict[str, ActiveAlert]] = {}
    for fp, alert in state.alerts.items():
        if alert.fired_at is not None:  # pending alerts are Prometheus's business only
            members.setdefault(group_key(alert.labels), {})[fp] = alert
    sends = []
    for key, alerts in sorted(members.items()):
        group = state.groups.get(key) or Group(first_seen=now)
        current = frozenset((fp, "firing" if a.firing else "resolved") for fp, a in alerts.items())
        firing = any(a.firing for a in alerts.values())
        if group.last_sent is None:
            due = now - group.first_seen >= timing.group_wait
        elif current != group.sent:
            due = now - group.last_sent >= timing.group_interval
        else:
            due = firing and now - group.last_sent >= timing.repeat_interval
        resolved = frozenset(fp for fp, a in alerts.items() if not a.firing)
        if group.last_sent is None and not firing:  # resolved before anyone was told: nothing to say
            sends.append(Send(key, None, drop=resolved))
        elif due:
            kept = Group(group.first_seen, now, current) if firing else None
            sends.append(Send(key, kept, _notification(key, alerts, external_url), resolved))
        elif key not in state.groups:  # a new group waits group_wait from now
            sends.append(Send(key, group))
    return sends


def commit(state: State, send: Send) -> State:
    """``state`` once ``send`` is done (its notification delivered, when it has one)."""
    groups = {k: v for k, v in state.groups.items() if k != send.group_key}
    if send.group is not None:
        groups[send.group_key] = send.group
    return State({fp: a for fp, a in state.alerts.items() if fp not in send.drop}, groups)


def _notification(key: str, alerts: Mapping[str, ActiveAlert], external_url: str) -> Notification:
    ordered = sorted(alerts.items(), key=lambda item: (not item[1].firing, sorted(item[1].labels.items())))
    items = [
        Alert(
            status="firing" if a.firing else "resolved",
            labels=dict(a.labels),
            annotations=dict(a.annotations),
            starts_at=datetime.fromtimestamp(a.fired_at or a.active_at, UTC),
            ends_at=ZERO_TIME if a.firing else datetime.fromtimestamp(a.resolved_at or 0.0, UTC),
            generator_url="",
            fingerprint=fp,
        )
        for fp, a in ordered
    ]
    first = items[0]
    return Notification(
        version="4",
        group_key=key,
        truncated_alerts=0,
        status="firing" if any(a.status == "firing" for a in items) else "resolved",
        receiver=RECEIVER,
        group_labels={name: first.labels.get(name, "") for name in GROUP_BY},
        common_labels={k: v for k, v in first.labels.items() if all(a.labels.get(k) == v for a in items)},
        common_annotations={
            k: v for k, v in first.annotations.items() if all(a.annotations.get(k) == v for a in items)
        },
        external_url=external_url,
        alerts=items,
    )


Query = Callable[[str], list[Sample]]
