"""Subprocess entry point that executes one prepared notebook with papermill.

Run by :func:`mlops_workbench.labs.run.execute` as
``python -m mlops_workbench.labs.worker SPEC.json``; the parent enforces the
per-lab timeout by killing this process and every process it started.

Each cell's execute reply (its status as the kernel protocol reports it, which
a notebook hiding its tracebacks does not change) goes to the parent over a pipe
(``status_fd``) that the kernel does not inherit, one JSON line per cell.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import papermill
from nbclient.exceptions import DeadKernelError
from papermill.exceptions import PapermillExecutionError

if TYPE_CHECKING:
    from nbformat import NotebookNode

EXIT_OK, EXIT_KERNEL_DIED, EXIT_CRASHED = 0, 3, 4


MAX_EVALUE = 500


def _reporter(fd: int | None) -> dict[str, Callable[..., None]]:
    """A hook for nbclient's ``on_cell_executed`` writing each reply's status to ``fd`` (none without one)."""
    if fd is None:
        return {}
    os.set_inheritable(fd, False)  # the kernel, started by papermill, never gets this pipe
    stream = os.fdopen(fd, "w", buffering=1)

    def record(cell: NotebookNode, cell_index: int, execute_reply: dict[str, Any] | None) -> None:
        content = (execute_reply or {}).get("content", {})
        stream.write(
            json.dumps(
                {
                    "id": cell.get("id"),
                    "status": content.get("status"),
                    "ename": str(content.get("ename", ""))[:200],
                    "evalue": str(content.get("evalue", ""))[:MAX_EVALUE],
                }
            )
            + "\n"
        )

    return {"on_cell_executed": record}


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    hooks = _reporter(spec.get("status_fd"))
    try:
        papermill.execute_notebook(
            spec["input"],
            spec["output"],
            parameters=spec["parameters"],
            kernel_name="python3",
            cwd=spec["cwd"],
            progress_bar=spec["progress"],
            execution_timeout=spec["cell_timeout"],
            start_timeout=120,
            allow_errors=True,  # run every cell so each check learns about its own cells
            interrupt_on_timeout=True,  # a slow cell gets KeyboardInterrupt, the rest still run
            **hooks,
        )
    except PapermillExecutionError:
        return EXIT_OK  # cell errors are recorded in the output notebook
    except DeadKernelError as exc:
        print(f"kernel died: {exc}", file=sys.stderr)
        return EXIT_KERNEL_DIED
    except Exception as exc:  # noqa: BLE001 - reported to the grader, never raised further
        print(f"execution crashed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_CRASHED
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
