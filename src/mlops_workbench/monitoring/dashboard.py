"""A live ipywidgets dashboard of one model in production: drift gauges, alerts, the prediction log's traffic.

:func:`view_html` draws a :class:`~mlops_workbench.monitoring.overview.MonitorView` (pure, tested without a
browser); :class:`Dashboard` reads a new view with :func:`~mlops_workbench.monitoring.overview.observe` every few
seconds on a background thread, so a notification reaching the webhook, a gauge crossing its threshold or the
monitor stopping shows up without running the cell again. In a notebook::

    board = dashboard.Dashboard(lab.wb, model_name).start()
    display(board.widget)   # board.stop() ends the refreshing
"""

from __future__ import annotations

from mlops_workbench.monitoring.overview import (
    DEFAULT_THRESHOLD,
    MONITOR_DOWN,
    AlertLine,
    AlertState,
    Gauge,
    MonitorView,
    ServerCounts,
    Traffic,
    observe,
)
from mlops_workbench.rollout.live import AMBER, GREEN, GREY, RED, Live
from mlops_workbench.rollout.live import escape as _e
from mlops_workbench.rollout.live import sentence_html as _code
from mlops_workbench.workbench import Workbench


def _table(head: list[str], rows: list[str], empty: str) -> str:
    cells = "".join(f"<th>{h}</th>" for h in head)
    body = "".join(rows) or f"<tr><td colspan={len(head)}>{_e(empty)}</td></tr>"
    return f"<table><tr>{cells}</tr>{body}</table>"


def _bar(score: float, threshold: float, colour: str) -> str:
    """A horizontal gauge: full at twice the threshold, with a tick at the threshold."""
    full = 2 * threshold if threshold > 0 else 1.0
    width = max(0.0, min(score / full, 1.0)) * 100
    return (
        "<div style='position:relative;width:160px;height:10px;background:#eee'>"
        f"<div style='width:{width:.0f}%;height:10px;background:{colour}'></div>"
        "<div style='position:absolute;left:50%;top:-2px;width:1px;height:14px;background:#000'></div></div>"
    )


def gauges_html(gauges: list[Gauge], threshold: float, scorer_up: bool | None, model: str) -> str:
    if scorer_up is False:
        note = "<p style='color:#c62828'>The drift scorer failed on the last scrape: no gauge is exported.</p>"
    else:
        note = ""
    rows = [
        f"<tr data-feature='{_e(g.feature)}'><td>{_e(g.feature)}</td><td>v{_e(g.version)}</td>"
        f"<td>{g.score:.3f}</td><td>{_bar(g.score, threshold, RED if g.above else GREEN)}</td>"
        f"<td style='color:{RED if g.above else GREEN}'><b>{'above' if g.above else 'below'} {threshold:g}</b></td></tr>"
        for g in gauges
    ]
    empty = f"no drift gauge for {model} (the monitor's scorer watches no version of it)"
    return note + _table(["feature", "version", "drift score", "", "threshold"], rows, empty)


def alerts_html(alerts: list[AlertLine], received: int, last: str | None) -> str:
    colour = {AlertState.FIRING: RED, AlertState.PENDING: AMBER}
    rows = [
        f"<tr data-alert='{_e(a.name)}'><td>{_e(a.name)}</td>"
        f"<td style='color:{colour[a.state]}'><b>{a.state.value}</b></td><td>{_e(a.source.value)}</td>"
        f"<td>{_e(a.detail)}</td></tr>"
        for a in alerts
    ]
    when = f" (last at {_e(last)})" if last else ""
    head = f"<p>webhook: <b data-received='{received}'>{received} notification{'s' * (received != 1)} received</b>{when}</p>"
    return head + _table(["alert", "state", "seen by", "labels"], rows, "no alert pending or firing")


def _ms(value: float | None) -> str:
    return f"{value:.1f} ms" if value is not None else "-"


def traffic_html(t: Traffic, servers: list[ServerCounts]) -> str:
    minutes = f"{t.window_s / 60:g} min"
    if t.accuracy is None:
        accuracy = "no label has arrived yet"
    else:
        accuracy = f"accuracy <b>{t.accuracy:.1%}</b> on {t.labelled} labelled rows"
    line = (
        f"<p>prediction log, last {minutes}: <b>{t.rows}</b> predictions in {t.requests} requests, mean latency "
        f"{_ms(t.mean_latency_ms)} (p95 {_ms(t.p95_latency_ms)}); {accuracy}</p>"
    )
    rows = [
        f"<tr><td>{_e(s.role)}</td><td>v{_e(s.version)}</td><td>{s.requests:.0f}</td>"
        f"<td style='color:{RED if s.errors else GREY}'>"
        f"{'-' if s.error_share is None else f'{s.error_share:.1%}'}</td></tr>"
        for s in servers
    ]
    table = _table(["server", "version", "requests since start", "5xx share"], rows, "no model server serves it")
    return line + table


def view_html(view: MonitorView) -> str:
    """The whole dashboard as HTML."""
    if view.monitor is None:
        status = f"<p style='color:{RED}'><b>{_code(MONITOR_DOWN)}</b></p>"
    else:
        status = f"<p>alerting through <b>{_e(view.alerting)}</b>: {_code(view.reason)}</p>"
    problems = "".join(f"<li>{_code(p)}</li>" for p in view.problems)
    return (
        f"<div class='workbench-monitor'><h4>{_e(view.model)}: monitoring at {_e(view.at)} UTC</h4>{status}"
        f"<h5>input drift</h5>{gauges_html(view.gauges, view.threshold, view.scorer_up, view.model)}"
        f"<h5>alerts</h5>{alerts_html(view.alerts, view.received, view.last_received)}"
        f"<h5>traffic</h5>{traffic_html(view.traffic, view.servers)}"
        + (f"<h5>could not read</h5><ul>{problems}</ul>" if problems else "")
        + "</div>"
    )


class Dashboard(Live):
    """The monitoring of ``model`` in ``wb``, redrawn every ``refresh_s`` seconds from :meth:`start` to :meth:`stop`."""

    thread_name = "workbench-monitor-dashboard"

    def __init__(
        self,
        wb: Workbench,
        model: str,
        refresh_s: float = 2.0,
        window_s: float = 300.0,
        threshold: float = DEFAULT_THRESHOLD,
    ) -> None:
        import ipywidgets as w

        super().__init__(refresh_s)
        self.wb, self.model = wb, model
        self.window_s, self.threshold = window_s, threshold
        self.board = w.HTML()
        self.note = w.HTML()
        self.button = w.Button(description="Refresh now")
        self.button.on_click(lambda _: self.tick())
        self.widget = w.VBox([self.board, self.button, self.note])

    def refresh(self) -> MonitorView:
        view = observe(self.wb, self.model, window_s=self.window_s, threshold=self.threshold)
        self.board.value = view_html(view)
        return view

    def tick(self) -> None:
        try:
            self.refresh()
            self.note.value = ""
        except Exception as err:  # noqa: BLE001 - say it in the dashboard; the next tick tries again
            self.note.value = f"<span style='color:{RED}'>refresh failed: {_e(err)}</span>"
