"""The progress record for people: a terminal table, an HTML page (the launcher's Progress tile) and a notebook cell."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from mlops_workbench import output
from mlops_workbench.labs.progress_record import LabProgress, Progress
from mlops_workbench.labs.render import ICON
from mlops_workbench.workbench import Workbench

STATUS_STYLE = {"passed": "green", "in progress": "yellow", "not started": "bright_black"}


def grade_text(lab: LabProgress) -> str:
    """``4/5 passed``, ``2/5 not passed``, ``5/5 passed (reference run)`` or ``-``."""
    g = lab.grade
    if g is None:
        return "-"
    verdict = "passed" if g.passed else "not passed"
    return f"{g.score:g}/{g.max_score:g} {verdict}" + (" (reference run)" if g.reference else "")


def time_text(lab: LabProgress) -> str:
    """``12 / 10 min``: time spent against the lab's estimate (``-`` when not measured)."""
    minutes = lab.time.minutes
    spent = "-" if minutes is None else "<1" if minutes < 1 else f"{minutes:.0f}"
    return f"{spent} / {lab.time.estimate_minutes} min"


def moment(stamp: str) -> str:
    """``2025-03-01 09:00 UTC`` from a report's ISO 8601 time (as written when it cannot be read)."""
    try:
        return datetime.fromisoformat(stamp).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        return stamp


def over_time(lab: LabProgress) -> bool:
    return lab.time.method == "activity" and (lab.time.minutes or 0) > lab.time.estimate_minutes


def _minutes(seconds: float) -> str:
    return f"{int(seconds) // 60}m{int(seconds) % 60:02d}s"


def short_grade(lab: LabProgress) -> str:
    """``16/20 ✔``, ``2/5 ✘``, ``5/5 ✔ demo`` (a reference run) or ``-``: the terminal's narrow grade column."""
    g = lab.grade
    if g is None:
        return "-"
    mark = "[green]✔[/]" if g.passed else "[red]✘[/]"
    return f"{g.score:g}/{g.max_score:g} {mark}" + (" demo" if g.reference else "")


def table(progress: Progress) -> Table:
    t = Table(title=f"progress in {progress.home}", title_justify="left")
    for column in ("lab", "status", "grade", "time/est.", "next step"):
        t.add_column(column, overflow="fold", no_wrap=column != "next step")
    for lab in progress.labs:
        step = escape(lab.next_step)
        if lab.failing and lab.status == "passed":
            step += f" [dim](points left in: {', '.join(f.id for f in lab.failing)})[/]"
        elif lab.failing:
            first, rest = lab.failing[0], lab.failing[1:]
            step = escape(f"{first.id}: {first.message}") + (
                f" [dim](also failing: {', '.join(f.id for f in rest)})[/]" if rest else ""
            )
        style = "yellow" if over_time(lab) else ""
        t.add_row(
            lab.lab,
            f"[{STATUS_STYLE[lab.status]}]{lab.status}[/]",
            short_grade(lab),
            f"[{style}]{time_text(lab)}[/]" if style else time_text(lab),
            step,
        )
    return t


def drill_table(progress: Progress) -> Table:
    t = Table(
        "drill", "attempts", "result", "checks", "time", "hints", title="drills (best attempt)", title_justify="left"
    )
    for d in progress.drills:
        t.add_row(
            d.drill,
            str(d.attempts),
            "[green]passed[/]" if d.passed else "[red]not yet[/]",
            f"{d.checks_passed}/{d.checks_total}",
            _minutes(d.seconds),
            str(d.hints_used),
        )
    return t


def print_progress(progress: Progress, console: Console | None = None) -> None:
    console = console or output.console()
    console.print(table(progress))
    if progress.drills:
        console.print(drill_table(progress))
    console.print(f"[dim]{progress.note}[/]", soft_wrap=True)
    for problem in progress.problems:
        console.print(f"[yellow]skipped: {problem}[/]", soft_wrap=True)
    where = f"lab {progress.next_lab}: " if progress.next_lab else ""
    console.print(f"[bold]next:[/] {where}{progress.next_step}", soft_wrap=True, highlight=False)


CSS = """
.wb-progress{font-family:system-ui,sans-serif;line-height:1.4}
.wb-progress table{border-collapse:collapse;width:100%}
.wb-progress th,.wb-progress td{border-bottom:1px solid #ddd;padding:.45rem .6rem;text-align:left;vertical-align:top}
.wb-progress th{background:#f6f8fa}
.wb-progress .passed{color:#1a7f37;font-weight:600} .wb-progress .in-progress{color:#9a6700;font-weight:600}
.wb-progress .not-started{color:#666} .wb-progress .over{color:#9a6700;font-weight:600}
.wb-progress .failed{color:#cf222e;font-weight:600} .wb-progress .status{white-space:nowrap}
.wb-progress td:first-child{width:22%} .wb-progress td:last-child{width:38%}
.wb-progress .next{border-left:4px solid #0969da;background:#ddf4ff;padding:.6rem .9rem;margin:.8rem 0}
.wb-progress .note{color:#555} .wb-progress .problem{color:#9a6700}
.wb-progress ul{margin:.2rem 0;padding-left:1.1rem} .wb-progress small{color:#666}
.wb-progress code{background:#f6f8fa;padding:0 .2rem;border-radius:3px}
"""


def text(value: str) -> str:
    """Escaped HTML of a message, its `backticked` commands and names shown as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(value))


def _step_cell(lab: LabProgress) -> str:
    e = html.escape
    if not lab.failing:
        return text(lab.next_step)
    heading = "done; points left in:" if lab.status == "passed" else "failing checks, first one first:"
    items = "".join(
        f"<li><code>{e(f.id)}</code> {ICON.get(f.status, '')} {e(f.status)}"
        f"{' <small>(from check())</small>' if f.seen == 'check()' else ''}: {text(f.message)}</li>"
        for f in lab.failing
    )
    return f"{heading}<ul>{items}</ul>"


def _lab_row(lab: LabProgress) -> str:
    e = html.escape
    status = lab.status.replace(" ", "-")
    grade = e(grade_text(lab))
    if lab.grade is not None:
        verdict = "passed" if lab.grade.passed else "failed"
        grade = f'<span class="{verdict}">{grade}</span><br><small style="white-space:nowrap">graded {e(moment(lab.grade.graded_at))}</small>'
    spent = f'<span class="{"over" if over_time(lab) else ""}">{e(time_text(lab))}</span>'
    if lab.status != "not started" or lab.time.method != "none":
        spent += f"<br><small>{e(lab.time.detail)}</small>"
    return (
        f'<tr data-lab="{e(lab.lab)}"><td><b>{e(lab.lab)}</b><br><small>{e(lab.title)} · {e(lab.level)} · '
        f"{lab.points:g} points, pass at {lab.pass_mark:.0%}</small></td>"
        f'<td class="status {status}">{e(lab.status)}</td><td>{grade}</td><td>{spent}</td>'
        f"<td>{_step_cell(lab)}</td></tr>"
    )


def _drills(progress: Progress) -> str:
    if not progress.drills:
        return ""
    rows = "".join(
        f"<tr><td><b>{html.escape(d.drill)}</b></td><td>{d.attempts}</td>"
        f'<td class="{"passed" if d.passed else "in-progress"}">{"passed" if d.passed else "not yet"}</td>'
        f"<td>{d.checks_passed}/{d.checks_total}</td><td>{_minutes(d.seconds)}</td><td>{d.hints_used}</td>"
        f"<td>{html.escape(moment(d.last_checked_at))}</td></tr>"
        for d in progress.drills
    )
    return (
        "<h3>Drills (best attempt)</h3><table><tr><th>drill</th><th>attempts</th><th>result</th><th>checks</th>"
        f"<th>time</th><th>hints</th><th>last checked</th></tr>{rows}</table>"
    )


def fragment(progress: Progress) -> str:
    """The progress as an HTML block (styles scoped to ``.wb-progress``), for a notebook cell or the page."""
    e = html.escape
    where = f"lab <b>{e(progress.next_lab)}</b>: " if progress.next_lab else ""
    rows = "".join(_lab_row(lab) for lab in progress.labs)
    problems = "".join(f'<p class="problem">skipped: {e(p)}</p>' for p in progress.problems)
    return (
        f'<div class="wb-progress"><style>{CSS}</style>'
        f'<div class="next">Next: {where}{text(progress.next_step)}</div>'
        f'<p class="note">{text(progress.note)}</p>'
        "<table><tr><th>lab</th><th>status</th><th>grade</th><th>time / estimate</th>"
        f"<th>next step</th></tr>{rows}</table>{_drills(progress)}{problems}</div>"
    )


def page(progress: Progress) -> str:
    """A whole page: what the launcher's Progress tile shows (read afresh on every request)."""
    e = html.escape
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Progress · mlops-workbench</title>'
        "<style>body{margin:2rem auto;max-width:80rem;padding:0 1rem}</style></head><body>"
        f'<h1 style="font-family:system-ui,sans-serif">Your progress</h1>{fragment(progress)}'
        f'<p style="font-family:system-ui,sans-serif;color:#666"><small>Read from {e(progress.home)} at '
        f"{e(moment(progress.generated_at))}. Reload the page after a check() or a grading to update it.</small></p>"
        "</body></html>"
    )


def show(wb: Workbench) -> None:
    """Display the learner's progress in a notebook (the last cells of lab 00 call this)."""
    from IPython.display import HTML, display

    from mlops_workbench.labs.progress import build

    display(HTML(fragment(build(wb))))
