"""Many gradings at once: batch grading of submissions and validation of every lab."""

from __future__ import annotations

import re
import tempfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import fresh_workbench, grade
from mlops_workbench.labs.release import learner_notebook, render
from mlops_workbench.labs.render import write_all
from mlops_workbench.labs.report import Report
from mlops_workbench.workbench import Workbench


def _slug(path: Path, index: int) -> str:
    return f"{index:03d}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)[:60]


def report_dir(out_dir: Path, submissions: list[Path], path: Path) -> Path:
    """The folder under ``out_dir`` that holds the reports of ``path`` (one of ``submissions``)."""
    return out_dir / _slug(path, submissions.index(path))


def grade_many(
    wb: Workbench,
    submissions: list[Path],
    out_dir: Path,
    *,
    lab: Lab | None = None,
    jobs: int = 2,
    seed: int | None = None,
    on_done: Callable[[Path, Report], None] | None = None,
) -> dict[Path, Report]:
    """Grade submissions in parallel, each in its own folder and fresh state folder under ``out_dir`` (``wb``'s
    checkout and ports, a state folder of its own).

    A submission that breaks the grader still gets a report (``error`` set),
    so one bad notebook never loses the others' results. ``seed`` (default: a
    fresh one per submission) picks the hidden scenarios; each report records its own.
    """
    results: dict[Path, Report] = {}

    def one(index: int, path: Path) -> Report:
        folder = report_dir(out_dir, submissions, path)
        report = grade(fresh_workbench(wb, folder), path, folder, lab, seed=seed)
        write_all(report, folder)
        return report

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = {pool.submit(one, i, p): p for i, p in enumerate(submissions)}
        for future in as_completed(futures):
            path = futures[future]
            try:
                report = future.result()
            except Exception as exc:  # noqa: BLE001 - recorded as that submission's error
                report = Report(
                    lab=lab.id if lab else "unknown",
                    submission=str(path),
                    score=0.0,
                    max_score=0.0,
                    pass_mark=1.0,
                    passed=False,
                    error=f"{type(exc).__name__}: {exc}",
                    checks=[],
                )
            results[path] = report
            if on_done:
                on_done(path, report)
    return results


@dataclass
class Validation:
    lab: str
    solution: Report
    learner: Report

    @property
    def problems(self) -> list[str]:
        out = []
        if self.solution.score < self.solution.max_score:
            bad = [f"{c.id} ({c.status}: {c.message})" for c in self.solution.checks if c.status != "passed"]
            out.append(
                f"solution scores {self.solution.score:g}/{self.solution.max_score:g}; not passing: {'; '.join(bad)}"
                + (f"; {self.solution.error}" if self.solution.error else "")
            )
        failing = [f"{c.id} ({c.error})" for c in self.solution.cells if c.status == "error"]
        if failing:  # a cell no check grades can still break in front of every learner
            out.append(f"solution cells raise: {'; '.join(failing)}")
        passing = [c.id for c in self.learner.checks if c.status == "passed"]
        if passing:
            out.append(f"learner version passes graded checks it should fail: {', '.join(passing)}")
        return out


def validate(wb: Workbench, lab: Lab, work: Path | None = None) -> Validation:
    """Grade the solution (must score full marks) and the released learner version (must score zero)."""
    work = Path(work or tempfile.mkdtemp(prefix=f"validate-{lab.id}-"))
    learner_path = work / "learner" / f"{lab.id}.ipynb"
    learner_path.parent.mkdir(parents=True, exist_ok=True)
    learner_path.write_text(render(learner_notebook(lab)))
    solution = grade(fresh_workbench(wb, work / "solution"), lab.source, work / "solution", lab)
    learner = grade(fresh_workbench(wb, work / "learner-graded"), learner_path, work / "learner-graded", lab)
    return Validation(lab.id, solution, learner)
