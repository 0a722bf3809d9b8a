"""A drill report for people: the verdict, the score part by part, the failed checks and, once passed, the cause,
the fixes and the model answer."""

from __future__ import annotations

from mlops_workbench.drills.spec import DrillReport, Score


def score_rows(score: Score) -> list[tuple[str, str, str]]:
    """(part, points, how) for each part of a score, then the total: what the CLI's table and the text show."""
    rows = [
        (
            line.part.value,
            f"{line.points:+.1f}" if line.max_points == 0 else f"{line.points:.1f}/{line.max_points:g}",
            line.detail,
        )
        for line in score.lines
    ]
    return [*rows, ("total", f"{score.total:.1f}/{score.max_points:g}", "")]


def debrief(report: DrillReport) -> str:
    """A few lines: verdict, score, failed checks, and the cause and model answer once passed."""
    from mlops_workbench.drills import catalog

    spec = catalog.get(report.drill).spec
    minutes, seconds = divmod(int(report.seconds), 60)
    verdict = "PASSED" if report.passed else "NOT YET"
    lines = [
        f"{report.title or spec.title()}: {verdict} after {minutes}m{seconds:02d}s (par {spec.minutes}m), "
        f"{report.hints_used} hint(s) taken"
    ]
    if report.score is not None:
        lines += [f"  {part:<11} {points:>11}  {how}" for part, points, how in score_rows(report.score)]
    lines += [f"  FAILED {o.id}{' (guard)' if o.guard else ''}: {o.message}" for o in report.failed]
    if report.passed:
        cause = (
            f" Root cause: {spec.root_cause.value}; fixed by: {', '.join(f.value for f in spec.fixes)}."
            if spec.root_cause
            else ""
        )
        lines += ["", f"It was drill '{spec.name}'.{cause}", "Model answer:", f"  {spec.answer}"]
    else:
        lines += [
            "",
            "Keep going: `workbench drill hint` for a hint (it costs points), `workbench drill check` again when done.",
        ]
    return "\n".join(lines)
