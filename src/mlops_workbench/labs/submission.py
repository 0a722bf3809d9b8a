"""What a submission is before it runs: which lab it belongs to, its fingerprint, and how it differs from the
released notebook (duplicated, deleted or edited read-only cells, cells saved without an id)."""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from pathlib import Path

import nbformat

from mlops_workbench.labs.format import MAX_NOTEBOOK_BYTES, Lab, LabFormatError, notebook_json
from mlops_workbench.labs.report import IntegrityIssue


def digest(data: bytes) -> str:
    """The sha256 of ``data``, in hex."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path) -> str | None:
    """The sha256 of a file read in chunks (of nothing when it is missing); None when it is too big to grade."""
    if not path.is_file():
        return digest(b"")
    if path.stat().st_size > MAX_NOTEBOOK_BYTES:
        return None
    running = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            running.update(chunk)
    return running.hexdigest()


def _declared_lab(path: Path) -> str | None:
    """The lab named in a notebook's metadata (``workbench.lab``); None when the file cannot tell."""
    try:
        _, data = notebook_json(path)
        lab = data["metadata"]["workbench"]["lab"]
    except (LabFormatError, KeyError, TypeError):  # unreadable files are reported by grade()
        return None
    return lab if isinstance(lab, str) else None


def detect_lab(path: Path) -> Lab:
    """The lab a submission belongs to: from its metadata, else from its file name."""
    name = _declared_lab(path)
    for candidate in (name, path.stem, path.parent.name):
        if candidate:
            try:
                return Lab.find(candidate)
            except LabFormatError:
                continue
    raise LabFormatError(f"Cannot tell which lab {path} is for: pass --lab NN, or keep the file name NN-slug.ipynb.")


def check_integrity(
    nb: nbformat.NotebookNode, released: nbformat.NotebookNode, raw_ids: list[str] | None = None
) -> tuple[list[IntegrityIssue], nbformat.NotebookNode]:
    """Compare a submission with the released notebook by cell id.

    ``raw_ids`` are the ids as written in the file (nbformat renames duplicates
    on reading). Returns the issues and the notebook to execute, in which edited
    read-only cells are put back as released (an edit there cannot change the grade).
    """
    issues: list[IntegrityIssue] = []
    ids = Counter(raw_ids if raw_ids is not None else [c.get("id") for c in nb.cells])
    for cell_id, n in ids.items():
        if n > 1:
            issues.append(
                IntegrityIssue(
                    cell=cell_id,
                    problem="duplicated",
                    message=f"Cell '{cell_id}' appears {n} times; delete the copies and keep one.",
                )
            )
    present = set(ids)
    for cell in released.cells:
        cid = cell.get("id")
        if cid not in present and not cell.metadata.get("workbench", {}).get("generated"):  # e.g. the time header
            issues.append(
                IntegrityIssue(
                    cell=cid,
                    problem="deleted",
                    message=f"Cell '{cid}' is missing; copy it back from the released notebook.",
                )
            )
    readonly = {c.get("id"): c for c in released.cells if not c.metadata.get("workbench", {}).get("editable", True)}
    restored = nbformat.from_dict(nb)
    for cell in restored.cells:
        original = readonly.get(cell.get("id"))
        if original is not None and cell.source.strip() != original.source.strip():
            issues.append(
                IntegrityIssue(
                    cell=cell.get("id"),
                    problem="edited-read-only",
                    message=f"Cell '{cell.get('id')}' is read-only and was edited; it was graded as released.",
                )
            )
            cell.source = original.source
    return issues, restored


def normalize_ids(raw: bytes) -> tuple[list[str], list[IntegrityIssue]]:
    """The cell ids as written, with an id made up for every cell saved without one (older editors, scripts).

    Made-up ids (``added-<n>``) cannot match a released cell, so such a cell counts as
    the learner's own addition; each one is reported so the learner sees the edit.
    """
    ids, issues = [], []
    for index, cell in enumerate(json.loads(raw).get("cells", [])):
        cid = cell.get("id") if isinstance(cell, dict) else None
        if not isinstance(cid, str) or not cid:
            cid = f"added-{index}"
            issues.append(
                IntegrityIssue(
                    cell=cid,
                    problem="id-added",
                    message=(
                        f"Cell {index + 1} had no id (an older editor saved it); it was graded as cell '{cid}'. "
                        "Save the notebook with JupyterLab 4 to keep ids."
                    ),
                )
            )
        ids.append(cid)
    return ids, issues
