"""A live ipywidgets dashboard for a rollout: weights, per-version metrics, fault buttons.

All logic is in plain functions (:func:`summarize`, :func:`table_html`,
:func:`fault_spec`) tested without a browser; :class:`Dashboard` only wires them
to widgets and refreshes them from a background thread.
"""

from __future__ import annotations

import html
from typing import Any

from mlops_workbench.errors import InputError
from mlops_workbench.rollout import events as ev
from mlops_workbench.rollout import state as st
from mlops_workbench.rollout.analysis import MeasurementPhase
from mlops_workbench.rollout.live import Live
from mlops_workbench.serving.faults import Faults
from mlops_workbench.workbench import Workbench

FAULT_KINDS = {
    "error rate (fraction)": "error_rate",
    "added latency (ms)": "latency_ms",
    "crash after N requests": "crash_after",
}


def summarize(events: list[ev.RolloutEvent], state: st.RolloutState | None = None) -> dict[str, Any]:
    """What the dashboard shows, from the event log (and the saved state): weight, phase, latest values."""
    rid = state.id if state else ev.last_rollout(events)
    out: dict[str, Any] = {
        "rollout": rid,
        "phase": state.phase if state else "none",
        "weight": 0.0,
        "candidate": state.candidate if state else None,
        "decision": None,
        "metrics": {},
        "faults": None,
        "waiting": state.waiting if state else None,
    }
    for e in ev.of_rollout(events, rid):
        if isinstance(e, ev.WeightEvent):
            out["weight"] = float(e.canary)
        elif isinstance(e, ev.MeasurementEvent):
            out["metrics"][e.metric] = {
                "phase": e.phase,
                "canary": e.value,
                "stable": e.baseline,
                "threshold": e.threshold,
                "kind": e.kind,
                "message": e.message,
            }
        elif isinstance(e, ev.DecisionEvent):
            out["decision"] = f"{e.decision}: {e.reason}"
        elif isinstance(e, ev.FaultEvent):
            out["faults"] = {"error_rate": e.error_rate, "latency_ms": e.latency_ms, "crash_after": e.crash_after}
    return out


def _fmt(kind: str | None, value: float | None) -> str:
    if value is None:
        return "-"
    if kind == "errorRate":
        return f"{value:.2%}"
    if kind == "latencyP99":
        return f"{value * 1000:.1f} ms"
    return f"{value:.3f}"


def table_html(summary: dict[str, Any]) -> str:
    """An HTML table of the latest measurement per metric (canary, stable, threshold, verdict)."""
    colours = {
        MeasurementPhase.SUCCESSFUL: "#2e7d32",
        MeasurementPhase.FAILED: "#c62828",
        MeasurementPhase.INCONCLUSIVE: "#f9a825",
        MeasurementPhase.ERROR: "#6a1b9a",
    }
    rows = []
    for name, m in summary["metrics"].items():
        colour = colours.get(m["phase"], "#444")
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{_fmt(m['kind'], m['canary'])}</td>"
            f"<td>{_fmt(m['kind'], m['stable'])}</td><td>{_fmt(m['kind'], m['threshold'])}</td>"
            f"<td style='color:{colour}'><b>{m['phase']}</b></td></tr>"
        )
    head = "<tr><th>metric</th><th>canary</th><th>stable</th><th>threshold</th><th>verdict</th></tr>"
    status = (
        f"<p><b>{html.escape(str(summary['phase']))}</b> - candidate {summary['candidate']}, "
        f"canary weight {summary['weight']:g}%"
        + (f"<br>decision: {html.escape(summary['decision'])}" if summary["decision"] else "")
        + (f"<br>waiting: {html.escape(summary['waiting'])}" if summary.get("waiting") else "")
        + "</p>"
    )
    return status + f"<table>{head}{''.join(rows) or '<tr><td colspan=5>no measurement yet</td></tr>'}</table>"


def fault_spec(kind: str, value: float) -> Faults:
    """The :class:`Faults` for one dashboard choice (``error_rate``/``latency_ms``/``crash_after``)."""
    kind = FAULT_KINDS.get(kind, kind)
    if kind == "error_rate":
        return Faults(error_rate=float(value))
    if kind == "latency_ms":
        return Faults(latency_ms=float(value))
    if kind == "crash_after":
        return Faults(crash_after=int(value))
    raise InputError(f"unknown fault '{kind}': choose one of {', '.join(FAULT_KINDS.values())}")


def no_canary_sentence(state: st.RolloutState | None) -> str:
    """Why there is no canary to inject a fault into right now."""
    if state is None:
        return "No rollout has started yet: start one (ops.start(..., background=True)), then inject a fault."
    if state.done:
        return (
            f"Rollout {state.id} already ended ({state.phase}: {state.reason}); its canary is gone. "
            "Start another rollout, then inject a fault while it runs."
        )
    return "The canary takes no traffic yet; wait until the canary weight is above 0, then inject."


def failure_sentence(err: BaseException) -> str:
    """A sentence for a dashboard action that failed (never a bare errno)."""
    from mlops_workbench.serving.client import no_answer

    why = no_answer(err)
    if why == "refused":
        return (
            "The canary or router did not answer (it was stopped, or the rollout ended): check "
            "`workbench rollout status`, start a rollout, then try again."
        )
    if why == "timeout":
        return "The rollout services did not answer in time (the machine may be busy): try again in a moment."
    return f"That did not work: {err}"


class Dashboard(Live):
    """Live view of the rollout in ``wb`` with fault-injection and abort buttons."""

    thread_name = "workbench-dashboard"

    def __init__(self, wb: Workbench, refresh_s: float = 1.0) -> None:
        import ipywidgets as w

        super().__init__(refresh_s)
        self.wb = wb
        self.weight = w.FloatProgress(min=0, max=100, description="canary %")
        self.table = w.HTML()
        self.kind = w.Dropdown(options=list(FAULT_KINDS), description="fault")
        self.value = w.FloatText(value=0.3, description="value")
        self.inject = w.Button(description="Inject into canary", button_style="warning")
        self.abort = w.Button(description="Abort rollout", button_style="danger")
        self.note = w.HTML()
        self.inject.on_click(lambda _: self._do(self._inject))
        self.abort.on_click(lambda _: self._do(self._abort))
        self.widget = w.VBox(
            [self.weight, self.table, w.HBox([self.kind, self.value, self.inject]), self.abort, self.note]
        )

    def _do(self, action: Any) -> None:
        try:
            self.note.value = html.escape(action())
        except Exception as err:  # noqa: BLE001 - show the problem in the dashboard, never crash the kernel
            self.note.value = f"<span style='color:#c62828'>{html.escape(failure_sentence(err))}</span>"

    def _inject(self) -> str:
        from mlops_workbench.rollout import ops

        state = st.load(self.wb)
        if state is None or state.done or state.weight <= 0:
            return no_canary_sentence(state)
        applied = ops.inject_fault(self.wb, fault_spec(self.kind.value, self.value.value))
        return f"injected {applied.model_dump(exclude_defaults=True)}"

    def _abort(self) -> str:
        from mlops_workbench.rollout import ops

        state = ops.abort(self.wb, reason="aborted from the dashboard")
        return f"rollout {state.phase if state else 'none'}"

    def refresh(self) -> dict[str, Any]:
        summary = summarize(ev.read(self.wb), st.load(self.wb))
        self.weight.value = summary["weight"]
        self.table.value = table_html(summary)
        return summary

    def tick(self) -> None:
        try:
            self.refresh()
        except Exception:  # noqa: BLE001 - a torn read is retried on the next tick
            pass
