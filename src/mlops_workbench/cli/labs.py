"""``workbench labs ...``, ``workbench grade`` and ``workbench pipeline``."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Column, Table

from mlops_workbench import output, settings
from mlops_workbench.errors import EXIT_OK, Failed, verdict
from mlops_workbench.workbench import Workbench

# The lab machinery (nbformat, papermill, jsonschema) loads when a labs command runs: every `workbench` process,
# services included, imports this module.
if TYPE_CHECKING:
    from mlops_workbench.labs.format import Lab

app = typer.Typer(help="List, release, validate and run the graded labs.", no_args_is_help=True)
console = output.console()


def _labs(names: list[str] | None) -> list[Lab]:
    from mlops_workbench.labs.format import Lab

    return [Lab.find(n) for n in names] if names else Lab.all()


@app.command("list")
def list_labs() -> None:
    """Show every lab with its level, time and points."""
    labs = _labs(None)
    t = Table("title", "level", "minutes", "points", "pass mark", "depends on")
    t.columns.insert(0, Column("lab", no_wrap=True, min_width=max((len(lab.id) for lab in labs), default=3)))
    for lab in labs:
        s = lab.spec
        t.add_row(
            lab.id,
            s.title,
            s.level,
            str(s.minutes),
            f"{lab.max_score:g}",
            f"{s.pass_mark:.0%}",
            ", ".join(s.depends_on),
        )
    console.print(t)


@app.command()
def release(
    labs: Annotated[list[str] | None, typer.Argument(help="lab ids (default: all)")] = None,
    check: Annotated[bool, typer.Option("--check", help="write nothing; exit 1 if notebooks/ is stale")] = False,
    student: Annotated[
        Path | None,
        typer.Option(
            "--student",
            help="write a learner tree to this new folder instead: learner notebooks, public checks, the "
            "package, README and Makefile; no solution, no hidden check",
        ),
    ] = None,
) -> None:
    """Write the learner notebooks to notebooks/ (solutions stubbed, outputs cleared), or a student tree."""
    from mlops_workbench.labs.pipeline import write_dvc_yaml
    from mlops_workbench.labs.release import release as release_labs

    if student is not None:
        from mlops_workbench.labs.student import release_student

        if check:
            raise typer.BadParameter("--check compares notebooks/ with labs/; use it without --student.")
        done = release_student(settings.project_root(), student, _labs(labs))
        removed = sum(len(ids) for ids in done.hidden_removed.values())
        console.print(
            f"wrote a student release of {len(done.labs)} labs to {done.root} ({removed} hidden checks "
            "and every solution left out). Grade what students hand in with `workbench grade "
            f"--checks-from {settings.project_root()} NOTEBOOK...`.",
            soft_wrap=True,
        )
        return
    stale = release_labs(_labs(labs), check=check)
    if write_dvc_yaml(_labs(None), check=check):
        stale.append(settings.project_root() / "dvc.yaml")
    for path in stale:
        console.print(f"{'stale' if check else 'wrote'} {path.relative_to(settings.project_root())}")
    if check and stale:
        output.final(
            "[red]notebooks/ is out of date with labs/: run `workbench labs release` and commit the result.[/]"
        )
        raise Failed()
    if not stale:
        console.print("notebooks/ is up to date.")


@app.command()
def record(
    lab: Annotated[str, typer.Argument(help="lab id, e.g. 02")],
    executed: Annotated[
        Path | None, typer.Option(help="an executed run (default: the one `workbench labs run` wrote)")
    ] = None,
) -> None:
    """Record the outputs of the cells tagged nbval-check-output into the lab's source (what nbval compares)."""
    from mlops_workbench.labs.release import record_outputs

    (the_lab,) = _labs([lab])
    executed = executed or Path("build/pipeline") / the_lab.id / "executed.ipynb"
    recorded = record_outputs(the_lab, executed)
    names = ", ".join(recorded) or "none tagged"
    console.print(f"recorded {len(recorded)} cell outputs into {the_lab.source}: {names}")


@app.command()
def validate(labs: Annotated[list[str] | None, typer.Argument(help="lab ids (default: all)")] = None) -> None:
    """Prove each solution scores full marks and each learner version scores zero."""
    wb = Workbench.from_env()
    from mlops_workbench.labs import batch

    failed = False
    for lab in _labs(labs):
        with console.status(f"validating {lab.id} (solution, then learner version)"):
            result = batch.validate(wb, lab)
        if result.problems:
            failed = True
            for problem in result.problems:
                output.final(f"[red]✘ {lab.id}: {problem}[/]")
        else:
            output.final(
                f"[green]✔ {lab.id}: solution {result.solution.score:g}/{result.solution.max_score:g}, "
                f"learner version {result.learner.score:g}[/]"
            )
    verdict(not failed)


@app.command()
def run(
    lab: Annotated[str, typer.Argument(help="lab id, e.g. 01 or 01-ci-basics")],
    out: Annotated[Path, typer.Option(help="folder for the executed notebook and reports")] = Path("build/pipeline"),
    learner: Annotated[bool, typer.Option(help="run the learner version instead of the solution")] = False,
) -> None:
    """Run one lab headless and grade it (a pipeline stage).

    The lab runs in ``<WORKBENCH_HOME>/pipeline/<group>``, the state folder of
    the labs it shares state with, apart from the learner's own: reference
    solutions never make a learner's ``check()`` pass.
    """
    wb = Workbench.from_env()
    from mlops_workbench.labs.grade import grade as grade_one
    from mlops_workbench.labs.pipeline import state_folder
    from mlops_workbench.labs.render import print_report, write_all

    (the_lab,) = _labs([lab])
    source = the_lab.learner_path if learner else the_lab.source
    stage = wb.at(state_folder(wb, the_lab))
    stage.home.mkdir(parents=True, exist_ok=True)
    report = grade_one(stage, source, out / the_lab.id, the_lab, progress=sys.stderr.isatty())
    write_all(report, out / the_lab.id)
    print_report(report, console)
    verdict(report.passed)


def grade(
    notebooks: Annotated[list[Path], typer.Argument(help="submitted notebooks")],
    out: Annotated[Path, typer.Option(help="folder for reports")] = Path("build/grades"),
    lab: Annotated[str | None, typer.Option(help="lab id (default: from each notebook)")] = None,
    jobs: Annotated[int, typer.Option(min=1, help="submissions graded in parallel")] = 2,
    seed: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="seed of the hidden scenarios, to replay a grading "
            "(it is in every report); default: a fresh one per submission",
        ),
    ] = None,
    checks_from: Annotated[
        Path | None,
        typer.Option(
            "--checks-from",
            help="an instructor checkout (a folder holding labs/): grade with its checks, hidden ones "
            "included, and its params.yaml",
        ),
    ] = None,
) -> None:
    """Grade submissions out of process; exit 0 only if every one reaches its pass mark."""
    from mlops_workbench.labs import batch
    from mlops_workbench.labs.render import print_report

    if checks_from is not None:
        from mlops_workbench.labs.student import checks_tree

        # the whole grading (lab lookup, the kernel's start(), params) reads that tree, as if run inside it
        os.environ[settings.PROJECT_ENV] = str(checks_tree(checks_from))
    wb = Workbench.from_env()  # after --checks-from: the kernels get that tree as their checkout
    the_lab = _labs([lab])[0] if lab else None
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console) as progress:
        task = progress.add_task("grading", total=len(notebooks))
        reports = batch.grade_many(
            wb, notebooks, out, lab=the_lab, jobs=jobs, seed=seed, on_done=lambda path, _: progress.advance(task)
        )
    for path in notebooks:
        console.rule(str(path))
        print_report(reports[path], console)
        folder = batch.report_dir(out, notebooks, path)
        console.print(
            f"reports: {folder / 'report.html'} (and report.json, junit.xml, gradescope.json, "
            "executed.ipynb in that folder)",
            soft_wrap=True,
        )
    verdict(all(r.passed for r in reports.values()))


def pipeline(
    force: Annotated[bool, typer.Option(help="rerun every stage even if nothing changed")] = False,
    jobs: Annotated[
        int | None, typer.Option(min=1, help="labs at once (default: one more than the cores, at most 4)")
    ] = None,
) -> None:
    """Run every lab headless with its reference solution, as DVC stages (`dvc repro`); labs that do not depend
    on each other run side by side."""
    from mlops_workbench.labs.pipeline import run_pipeline

    verdict(run_pipeline(force=force, console=console, jobs=jobs) == EXIT_OK)
