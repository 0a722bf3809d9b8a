"""Release: turn an instructor source ``labs/NN-slug/lab.ipynb`` into the learner notebook."""

from __future__ import annotations

import copy
import hashlib
from pathlib import Path

import nbformat

from mlops_workbench.labs.format import BEGIN, END, Lab, LabFormatError, has_solution, read_notebook

STUB = 'raise NotImplementedError("Exercise: write your code here, then run check() below.")'
HIDDEN_STUB = (
    'raise NotImplementedError("Exercise: write your code here; a hidden check grades it when the whole '
    'notebook is graded (workbench grade), so there is no check() to run for it.")'
)
EDITABLE_TAGS = {"editable", "parameters"}


def strip_solutions(source: str, where: str = "cell", stub: str = STUB) -> str:
    """Replace each ``# BEGIN SOLUTION`` ... ``# END SOLUTION`` region by a stub at the same indentation."""
    out: list[str] = []
    inside = False
    for number, line in enumerate(source.splitlines(), start=1):
        marker = line.strip()
        if marker.startswith(BEGIN):
            if inside:
                raise LabFormatError(
                    f"{where}, line {number}: a second '{BEGIN}' before '{END}'; close the first region."
                )
            inside = True
            out.append(line[: len(line) - len(line.lstrip())] + stub)
        elif marker.startswith(END):
            if not inside:
                raise LabFormatError(f"{where}, line {number}: '{END}' without a '{BEGIN}' above it.")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise LabFormatError(f"{where}: '{BEGIN}' is never closed; add '{END}' after the solution.")
    return "\n".join(out)


def learner_notebook(lab: Lab) -> nbformat.NotebookNode:
    """The learner version of ``lab``: solutions stubbed, outputs cleared, instructor cells dropped.

    In a student release (``workbench labs release --student``) ``lab.ipynb`` is already the learner version (its
    metadata names the lab): it is returned as it is, so ``Lab.find``, ``check()`` and ``workbench grade`` work there.
    """
    source = read_notebook(lab.source)
    if is_released(source):
        if any(has_solution(cell) for cell in source.cells):
            raise LabFormatError(
                f"{lab.source} is a released learner notebook that still holds a '{BEGIN}' region; "
                "release it again from the instructor source with `workbench labs release`."
            )
        return copy.deepcopy(source)
    nb = copy.deepcopy(source)
    public = {cell_id for check in lab.checks if check.visibility == "public" for cell_id in check.cells}
    cells = []
    for cell in nb.cells:
        tags = cell.metadata.get("tags", [])
        if "instructor" in tags:
            continue
        editable = has_solution(cell) or bool(EDITABLE_TAGS & set(tags))
        if cell.cell_type == "code":
            stub = STUB if cell.get("id") in public else HIDDEN_STUB  # no check("...") to run for hidden-only cells
            cell.source = strip_solutions(cell.source, where=f"{lab.source} cell '{cell.get('id')}'", stub=stub)
            cell.outputs = []
            cell.execution_count = None
        for key in ("execution", "papermill", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
        cell.metadata["workbench"] = {"editable": editable}
        cells.append(cell)
    nb.cells = [header_cell(lab), *cells]
    nb.metadata = {
        "kernelspec": source.metadata["kernelspec"],
        "language_info": {"name": "python"},
        "workbench": {"lab": lab.id, "title": lab.spec.title},
    }
    nbformat.validate(nb)
    return nb


HEADER_ID = "lab-header"


def is_released(nb: nbformat.NotebookNode) -> bool:
    """Whether ``nb`` is a learner notebook made by :func:`learner_notebook` (instructor sources name no lab)."""
    meta = nb.metadata.get("workbench")
    return isinstance(meta, dict) and isinstance(meta.get("lab"), str)


def header_line(lab: Lab) -> str:
    """``Time: about 40 min · Intermediate · 17 points (pass at 70%)``, from lab.yaml and checks.py."""
    spec = lab.spec
    points = lab.max_score
    shown = f"{points:g} point{'s' if points != 1 else ''}"
    return f"Time: about {spec.minutes} min · {spec.level.capitalize()} · {shown} (pass at {spec.pass_mark:.0%})"


def header_cell(lab: Lab) -> nbformat.NotebookNode:
    """The generated first cell of a learner notebook: the lab's time estimate, level and points."""
    cell: nbformat.NotebookNode = nbformat.v4.new_markdown_cell(f"*{header_line(lab)}*", id=HEADER_ID)
    cell.metadata["workbench"] = {"editable": False, "generated": True}
    return cell


def render(nb: nbformat.NotebookNode) -> str:
    text: str = nbformat.writes(nb)
    return text + "\n"


def digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def release(labs: list[Lab], check: bool = False) -> list[Path]:
    """Write each lab's learner notebook; with ``check``, write nothing and return the stale paths."""
    stale = []
    for lab in labs:
        text = render(learner_notebook(lab))
        path = lab.learner_path
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    return stale


NBVAL_TAG = "nbval-check-output"


def record_outputs(lab: Lab, executed: Path) -> list[str]:
    """Copy the outputs of the cells tagged ``nbval-check-output`` from an executed run into ``lab.source``.

    Those committed outputs are what ``pytest --nbval-lax`` compares a fresh run with (images
    are left out: nbval does not compare them). Every other cell of the source keeps no output.
    Returns the ids of the cells recorded.
    """
    source = read_notebook(lab.source)
    ran = {c.get("id"): c for c in read_notebook(executed).cells}
    tagged = [c.id for c in source.cells if NBVAL_TAG in c.metadata.get("tags", [])]
    missing = [cell_id for cell_id in tagged if not ran.get(cell_id, {}).get("outputs")]
    if missing:
        raise LabFormatError(
            f"{executed} has no outputs for the tagged cells {missing}: run the lab's solution "
            f"to the end first (workbench labs run {lab.id}), then record again."
        )
    for cell in source.cells:
        if cell.cell_type == "code":
            recorded = cell.id in tagged
            cell.outputs = copy.deepcopy(ran[cell.id].outputs) if recorded else []
            # nbval skips unrun cells (no count) and ignores the number itself: 1 marks a recorded cell
            cell.execution_count = 1 if recorded else None
            for out in cell.outputs:
                if "execution_count" in out:
                    out.execution_count = cell.execution_count
                for kind in [k for k in out.get("data", {}) if k.startswith("image/")]:
                    del out.data[kind]  # nbval does not compare images: keep the text, not kilobytes of PNG
    lab.source.write_text(render(source))
    return tagged
