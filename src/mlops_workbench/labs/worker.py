"""Subprocess entry point that executes one prepared notebook with papermill.

Run by :func:`mlops_workbench.labs.run.execute` as
``python -m mlops_workbench.labs.worker SPEC.json``; the parent enforces the
per-lab timeout by killing this process and every process it started.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import papermill
from nbclient.exceptions import DeadKernelError
from papermill.exceptions import PapermillExecutionError

EXIT_OK, EXIT_KERNEL_DIED, EXIT_CRASHED = 0, 3, 4


def main(spec_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
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
