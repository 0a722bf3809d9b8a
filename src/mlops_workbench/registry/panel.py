"""A registry panel for notebooks: versions with metrics, cost, aliases and lineage, promote/rollback buttons.

The logic lives in plain functions (:func:`version_rows`, :func:`rows_html`,
:func:`promote_action`, :func:`rollback_action`), tested without a browser;
:func:`panel` only wires them to ipywidgets.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from datetime import UTC
from typing import Any

from mlops_workbench import paramspec
from mlops_workbench.alias import Alias
from mlops_workbench.errors import WorkbenchError
from mlops_workbench.registry import aliases as registry
from mlops_workbench.registry import gate
from mlops_workbench.workbench import Workbench

LINEAGE_KEYS = ("git.commit", "data.md5", "params.hash")


@dataclass
class VersionRow:
    """One line of the panel: a model version and what is known about it."""

    version: str
    aliases: list[str]
    run_id: str | None
    created: str
    metrics: dict[str, float] = field(default_factory=dict)
    lineage: dict[str, str] = field(default_factory=dict)
    approved_by: str = ""
    approved_for: str = ""
    reason: str = ""
    rolled_back: bool = False
    cost_per_1k: float | None = None
    """Measured cost per 1,000 predictions (tag :data:`~mlops_workbench.registry.gate.COST_TAG`), None if never."""
    currency: str = ""
    latency_ms: float | None = None
    """Mean latency measured with the cost (tag :data:`~mlops_workbench.registry.gate.LATENCY_TAG`), None if never."""

    def latency(self) -> str:
        """``1.8 ms``, or an empty string when it was never measured."""
        return f"{self.latency_ms:.1f} ms" if self.latency_ms is not None else ""

    def cost(self) -> str:
        """``0.0012 USD`` per 1,000 predictions, or an empty string when it was never measured."""
        return f"{self.cost_per_1k:.4g} {self.currency}".strip() if self.cost_per_1k is not None else ""


def version_rows(wb: Workbench, name: str | None = None) -> list[VersionRow]:
    """Every version of ``name``, newest first, with aliases, run metrics, lineage tags and last approval."""
    name = name or paramspec.model_name()
    from datetime import datetime

    c = registry.client(wb)
    aliases = dict(c.get_registered_model(name).aliases) if registry.list_versions(wb, name) else {}
    by_version: dict[str, list[str]] = {}
    for alias, version in aliases.items():
        by_version.setdefault(str(version), []).append(alias)
    rows = []
    for mv in registry.list_versions(wb, name):
        run = c.get_run(mv.run_id) if mv.run_id else None
        tags = dict(run.data.tags) if run else {}
        metrics = {k: round(v, 4) for k, v in (run.data.metrics if run else {}).items()}
        approval = _last_approval(mv.tags)
        if not metrics and approval.get("gate"):
            metrics = json.loads(approval["gate"]).get("candidate", {})
        lineage = {k: tags[k] for k in LINEAGE_KEYS if tags.get(k)}
        if "git.commit" not in lineage and tags.get("mlflow.source.git.commit"):
            lineage["git.commit"] = tags["mlflow.source.git.commit"]
        rows.append(
            VersionRow(
                version=str(mv.version),
                aliases=sorted(by_version.get(str(mv.version), [])),
                run_id=mv.run_id,
                created=datetime.fromtimestamp(mv.creation_timestamp / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S"),
                metrics=metrics,
                lineage=lineage,
                approved_by=approval.get("approver", ""),
                approved_for=approval.get("alias", ""),
                reason=approval.get("reason", ""),
                rolled_back="rolled_back.at" in mv.tags,
                cost_per_1k=gate.measured_cost(mv.tags),
                currency=mv.tags.get(gate.COST_CURRENCY_TAG, ""),
                latency_ms=gate.measured_cost(mv.tags, gate.LATENCY_TAG),
            )
        )
    return rows


def _last_approval(tags: dict[str, str]) -> dict[str, str]:
    """The most recent ``approval.<alias>.*`` record in a version's tags (empty if never approved)."""
    best: dict[str, str] = {}
    for alias in registry.ALIASES:
        at = tags.get(f"approval.{alias}.at")
        if at and at > best.get("at", ""):
            best = {
                "alias": alias,
                "at": at,
                **{k: tags.get(f"approval.{alias}.{k}", "") for k in ("approver", "reason", "gate")},
            }
    return best


def rows_html(rows: list[VersionRow]) -> str:
    """The rows as an HTML table (aliases in bold, rolled-back versions struck through)."""
    head = ["version", "aliases", "metrics", "mean latency", "cost / 1k predictions", "lineage", "last approval"]
    head += ["created", "run"]
    lines = ["<table><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr>"]
    for r in rows:
        version = f"<s>{r.version}</s>" if r.rolled_back else r.version
        cells = [
            version,
            "<b>" + html.escape(", ".join(r.aliases)) + "</b>",
            html.escape(", ".join(f"{k}={v}" for k, v in sorted(r.metrics.items()))),
            html.escape(r.latency()),
            html.escape(r.cost()),
            html.escape(", ".join(f"{k}={v[:8]}" for k, v in r.lineage.items())),
            html.escape(f"{r.approved_for} by {r.approved_by}: {r.reason}" if r.approved_by else ""),
            r.created,
            html.escape((r.run_id or "")[:8]),
        ]
        lines.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    return "\n".join(lines + ["</table>"])


NO_APPROVER = "Type your name in 'approver' first: every approval records who made it. Nothing changed."


def promote_action(
    wb: Workbench,
    name: str,
    version: str | int,
    alias: str,
    approver: str,
    reason: str,
    rules: Any = None,
    rule: Any = None,
) -> tuple[bool, str]:
    """Promote and describe the outcome for the panel: (True, message) or (False, why it was refused).

    ``rules`` are the gate thresholds (None: params.yaml's); ``rule`` is the gate rule that judges with
    them (the learner's ``gate_rule`` function; None: the built-in one).
    """
    if not str(approver or "").strip():
        return False, NO_APPROVER
    try:
        gate = registry.quality_gate(wb, name, version, params=rules, rule=rule) if alias == Alias.PRODUCTION else None
        mv = registry.promote(
            wb, name, version, alias, approver=approver, reason=reason, gate_result=gate, params=rules
        )
    except WorkbenchError as exc:
        return False, str(exc)
    extra = f" ({gate.summary()})" if gate else ""
    return True, f"{name} v{mv.version} is now '{alias}'{extra}."


def rollback_action(wb: Workbench, name: str, approver: str, reason: str) -> tuple[bool, str]:
    """Roll back and describe the outcome for the panel."""
    if not str(approver or "").strip():
        return False, NO_APPROVER
    try:
        mv = registry.rollback(wb, name, approver=approver, reason=reason)
    except WorkbenchError as exc:
        return False, str(exc)
    return True, f"{name} production rolled back to v{mv.version}."


def panel(wb: Workbench, name: str | None = None, rules: Any = None, approver: str = "", rule: Any = None) -> Any:
    """The ipywidgets panel: table, version picker, approver/reason fields, promote and rollback buttons.

    Promote gates with your ``rule`` (the ``gate_rule`` function you wrote; else the built-in one) and
    ``rules`` (thresholds; else params.yaml's), and signs with the ``approver`` field, which starts as
    ``approver`` (empty: the learner types a name).
    """
    name = name or paramspec.model_name()
    import ipywidgets as w

    table, status = w.HTML(), w.HTML()
    version = w.Dropdown(description="version")
    alias = w.Dropdown(options=list(registry.ALIASES), value=Alias.STAGING, description="alias")
    signer = w.Text(description="approver", value=approver, placeholder="your name")
    reason = w.Text(description="reason", placeholder="why this change")
    buttons = [
        w.Button(description=d, button_style=s)
        for d, s in (("Promote", "success"), ("Rollback", "danger"), ("Refresh", ""))
    ]

    def refresh(*_: Any) -> None:
        rows = version_rows(wb, name)
        table.value = rows_html(rows)
        version.options = [r.version for r in rows]

    def report(outcome: tuple[bool, str]) -> None:
        ok, message = outcome
        status.value = f"<span style='color:{'green' if ok else 'crimson'}'>{html.escape(message)}</span>"
        refresh()

    buttons[0].on_click(
        lambda _: report(promote_action(wb, name, version.value, alias.value, signer.value, reason.value, rules, rule))
    )
    buttons[1].on_click(lambda _: report(rollback_action(wb, name, signer.value, reason.value or "rollback")))
    buttons[2].on_click(refresh)
    refresh()
    return w.VBox([table, w.HBox([version, alias]), w.HBox([signer, reason]), w.HBox(buttons), status])
