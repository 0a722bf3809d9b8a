"""Grading overhead and pipeline wall time.

* grading overhead: ``grade()`` of a lab's solution minus a bare papermill run
  of the same notebook (same machine, same run), per notebook;
* pipeline: ``workbench pipeline`` in a fresh copy of the project, cold and
  then as a no-op rerun.

Run: ``python -m benchmarks grading [LAB]`` (default lab 00).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import papermill

from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import fresh_workbench, grade
from mlops_workbench.labs.pipeline import snapshot_project
from mlops_workbench.workbench import Workbench

ROOT = Path(__file__).resolve().parents[1]


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def grading_overhead(lab: Lab, repeats: int = 2) -> tuple[float, float]:
    """Median seconds of (bare papermill run, full grade) for ``lab``'s solution."""
    bare, graded = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as name:
            tmp = Path(name)
            env_home = tmp / "bare-home"
            os.environ["WORKBENCH_HOME"] = str(env_home)
            work = env_home / "workspaces" / lab.id
            work.mkdir(parents=True)
            run_bare = partial(
                papermill.execute_notebook,
                str(lab.source),
                str(tmp / "bare.ipynb"),
                kernel_name="python3",
                cwd=str(work),
                progress_bar=False,
            )
            bare.append(_timed(run_bare))
            out = tmp / "graded"  # grade() in a new, empty state folder <out>/home, as `workbench grade` does
            graded.append(_timed(partial(grade, fresh_workbench(Workbench.from_env(), out), lab.source, out, lab)))
    return sorted(bare)[len(bare) // 2], sorted(graded)[len(graded) // 2]


def pipeline_times() -> tuple[float, float]:
    """Seconds of a cold ``workbench pipeline`` in a fresh copy, then of a no-op rerun."""
    with tempfile.TemporaryDirectory() as tmp:
        env = snapshot_project(ROOT, Path(tmp) / "copy")
        dest = Path(tmp) / "copy"
        workbench = str(Path(sys.executable).parent / "workbench")
        run = lambda: subprocess.run([workbench, "pipeline"], cwd=dest, env=env, capture_output=True, check=True)  # noqa: E731
        return _timed(run), _timed(run)


def main(argv: list[str] | None = None) -> None:
    lab = Lab.find((argv or sys.argv[2:] or ["00"])[0])
    bare, graded = grading_overhead(lab)
    print(
        f"grading {lab.id}: bare papermill {bare:.2f}s, grade {graded:.2f}s, "
        f"overhead {graded - bare:+.2f}s (ratio {graded / bare:.2f}x)"
    )
    cold, noop = pipeline_times()
    print(f"pipeline: cold {cold:.1f}s, no-op rerun {noop:.1f}s (no-op/cold {noop / cold:.3f})")


if __name__ == "__main__":
    main(sys.argv[1:])
