"""The lab format: ``labs/NN-slug/`` with ``lab.ipynb``, ``checks.py`` and ``lab.yaml``."""

from __future__ import annotations

import json
from functools import cached_property
from pathlib import Path
from typing import Literal

import nbformat
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from mlops_workbench import settings
from mlops_workbench.errors import InputError
from mlops_workbench.labs.checks import Check, load_checks

BEGIN = "# BEGIN SOLUTION"
END = "# END SOLUTION"
KERNEL = "python3"


class Timeouts(BaseModel):
    model_config = ConfigDict(extra="forbid")
    cell: float = Field(120, gt=0, description="seconds one cell may run")
    lab: float = Field(900, gt=0, description="seconds the whole notebook may run")


class LabSpec(BaseModel):
    """``lab.yaml``: what a lab teaches and how it is graded."""

    model_config = ConfigDict(extra="forbid")
    title: str
    level: Literal["beginner", "intermediate", "advanced", "interview"]
    objectives: list[str] = Field(min_length=1)
    minutes: int = Field(gt=0, description="estimated time for a learner")
    pass_mark: float = Field(0.7, ge=0, le=1, description="fraction of the points needed to pass")
    depends_on: list[str] = Field(default_factory=list, description="lab ids whose state this lab reads; they must pass first")
    exports: list[str] = Field(default_factory=list, description="notebook variables the grader exports for checks")
    timeouts: Timeouts = Field(default_factory=Timeouts)


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
    def all(cls, root: Path | None = None) -> list["Lab"]:
        root = root or settings.project_root() / "labs"
        return [cls(p) for p in sorted(root.iterdir()) if (p / "lab.yaml").is_file()]

    @classmethod
    def find(cls, name: str, root: Path | None = None) -> "Lab":
        labs = cls.all(root)
        matches = [lab for lab in labs if lab.id == name or lab.id.split("-")[0] == name.zfill(2)]
        if len(matches) != 1:
            known = ", ".join(lab.id for lab in labs)
            raise LabFormatError(f"No lab called '{name}'. Known labs: {known}.")
        return matches[0]

    @cached_property
    def spec(self) -> LabSpec:
        path = self.folder / "lab.yaml"
        try:
            return LabSpec.model_validate(yaml.safe_load(path.read_text()) or {})
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'lab.yaml'}: {e['msg']}" for e in exc.errors())
            raise LabFormatError(f"{path} is invalid: {problems}") from None

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


def read_notebook(path: Path) -> nbformat.NotebookNode:
    """Read a notebook, failing with an error that names the file and the fix."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        raise LabFormatError(f"{path} does not exist.") from None
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise LabFormatError(
            f"{path} is not valid notebook JSON (line {exc.lineno}, column {exc.colno}: {exc.msg}). "
            "Restore it from notebooks/ or undo the last manual edit."
        ) from None
    nb = nbformat.reads(text, as_version=4)
    kernel = nb.metadata.get("kernelspec", {}).get("name")
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
