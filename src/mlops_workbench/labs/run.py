"""Headless execution of a lab notebook in its own workspace, with cell and lab timeouts.

The notebook runs under papermill in a child process (see ``worker.py``) with
``WORKBENCH_HOME`` pointing at the run's state folder. The grader puts one cell
first that, after every cell, exports the lab's declared variables to a file
outside the workspace; everything else is read back from the executed notebook.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any, Literal

import nbformat
from pydantic import BaseModel

from mlops_workbench import procs
from mlops_workbench.labs.format import MAX_NOTEBOOK_BYTES, parameters_cell
from mlops_workbench.procs import RUN_TOKEN_ENV as TOKEN_ENV
from mlops_workbench.workbench import Workbench

EXPORT_CELL_ID = "workbench-export"
MAX_TEXT = 2000

CellStatus = Literal["ok", "error", "timeout", "not-run", "kernel-died"]


class CellRun(BaseModel):
    id: str
    status: CellStatus
    error: str | None = None
    seconds: float | None = None


ExecutionStatus = Literal["completed", "timeout", "kernel-died", "crashed"]


class Execution(BaseModel):
    status: ExecutionStatus
    message: str = ""
    seconds: float
    cells: list[CellRun]
    variables: dict[str, Any] = {}

    def cell(self, cell_id: str) -> CellRun | None:
        return next((c for c in self.cells if c.id == cell_id), None)


def truncate(text: str, limit: int = MAX_TEXT) -> str:
    return text if len(text) <= limit else text[:limit] + f"... [{len(text) - limit} more characters cut]"


def _export_cell(names: list[str], path: Path) -> nbformat.NotebookNode:
    source = f"""\
def _workbench_export(_names, _path):
    import json as _json, math as _math
    def _plain(value, depth=0):
        if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
            value = value.item()
        if value is None or isinstance(value, (bool, int, str)):
            return value
        if isinstance(value, float):
            return value if _math.isfinite(value) else str(value)
        if isinstance(value, (list, tuple)) and depth < 4:
            return [_plain(v, depth + 1) for v in list(value)[:1000]]
        if isinstance(value, dict) and depth < 4:
            return {{str(k): _plain(v, depth + 1) for k, v in list(value.items())[:1000]}}
        return {{"__type__": type(value).__name__, "__repr__": repr(value)[:1000]}}
    _ns = globals()
    with open(_path, "w") as _fh:
        _json.dump({{n: _plain(_ns[n]) for n in _names if n in _ns}}, _fh)
get_ipython().events.register(
    "post_run_cell", lambda _result: _workbench_export({names!r}, {str(path)!r})
)
"""
    cell: nbformat.NotebookNode = nbformat.v4.new_code_cell(source)
    cell.id = EXPORT_CELL_ID
    return cell


def execute(
    wb: Workbench,
    nb: nbformat.NotebookNode,
    output: Path,
    *,
    workdir: Path,
    parameters: dict[str, Any] | None = None,
    exports: list[str] | tuple[str, ...] = (),
    cell_timeout: float = 120,
    lab_timeout: float = 900,
    progress: bool = False,
) -> Execution:
    """Execute ``nb`` headless and return what happened to each cell.

    Never raises for problems in the notebook itself: an endless loop, a dead
    kernel or a crashed run all come back as an :class:`Execution` status.
    """
    output = Path(output).resolve()
    scratch = output.parent / f".run-{uuid.uuid4().hex}"
    scratch.mkdir(parents=True)
    workdir.mkdir(parents=True, exist_ok=True)
    prepared = nbformat.from_dict(json.loads(nbformat.writes(nb)))
    if parameters and parameters_cell(prepared) is None:
        parameters = None  # papermill would only warn; the notebook declares no parameters
    export_file = scratch / f"exports-{uuid.uuid4().hex}.json"
    # Exports are refreshed after every cell, so a kernel that dies later keeps what earlier cells made.
    prepared.cells.insert(0, _export_cell(list(exports), export_file))
    source = scratch / "input.ipynb"
    nbformat.write(prepared, source)
    spec = scratch / "spec.json"
    read_end, write_end = os.pipe()
    spec.write_text(
        json.dumps(
            {
                "input": str(source),
                "output": str(output),
                "parameters": parameters or {},
                "cwd": str(workdir),
                "progress": progress,
                "cell_timeout": cell_timeout,
                "status_fd": write_end,
            }
        )
    )
    token = uuid.uuid4().hex
    env = {
        **os.environ,
        **wb.env(),
        TOKEN_ENV: token,
        "PYTHONUNBUFFERED": "1",
    }
    started = time.monotonic()
    try:
        proc = procs.spawn(
            [sys.executable, "-m", "mlops_workbench.labs.worker", str(spec)],
            cwd=workdir,
            env=env,
            log="inherit" if progress else "discard",
            keep_errors=True,
            pass_fds=(write_end,),
        )
    finally:
        os.close(write_end)  # the worker holds the only writing end: the reader ends when the worker does
    replies: dict[str, dict[str, Any]] = {}
    reader = threading.Thread(target=_read_replies, args=(read_end, replies), daemon=True)
    reader.start()
    try:
        timed_out = proc.wait(timeout=lab_timeout) is None
    finally:
        procs.kill_token(token, proc.pid)
        proc.stop(grace=0)
    seconds = time.monotonic() - started
    reader.join(timeout=10)
    try:
        return _collect(
            prepared, output, export_file, proc.returncode, timed_out, proc.errors, seconds, lab_timeout, replies
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _read_replies(fd: int, replies: dict[str, dict[str, Any]]) -> None:
    """Collect the worker's execute replies, by cell id, until it closes the pipe."""
    with os.fdopen(fd, "r", errors="replace") as stream:
        for line in stream:
            try:
                reply = json.loads(line)
                replies[str(reply["id"])] = reply
            except (ValueError, KeyError, TypeError):
                continue


def _read_executed(output: Path) -> tuple[nbformat.NotebookNode | None, str]:
    """The executed notebook (None when there is none), or None and why it is too big to read."""
    if not output.exists():
        return None, ""
    size = output.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return None, (
            f"The executed notebook is {size / (1 << 20):.0f} MB, over the {MAX_NOTEBOOK_BYTES >> 20} MB "
            "limit: a cell printed or displayed far too much (a whole data set, or a print in a long "
            "loop). Print a summary instead (df.head(), len(rows)); then clear the outputs (Edit > Clear "
            "Outputs of All Cells), save, and submit again."
        )
    return nbformat.read(output, as_version=4), ""


def _collect(
    prepared: nbformat.NotebookNode,
    output: Path,
    export_file: Path,
    code: int | None,
    timed_out: bool,
    stderr: str,
    seconds: float,
    lab_timeout: float,
    replies: dict[str, dict[str, Any]] | None = None,
) -> Execution:
    executed, unreadable = _read_executed(output)
    by_id = {c.get("id"): c for c in (executed.cells if executed else [])}
    cells = []
    for cell in prepared.cells:
        if cell.cell_type != "code" or cell.get("id") == EXPORT_CELL_ID:
            continue
        run = _cell_run(by_id.get(cell.get("id")), cell.get("id"), timed_out)
        cells.append(_as_replied(run, (replies or {}).get(cell.get("id"))))
    variables = json.loads(export_file.read_text()) if export_file.exists() else {}
    status: ExecutionStatus
    if timed_out:
        status, message = (
            "timeout",
            f"The notebook ran longer than the lab's limit of {lab_timeout:.0f}s and was stopped.",
        )
    elif code == 3:
        status, message = (
            "kernel-died",
            "The kernel died (a cell exited the Python process, e.g. os._exit, or ran out of memory).",
        )
    elif unreadable:
        status, message = "crashed", unreadable
    elif code != 0 or executed is None:
        status, message = "crashed", truncate(stderr.strip() or f"the notebook runner exited with code {code}")
    else:
        status, message = "completed", ""
    if unreadable and unreadable not in message:  # e.g. the kernel ran out of memory printing, then died
        message = f"{message} {unreadable}"
    if status in ("kernel-died", "timeout"):
        ran = [c for c in cells if c.status != "not-run"]
        if ran and ran[-1].status == "ok":  # the cell that was running when the run stopped
            ran[-1].status = status if status == "timeout" else "kernel-died"
    return Execution(status=status, message=message, seconds=seconds, cells=cells, variables=variables)


def _cell_run(cell: nbformat.NotebookNode | None, cell_id: str, timed_out: bool) -> CellRun:
    if cell is None:
        return CellRun(id=cell_id, status="not-run")
    meta = cell.metadata.get("papermill", {})
    state = meta.get("status")
    seconds = meta.get("duration")
    if state in (None, "pending") or meta.get("start_time") is None:
        return CellRun(id=cell_id, status="not-run")  # papermill marks unreached cells "completed" without times
    if state == "running":
        return CellRun(id=cell_id, status="timeout" if timed_out else "kernel-died", seconds=seconds)
    for out in cell.get("outputs", []):
        if out.output_type == "error":
            if out.ename == "KeyboardInterrupt":
                return CellRun(
                    id=cell_id, status="timeout", error="the cell exceeded the per-cell time limit", seconds=seconds
                )
            return CellRun(id=cell_id, status="error", error=truncate(f"{out.ename}: {out.evalue}"), seconds=seconds)
    return CellRun(id=cell_id, status="ok", seconds=seconds)


def _as_replied(run: CellRun, reply: dict[str, Any] | None) -> CellRun:
    """The cell's status corrected by its execute reply: an error whose traceback the notebook hid is an error."""
    if reply is None or reply.get("status") != "error" or run.status != "ok":
        return run
    if reply.get("ename") == "KeyboardInterrupt":
        return run.model_copy(update={"status": "timeout", "error": "the cell exceeded the per-cell time limit"})
    error = (
        f"{reply.get('ename')}: {reply.get('evalue')} (its traceback was hidden: the notebook changed how errors show)"
    )
    return run.model_copy(update={"status": "error", "error": truncate(error)})
