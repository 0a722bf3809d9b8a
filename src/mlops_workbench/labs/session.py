"""In-notebook feedback: ``lab = start("01-ci-basics")`` then ``check("id")`` and ``check_all()``.

Only public checks run here, against the live kernel's variables and the
state on disk; the grade itself comes from the out-of-process grader.
"""

from __future__ import annotations

import html
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mlops_workbench import output, paramspec
from mlops_workbench.errors import InputError
from mlops_workbench.jupyter.lab import workspace_path
from mlops_workbench.labs import checklog
from mlops_workbench.labs.checks import Check, Context, workspace_for
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import run_check, run_checks
from mlops_workbench.labs.render import ICON
from mlops_workbench.labs.report import CheckResult
from mlops_workbench.workbench import Workbench


def _user_namespace() -> dict[str, Any]:
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            namespace: dict[str, Any] = shell.user_ns
            return namespace
    except ImportError:
        pass
    import __main__

    return vars(__main__)


def _show(results: Sequence[CheckResult]) -> None:
    try:
        from IPython.display import HTML, display

        colours = {"passed": "#1a7f37", "failed": "#cf222e"}
        rows = "".join(
            f'<div style="color:{colours.get(r.status, "#9a6700")}">{ICON[r.status]} <b>{html.escape(r.id)}</b> '
            f"{r.status} ({r.score:g}/{r.max_score:g}) {html.escape(r.message)}</div>"
            for r in results
        )
        display(HTML(rows))
    except ImportError:
        for r in results:
            print(f"{ICON[r.status]} {r.id}: {r.status} ({r.score:g}/{r.max_score:g}) {r.message}")


class Feedback(CheckResult):
    """A check result already shown as a coloured line: a notebook displays nothing more for it."""

    def _ipython_display_(self) -> None:
        pass


class FeedbackList(list[Feedback]):
    """``check_all()``'s results, shown once as coloured lines (no list repr under them)."""

    def _ipython_display_(self) -> None:
        pass


@dataclass
class LabSession:
    """A learner's lab in a live kernel."""

    lab: Lab
    wb: Workbench

    @property
    def home(self) -> Path:
        """The state folder (``wb.home``)."""
        return self.wb.home

    @property
    def workspace(self) -> Path:
        return workspace_for(self.wb, self.lab.id)

    @property
    def public_checks(self) -> list[Check]:
        return [c for c in self.lab.checks if c.visibility == "public"]

    def _context(self) -> Context:
        return Context(
            lab=self.lab.id,
            wb=self.wb,
            variables=dict(_user_namespace()),
            params=paramspec.load_params(),
            live=True,
        )

    def check(self, check_id: str) -> Feedback:
        """Run one public check now and show the result (as a line; the returned result displays nothing more)."""
        known = {c.id: c for c in self.public_checks}
        if check_id not in known:
            raise InputError(f"No public check '{check_id}' in {self.lab.id}; public checks: {', '.join(known)}.")
        with output.quiet():
            result = Feedback(**run_check(known[check_id], self._context()).model_dump())
        checklog.append(self.wb, self.lab.id, "check", [result])
        _show([result])
        return result

    def check_all(self) -> FeedbackList:
        """Run every public check now and show the results (hidden checks run only when graded)."""
        ctx = self._context()
        with output.quiet():
            results = FeedbackList(Feedback(**r.model_dump()) for r in run_checks(self.public_checks, ctx))
        checklog.append(self.wb, self.lab.id, "check", results)
        _show(results)
        return results


# Wide tables (audit log, registry panel, dashboards) wrap their cells instead of scrolling sideways.
TABLE_CSS = (
    "<style>.jp-OutputArea-output table {table-layout: auto; max-width: 100%;} "
    ".jp-OutputArea-output td, .jp-OutputArea-output th {white-space: normal; overflow-wrap: anywhere; "
    "max-width: 32em;}</style>"
)


def _style_tables() -> None:
    try:
        from IPython import get_ipython
        from IPython.display import HTML, display
    except ImportError:
        return
    if get_ipython() is not None:
        display(HTML(TABLE_CSS))


def start(lab_id: str, chdir: bool = True) -> LabSession:
    """Open lab ``lab_id``: create its workspace under the state folder and (by default) work from there."""
    session = LabSession(lab=Lab.find(lab_id), wb=Workbench.from_env())
    session.workspace.mkdir(parents=True, exist_ok=True)
    checklog.append(session.wb, session.lab.id, "start")  # where the progress page's time for this lab begins
    if chdir:
        os.chdir(session.workspace)
    print(
        f"{session.lab.id}: {session.lab.spec.title}\nstate folder: {session.home}\nworkspace:    {session.workspace}"
    )
    shown = workspace_path(session.workspace)
    if shown:  # `make lab` roots JupyterLab at the project and serves hidden folders
        print(f"your files in JupyterLab: File > Open from Path... > {shown}/")
    _style_tables()
    return session
