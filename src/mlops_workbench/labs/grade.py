"""Out-of-process grading: execute a submission headless, then run the checks here.

The learner's kernel never sees the checks that grade it, so it cannot rewrite
its grade: the notebook runs in a child process, and the checks run in this
process against the executed notebook, the exported variables and the state
the run left on disk.
"""

from __future__ import annotations

import functools
import secrets
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from typing import Any

import nbformat

from mlops_workbench import paramspec, procs
from mlops_workbench.labs import answers, guard
from mlops_workbench.labs.checks import Check, CheckFailed, Context, workspace_for
from mlops_workbench.labs.format import Lab, LabFormatError, read_notebook
from mlops_workbench.labs.release import learner_notebook, render
from mlops_workbench.labs.report import CheckResult, IntegrityIssue, Report, Status, Timings
from mlops_workbench.labs.run import Execution, execute, truncate
from mlops_workbench.labs.submission import check_integrity, detect_lab, digest, file_digest, normalize_ids
from mlops_workbench.workbench import Workbench


def _blocker(check: Check, execution: Execution, missing: set[str]) -> tuple[Status, str] | None:
    for cell_id in check.cells:
        if cell_id in missing:
            return "blocked", f"Cell '{cell_id}' that this check needs is missing from the notebook; restore it."
        run = execution.cell(cell_id)
        if run is None or run.status == "not-run":
            if execution.status == "timeout":
                return "timeout", f"Cell '{cell_id}' never ran: {execution.message}"
            return "blocked", f"Cell '{cell_id}' never ran ({execution.message or 'an earlier cell stopped the run'})."
        if run.status == "timeout":
            return (
                "timeout",
                f"Cell '{cell_id}' ran past its time limit; make it finish faster (look for endless loops).",
            )
        if run.status == "kernel-died":
            return "blocked", f"The kernel died while running cell '{cell_id}'; remove calls that exit Python."
        if run.status == "error":
            return "blocked", f"Cell '{cell_id}' raised {run.error}; fix that cell first, then rerun."
    return None


def _blocked(check: Check, execution: Execution, missing: set[str]) -> CheckResult | None:
    blocker = _blocker(check, execution, missing)
    if blocker is None:
        return None
    return CheckResult(
        id=check.id,
        description=check.description,
        status=blocker[0],
        score=0.0,
        max_score=check.points,
        visibility=check.visibility,
        message=blocker[1],
    )


def run_check(check: Check, ctx: Context) -> CheckResult:
    """Run one check with its own time limit; any failure becomes a status, never an exception."""
    status: Status
    started = time.monotonic()
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"check-{check.id}")
    future = pool.submit(check.func, ctx)
    try:
        future.result(timeout=check.timeout)
        status, message, score = "passed", "", check.points
    except FutureTimeout:
        status, message, score = "timeout", f"The check took longer than {check.timeout:.0f}s.", 0.0
    except (CheckFailed, AssertionError) as exc:
        status, message, score = "failed", str(exc) or "The check failed.", 0.0
    except Exception as exc:  # noqa: BLE001 - one broken check never stops the others
        status, message, score = "error", f"The check could not run: {type(exc).__name__}: {exc}", 0.0
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    return CheckResult(
        id=check.id,
        description=check.description,
        max_score=check.points,
        visibility=check.visibility,
        status=status,
        score=score,
        message=truncate(message),
        seconds=round(time.monotonic() - started, 3),
    )


CHECK_JOBS = 2
"""Isolated checks run this many at a time. Most of the slow ones wait on processes (pytest, ``dvc repro``), so a
second core grades them in about half the time."""


def run_checks(
    checks: list[Check], ctx: Context, blocked: Callable[[Check], CheckResult | None] = lambda _check: None
) -> list[CheckResult]:
    """Every check's result, in the order given: the isolated checks first, :data:`CHECK_JOBS` side by side, then
    the others one at a time. A check for which ``blocked`` returns a result does not run.

    Isolated checks start longest time limit first: a long check started last would run alone at the end while
    the other worker idles (lab 02's two scenario checks take as long as its other two isolated checks together).
    """
    results = {check.id: result for check in checks if (result := blocked(check)) is not None}
    ready = [check for check in checks if check.id not in results]
    isolated = sorted((check for check in ready if check.isolated), key=lambda check: -check.timeout)
    with ThreadPoolExecutor(max_workers=CHECK_JOBS, thread_name_prefix="isolated-checks") as pool:
        side_by_side = {check.id: pool.submit(run_check, check, ctx) for check in isolated}
        results.update({cid: future.result() for cid, future in side_by_side.items()})
    results.update({check.id: run_check(check, ctx) for check in ready if not check.isolated})
    return [results[check.id] for check in checks]


def answer_violations(lab: Lab, nb: nbformat.NotebookNode, released: nbformat.NotebookNode) -> list[answers.Violation]:
    """The lab's answer functions referenced in the learner-editable code cells of ``nb`` (imports from any cell)."""
    functions = lab.answer_functions
    if not functions:
        return []
    readonly = {c.get("id") for c in released.cells if not c.metadata.get("workbench", {}).get("editable", True)}
    code = {c.get("id"): c.source for c in nb.cells if c.cell_type == "code"}
    return answers.scan(code, functions, editable=[cid for cid in code if cid not in readonly], expand=True)


def give_away(
    results: list[CheckResult], checks: list[Check], violations: list[answers.Violation]
) -> list[CheckResult]:
    """``results`` with 0 points, failed, for every check whose cells belong to an exercise an answer function did."""
    cells = {check.id: set(check.cells) for check in checks}
    out = []
    for result in results:
        hits = [v for v in violations if cells.get(result.id, set()) & set(v.cells)]
        if hits:
            result = result.model_copy(
                update={
                    "status": "failed",
                    "score": 0.0,
                    "message": truncate(" ".join(dict.fromkeys(v.message for v in hits))),
                }
            )
        out.append(result)
    return out


def _failed_dependencies(wb: Workbench, lab: Lab) -> list[str]:
    failed = []
    for dep in lab.spec.depends_on:
        result = wb.layout.results / f"{dep}.json"
        if result.exists() and not Report.model_validate_json(result.read_text()).passed:
            failed.append(dep)
    return failed


def _all_checks(lab: Lab, status: Status, message: str) -> list[CheckResult]:
    return [
        CheckResult(
            id=c.id,
            description=c.description,
            status=status,
            score=0.0,
            max_score=c.points,
            visibility=c.visibility,
            message=message,
        )
        for c in lab.checks
    ]


def fresh_workbench(wb: Workbench, out_dir: Path) -> Workbench:
    """``wb`` with a new, empty state folder ``<out_dir>/home``: what a grading run gets unless it is given one."""
    home = Path(out_dir).resolve() / "home"
    shutil.rmtree(home, ignore_errors=True)
    return wb.at(home)


def grade(
    wb: Workbench,
    submission: Path,
    out_dir: Path,
    lab: Lab | None = None,
    *,
    parameters: dict[str, Any] | None = None,
    progress: bool = False,
    seed: int | None = None,
) -> Report:
    """Grade one notebook with the state folder of ``wb`` (:func:`fresh_workbench` gives a new, empty one).

    ``seed`` picks the hidden scenarios the checks generate (:meth:`Context.rng`); a fresh one is drawn when it
    is None. It is recorded in the report, so ``workbench grade --seed N`` replays the same scenarios.

    Writes ``executed.ipynb`` and ``report.json`` to ``out_dir`` and a copy of
    the report to ``<home>/results/<lab>.json`` (read by labs that depend on this one).
    """
    started = time.monotonic()
    submission = Path(submission).resolve()
    out_dir = Path(out_dir).resolve()
    out_dir.mkdir(parents=True, exist_ok=True)
    lab = lab or detect_lab(submission)
    seed = secrets.randbelow(1_000_000) if seed is None else seed
    released_text = render(learner_notebook(lab))
    sha = file_digest(submission)
    common = functools.partial(
        Report,
        lab=lab.id,
        title=lab.spec.title,
        submission=str(submission),
        submission_sha256=sha,
        released_sha256=digest(released_text.encode()),
        max_score=lab.max_score,
        pass_mark=lab.spec.pass_mark,
        seed=seed,
    )
    try:
        nb = read_notebook(submission)
    except LabFormatError as exc:
        return _finish(
            wb,
            common(score=0.0, passed=False, error=str(exc), checks=_all_checks(lab, "error", str(exc))),
            out_dir,
            started,
        )
    blocked_by = _failed_dependencies(wb, lab)
    if blocked_by:
        message = f"Lab {', '.join(blocked_by)} must pass first; grade it again after fixing it."
        return _finish(
            wb,
            common(score=0.0, passed=False, error=message, checks=_all_checks(lab, "blocked", message)),
            out_dir,
            started,
        )
    raw_ids, added = normalize_ids(submission.read_bytes())  # read_notebook checked its size
    nb.nbformat_minor = max(nb.nbformat_minor, 5)  # cell ids exist from nbformat 4.5
    for cell, cid in zip(nb.cells, raw_ids, strict=True):
        cell["id"] = cid  # nbformat invents random ids for cells without one; keep ours, stable and reported
    released = nbformat.reads(released_text, as_version=4)
    issues, runnable = check_integrity(nb, released, raw_ids)
    issues = added + issues
    violations = answer_violations(lab, runnable, released)
    workdir = workspace_for(wb, lab.id)
    shutil.rmtree(workdir, ignore_errors=True)
    before = [s.name for s in procs.running(wb)]  # e.g. the pipeline's MLflow server, shared by its stages
    checks = lab.checks  # loaded before the notebook runs: it cannot rewrite what grades it
    kept = guard.snapshot(lab.folder, guard.PACKAGE_DIR)
    try:
        execution = execute(
            wb,
            runnable,
            out_dir / "executed.ipynb",
            workdir=workdir,
            parameters=parameters,
            exports=lab.spec.exports,
            cell_timeout=lab.spec.timeouts.cell,
            lab_timeout=lab.spec.timeouts.lab,
            progress=progress,
        )
        executed_at = time.monotonic()
        # before any check imports a module the notebook may have rewritten
        tampered = guard.changes(kept)
        missing = {i.cell for i in issues if i.problem == "deleted"}
        ctx = Context(
            lab=lab.id,
            wb=wb,
            variables=execution.variables,
            params=paramspec.load_params(),
            live=False,
            seed=seed,
        )
        if tampered:
            issues.append(
                IntegrityIssue(
                    cell="",
                    problem="tampered",
                    message=(
                        f"The grader's own files changed while the notebook ran ({', '.join(tampered[:5])}), so no check "
                        "ran and the submission scores 0. Remove the code that writes to the lab folder or the "
                        "mlops_workbench package, put those files back (`git checkout -- FILES`, or reinstall the package) "
                        "and grade again. If you edited them yourself during the grading, just grade again."
                    ),
                )
            )
            results = _all_checks(lab, "failed", issues[-1].message)
        else:
            results = give_away(
                run_checks(checks, ctx, lambda check: _blocked(check, execution, missing)), checks, violations
            )
    finally:
        procs.stop_all(wb, keep=before)  # what the notebook and its checks started
    score = sum(r.score for r in results)
    report = common(
        score=score,
        passed=score >= lab.spec.pass_mark * lab.max_score - 1e-9,
        execution_status=execution.status,
        execution_message=execution.message,
        checks=results,
        cells=execution.cells,
        integrity=issues,
        timings=Timings(
            execution_seconds=round(execution.seconds, 3), checks_seconds=round(time.monotonic() - executed_at, 3)
        ),
    )
    return _finish(wb, report, out_dir, started)


def _finish(wb: Workbench, report: Report, out_dir: Path, started: float) -> Report:
    report.timings.total_seconds = round(time.monotonic() - started, 3)
    text = report.model_dump_json(indent=2)
    (out_dir / "report.json").write_text(text + "\n")
    results = wb.layout.results
    results.mkdir(parents=True, exist_ok=True)
    (results / f"{report.lab}.json").write_text(text + "\n")
    return report
