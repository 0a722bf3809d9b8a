"""Render a :class:`Report` for people and for CI: terminal table, HTML, JUnit XML, Gradescope JSON."""

from __future__ import annotations

import html
import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from mlops_workbench import output
from mlops_workbench.labs.report import Report

STYLE = {"passed": "green", "failed": "red", "error": "magenta", "timeout": "yellow", "blocked": "bright_black"}
ICON = {"passed": "✔", "failed": "✘", "error": "!", "timeout": "⏱", "blocked": "⊘"}


def table(report: Report) -> Table:
    verdict = "[green]PASSED[/]" if report.passed else "[red]NOT PASSED[/]"
    t = Table(title=f"{report.lab}: {report.score:g}/{report.max_score:g} points, {verdict}", title_justify="left")
    for col in ("check", "status", "points", "message"):
        t.add_column(col, overflow="fold")
    for c in report.checks:
        name = c.id + (" (hidden)" if c.visibility == "hidden" else "")
        t.add_row(name, f"[{STYLE[c.status]}]{ICON[c.status]} {c.status}[/]", f"{c.score:g}/{c.max_score:g}", c.message)
    return t


def print_report(report: Report, console: Console | None = None) -> None:
    console = console or output.console()
    if report.error:
        console.print(f"[red]{report.lab}: {report.error}[/]")
    for issue in report.integrity:
        console.print(f"[yellow]notebook: {issue.message}[/]")
    console.print(table(report))
    if report.seed is not None:
        console.print(f"hidden scenarios: seed {report.seed} (workbench grade --seed {report.seed} replays them)")


CSS = """<style>
body{font-family:system-ui,sans-serif;margin:2rem;max-width:70rem} table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left;vertical-align:top}
.passed td:nth-child(3){color:#1a7f37} .failed td:nth-child(3){color:#cf222e}
.error td:nth-child(3){color:#8250df} .timeout td:nth-child(3){color:#9a6700} .blocked td:nth-child(3){color:#666}
.skipped td:nth-child(3){color:#9a6700} .error{color:#cf222e}
</style>"""


def to_html(report: Report) -> str:
    """A self-contained feedback page."""
    e = html.escape
    rows = "\n".join(
        f'<tr class="{c.status}"><td>{e(c.id)}{" <em>(hidden)</em>" if c.visibility == "hidden" else ""}</td>'
        f"<td>{e(c.description)}</td><td>{ICON[c.status]} {c.status}</td><td>{c.score:g}/{c.max_score:g}</td>"
        f"<td>{e(c.message)}</td></tr>"
        for c in report.checks
    )
    notes = "".join(f"<li>{e(i.message)}</li>" for i in report.integrity)
    error = f'<p class="error">{e(report.error)}</p>' if report.error else ""
    verdict = "passed" if report.passed else "not passed"
    seed = f", hidden scenarios from seed {report.seed}" if report.seed is not None else ""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{e(report.lab)} feedback</title>
{CSS}</head><body>
<h1>{e(report.title or report.lab)}</h1>
<p><strong>{report.score:g} / {report.max_score:g}</strong> points: {verdict}
(pass mark {report.pass_mark:.0%}); graded {e(report.graded_at)}{seed}.</p>
{error}{f"<h2>Notebook</h2><ul>{notes}</ul>" if notes else ""}
<table><tr><th>check</th><th>what it looks for</th><th>status</th><th>points</th><th>what to do</th></tr>
{rows}
</table></body></html>
"""


def index_html(rows: list[tuple[str, Report | None, str]], took: float) -> str:
    """The pipeline's summary page: one row per lab, ``(lab id, its report or None, why there is none)``, each
    linking to the lab's own feedback page (``<lab>/report.html`` beside this page)."""
    e = html.escape
    lines = []
    for lab, report, why in rows:
        if report is None:
            lines.append(f'<tr class="skipped"><td>{e(lab)}</td><td></td><td>{e(why)}</td><td></td><td></td></tr>')
            continue
        status = "passed" if report.passed else "failed"
        lines.append(
            f'<tr class="{status}"><td><a href="{e(lab)}/report.html">{e(lab)}</a></td><td>{e(report.title)}</td>'
            f"<td>{ICON[status]} {status}</td><td>{report.score:g}/{report.max_score:g}</td>"
            f"<td>{report.timings.total_seconds:.0f} s</td></tr>"
        )
    passed = sum(1 for _, r, _ in rows if r is not None and r.passed)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>lab pipeline</title>
{CSS}</head><body>
<h1>Lab pipeline</h1>
<p><strong>{passed} of {len(rows)}</strong> labs passed in {took:.0f} s. Each lab links to its graded report.</p>
<table><tr><th>lab</th><th>title</th><th>result</th><th>points</th><th>took</th></tr>
{chr(10).join(lines)}
</table></body></html>
"""


def to_junit(report: Report) -> str:
    """JUnit XML: one test case per check (blocked checks are reported as skipped)."""
    counts = report.counts
    suite = ET.Element(
        "testsuite",
        name=report.lab,
        tests=str(len(report.checks)),
        failures=str(counts.get("failed", 0)),
        errors=str(counts.get("error", 0) + counts.get("timeout", 0)),
        skipped=str(counts.get("blocked", 0)),
        time=f"{report.timings.total_seconds:.3f}",
    )
    for c in report.checks:
        case = ET.SubElement(suite, "testcase", classname=report.lab, name=c.id, time=f"{c.seconds:.3f}")
        if c.status == "failed":
            ET.SubElement(case, "failure", message=c.message).text = c.message
        elif c.status in ("error", "timeout"):
            ET.SubElement(case, "error", message=c.message, type=c.status).text = c.message
        elif c.status == "blocked":
            ET.SubElement(case, "skipped", message=c.message)
    ET.indent(suite)
    return ET.tostring(suite, encoding="unicode", xml_declaration=True) + "\n"


def to_gradescope(report: Report) -> dict[str, Any]:
    """Gradescope's autograder ``results.json`` format."""
    return {
        "score": report.score,
        "output": report.error or f"{report.lab}: {report.score:g}/{report.max_score:g}",
        "tests": [
            {
                "name": c.id,
                "score": c.score,
                "max_score": c.max_score,
                "status": "passed" if c.status == "passed" else "failed",
                "output": f"{c.status}: {c.message}".strip(": "),
                "visibility": "visible" if c.visibility == "public" else "after_published",
            }
            for c in report.checks
        ],
    }


def write_all(report: Report, out_dir: Path) -> None:
    """Write report.html, junit.xml and gradescope.json beside report.json."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.html").write_text(to_html(report))
    (out_dir / "junit.xml").write_text(to_junit(report))
    (out_dir / "gradescope.json").write_text(json.dumps(to_gradescope(report), indent=2) + "\n")
