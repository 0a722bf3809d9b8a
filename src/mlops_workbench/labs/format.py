"""The lab format: ``labs/NN-slug/`` with ``lab.ipynb``, ``checks.py`` and ``lab.yaml``."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import nbformat
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_workbench import safeyaml, settings
from mlops_workbench.errors import InputError
from mlops_workbench.labs.checks import Check, load_checks

MAX_NOTEBOOK_BYTES = 50 << 20
"""Largest notebook file read (50 MB). A lab notebook is well under 1 MB, plots included; more is outputs."""
MAX_OUTPUT_BYTES = 10 << 20
"""Largest single cell output accepted (10 MB), far above any plot or table a lab makes."""
CLEAR_OUTPUTS = "clear the outputs (Edit > Clear Outputs of All Cells in JupyterLab), save, and submit again"
BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
KERNEL = "python3"


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cell: float = Field(120, gt=0, description="seconds one cell may run")
    lab: float = Field(900, gt=0, description="seconds the whole notebook may run")


class AnswerFunction(BaseModel):
    """A package function that does an exercise for the learner: calling or importing it scores 0 there."""

    model_config = ConfigDict(extra="forbid")
    call: str = Field(
        pattern=r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)+$",
        description="dotted path of the function (or module attribute), e.g. mlops_workbench.registry.promote",
    )
    cells: list[str] = Field(min_length=1, description="answer cell ids of the exercise it gives away")
    instead: str = Field(min_length=1, description="what to write instead, naming the library API")


class LabSpec(BaseModel):
    """``lab.yaml``: what a lab teaches and how it is graded."""

    model_config = ConfigDict(extra="forbid")
    title: str
    level: Literal["beginner", "intermediate", "advanced", "interview"]
    objectives: list[str] = Field(min_length=1)
    minutes: int = Field(gt=0, description="estimated time for a learner")
    pass_mark: float = Field(0.7, ge=0, le=1, description="fraction of the points needed to pass")
    depends_on: list[str] = Field(
        default_factory=list, description="lab ids whose state this lab reads; they must pass first"
    )
    exports: list[str] = Field(default_factory=list, description="notebook variables the grader exports for checks")
    timeouts: Timeouts = Field(default_factory=Timeouts)
    run_seconds: int = Field(
        60,
        gt=0,
        description="about how long the reference solution's headless run and grading take on 2 cores: "
        "`workbench pipeline` starts the longest ready labs first, so the last lab to end is a short one",
    )
    answer_functions: list[AnswerFunction] = Field(
        default_factory=list, description="package functions that do an exercise for the learner (see labs/answers.py)"
    )


class LabFormatError(InputError):
    """A lab folder or notebook that does not follow the lab format."""


class Lab:
    """One lab folder. ``Lab.find("01")`` or ``Lab.find("01-ci-basics")``."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.id = self.folder.name

    def __repr__(self) -> str:
        return f"Lab({self.id!r})"

    @classmethod
    def all(cls, root: Path | None = None) -> list[Lab]:
        root = root or settings.project_root() / "labs"
        return [cls(p) for p in sorted(root.iterdir()) if (p / "lab.yaml").is_file()]

    @classmethod
    def find(cls, name: str, root: Path | None = None) -> Lab:
        labs = cls.all(root)
        matches = [lab for lab in labs if lab.id == name or lab.id.split("-")[0] == name.zfill(2)]
        if len(matches) != 1:
            known = ", ".join(lab.id for lab in labs)
            raise LabFormatError(f"No lab called '{name}'. Known labs: {known}.")
        return matches[0]

    @cached_property
    def spec(self) -> LabSpec:
        path = self.folder / "lab.yaml"
        data = safeyaml.load(path, what=f"lab spec {path}", error=LabFormatError) or {}
        try:
            return LabSpec.model_validate(data)
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'lab.yaml'}: {e['msg']}" for e in exc.errors())
            raise LabFormatError(f"{path} is invalid: {problems}") from None

    @cached_property
    def answer_functions(self) -> list[AnswerFunction]:
        """``spec.answer_functions``, each checked: its ``call`` resolves (imported here) and its cells exist."""
        from mlops_workbench.labs.answers import resolve

        entries = self.spec.answer_functions
        ids = {c.get("id") for c in read_notebook(self.source).cells} if entries else set()
        for index, entry in enumerate(entries):
            where = f"{self.folder / 'lab.yaml'}: answer_functions[{index}]"
            try:
                resolve(entry.call)
            except (ImportError, AttributeError) as exc:
                raise LabFormatError(
                    f"{where}.call {entry.call!r} does not resolve ({type(exc).__name__}: {exc}); "
                    "name a function that exists, as module.path.function."
                ) from None
            unknown = [cell for cell in entry.cells if cell not in ids]
            if unknown:
                raise LabFormatError(
                    f"{where}.cells names {unknown}, not cell ids of {self.source}; "
                    f"use the ids of the exercise's answer cells."
                )
        return entries

    @cached_property
    def checks(self) -> list[Check]:
        return load_checks(self.folder / "checks.py")

    @property
    def source(self) -> Path:
        return self.folder / "lab.ipynb"

    @property
    def learner_path(self) -> Path:
        return self.folder.parent.parent / "notebooks" / f"{self.id}.ipynb"

    @property
    def max_score(self) -> float:
        return sum(c.points for c in self.checks)


def _megabytes(size: int) -> str:
    return f"{size / (1 << 20):.1f} MB"


def _notebook_text(path: Path) -> str:
    """The file's text, refused before it is read when it is over :data:`MAX_NOTEBOOK_BYTES`."""
    path = Path(path)
    try:
        size = path.stat().st_size
        with path.open("rb") as handle:
            raw = b"" if size > MAX_NOTEBOOK_BYTES else handle.read(MAX_NOTEBOOK_BYTES + 1)
    except FileNotFoundError:
        raise LabFormatError(f"{path} does not exist.") from None
    except IsADirectoryError:
        raise LabFormatError(f"{path} is a folder: pass the notebook file (.ipynb) inside it.") from None
    if size > MAX_NOTEBOOK_BYTES or len(raw) > MAX_NOTEBOOK_BYTES:
        measured = _megabytes(max(size, len(raw)))
        raise LabFormatError(
            f"{path} is {measured}, over the {_megabytes(MAX_NOTEBOOK_BYTES)} limit for a "
            f"notebook: nearly all of that is cell outputs. To fix it, {CLEAR_OUTPUTS}."
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise LabFormatError(
            f"{path} is not UTF-8 text (byte {exc.start}), so it is no notebook. "
            "Restore it from notebooks/ or undo the last manual edit."
        ) from None


def notebook_json(path: Path) -> tuple[str, dict[str, Any]]:
    """A notebook file's text and its parsed JSON, within :data:`MAX_NOTEBOOK_BYTES`, or :class:`LabFormatError`."""
    text = _notebook_text(path)
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabFormatError(
            f"{path} is not valid notebook JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
            "Restore it from notebooks/ or undo the last manual edit."
        ) from None
    except RecursionError:
        raise LabFormatError(
            f"{path} nests its JSON deeper than any notebook does, so it cannot be read. "
            "Restore it from notebooks/ or undo the last manual edit."
        ) from None
    if not isinstance(data, dict) or not isinstance(data.get("cells", []), list):
        raise LabFormatError(
            f"{path} is JSON but not a Jupyter notebook (no list of cells). "
            "Restore it from notebooks/ or undo the last manual edit."
        )
    return text, data


def check_outputs(data: dict[str, Any], path: Path) -> None:
    """Refuse a notebook (as parsed JSON) with one output over :data:`MAX_OUTPUT_BYTES`, naming its cell."""
    for number, cell in enumerate(data.get("cells") or [], start=1):
        outputs = cell.get("outputs") if isinstance(cell, dict) else None
        for output in outputs if isinstance(outputs, list) else []:
            size = len(json.dumps(output))
            if size > MAX_OUTPUT_BYTES:
                raise LabFormatError(
                    f"{path}: cell {number} (id '{cell.get('id', '?')}') has an output of {_megabytes(size)}, over "
                    f"the {_megabytes(MAX_OUTPUT_BYTES)} limit for one output (a printed data set, or a print in "
                    f"a long loop). Outputs are never graded: {CLEAR_OUTPUTS}."
                )


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a notebook, failing with an error that names the file and the fix.

    Cheap for a normal notebook: its size is checked before it is read, and every output is measured once.
    """
    text, data = notebook_json(path)
    check_outputs(data, path)
    nb: nbformat.NotebookNode
    try:
        nb = nbformat.reads(text, as_version=4)
    except (
        nbformat.reader.NotJSONError,
        nbformat.ValidationError,
        nbformat.NBFormatError,
        AttributeError,
        KeyError,
        TypeError,
    ) as exc:  # the last three: a cell or metadata of the wrong type
        raise LabFormatError(
            f"{path} is not a notebook nbformat can read ({type(exc).__name__}: {exc}). "
            "Restore it from notebooks/ or undo the last manual edit."
        ) from None
    spec = nb.metadata.get("kernelspec")
    kernel = spec.get("name") if isinstance(spec, dict) else None
    if kernel != KERNEL:
        raise LabFormatError(
            f"{path} has kernel {kernel!r} in its metadata; labs run on the '{KERNEL}' kernel. "
            "Choose Kernel > Change Kernel > Python 3 in JupyterLab and save."
        )
    return nb


def parameters_cell(nb: nbformat.NotebookNode) -> nbformat.NotebookNode | None:
    return next((c for c in nb.cells if "parameters" in c.metadata.get("tags", [])), None)


def has_solution(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and BEGIN in cell.source
