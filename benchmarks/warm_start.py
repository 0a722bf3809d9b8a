"""CPU to start a workspace stage and a model server: cold, and forked from the warm runner, same run.

A temp state folder gets a workspace (Iris in DVC, the prepare -> train -> evaluate scripts) and a real tracking
server with a registered model. Each stage script runs ``ROUNDS`` times as its own process and as many times
handed to a runner (``procs.warm``); ``workbench serve`` starts ``ROUNDS`` times each way and is stopped once
``/health`` answers. Prints the CPU of one start each way (for a forked stage, the script's process plus the
child it hands over to), the runner's own start, and the ratio; target: a warm start costs at most a third.

Run: ``python -m benchmarks warm_start``.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil

from mlops_workbench import procs, versioning
from mlops_workbench.data import load_iris_frame, save_csv
from mlops_workbench.procs import warm
from mlops_workbench.rollout import prepare
from mlops_workbench.workbench import Workbench

ROUNDS = 3
TARGET_RATIO = 3.0
TICK = os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _stat_cpu(pid: int, waited: bool = False) -> float:
    """CPU seconds of ``pid`` itself, or (``waited``) of the children it has reaped (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()
    first = 13 if waited else 11  # cutime, cstime / utime, stime
    return (int(fields[first]) + int(fields[first + 1])) / TICK


@contextlib.contextmanager
def _using(runner: warm.Runner | None) -> Iterator[None]:
    """``runner`` (or none) in this process's environment, which the stages and services inherit."""
    saved = os.environ.pop(warm.RUNNER_ENV, None)
    os.environ.update(runner.env if runner else {})
    try:
        yield
    finally:
        os.environ.pop(warm.RUNNER_ENV, None)
        if saved is not None:
            os.environ[warm.RUNNER_ENV] = saved


def _stages(ws: versioning.Workspace) -> float:
    """CPU of the three stage scripts' own processes, one round."""
    before = _children_cpu()
    for stage in versioning.PIPELINE:
        subprocess.run([sys.executable, stage.script], cwd=ws.path, check=True, capture_output=True)
    return _children_cpu() - before


def _server_start(wb: Workbench, uri: str) -> float:
    """CPU of one ``workbench serve`` until ``/health`` answers (it and any child), then stopped."""
    from mlops_workbench.serving.server import start_server

    service = start_server(wb, uri, name="bench-warm", timeout=300)
    try:
        return sum(_stat_cpu(p.pid) for p in [psutil.Process(service.pid), *psutil.Process(service.pid).children()])
    finally:
        procs.stop(wb, "bench-warm")


def _logged(runner: warm.Runner, text: str, count: int = 1) -> None:
    """Wait until the runner's log holds ``text`` ``count`` times (it reaps its children within a second)."""
    deadline = time.monotonic() + 120
    while runner.log.read_text().count(text) < count and time.monotonic() < deadline:
        time.sleep(0.1)


def main() -> dict[str, Any]:
    stages = len(versioning.PIPELINE)
    with tempfile.TemporaryDirectory() as tmp:
        wb = Workbench.from_env(Path(tmp) / "home")
        os.environ["WORKBENCH_HOME"] = str(wb.home)
        try:
            ws = versioning.init_workspace(wb, wb.home / "ws")
            versioning.write_params(ws)
            save_csv(load_iris_frame(), ws.path / versioning.DATA)
            versioning.add_pipeline(ws)
            prepare.ensure_versions(wb, "iris", roles=("stable",))
            uri = "models:/iris@production"
            with _using(None):
                cold_stage = sum(_stages(ws) for _ in range(ROUNDS)) / ROUNDS / stages
                cold_serve = sum(_server_start(wb, uri) for _ in range(ROUNDS)) / ROUNDS
            with warm.runner() as runner, _using(runner):
                _logged(runner, "imported")
                start_cost = _stat_cpu(runner.pid)
                clients = sum(_stages(ws) for _ in range(ROUNDS))
                _logged(runner, ": exit ", ROUNDS * stages)
                warm_stage = (clients + _stat_cpu(runner.pid, waited=True)) / ROUNDS / stages
                warm_serve = sum(_server_start(wb, uri) for _ in range(ROUNDS)) / ROUNDS
        finally:
            procs.stop_all(wb)
    out: dict[str, Any] = {
        "stage_cold_cpu_s": round(cold_stage, 3),
        "stage_warm_cpu_s": round(warm_stage, 3),
        "serve_cold_cpu_s": round(cold_serve, 3),
        "serve_warm_cpu_s": round(warm_serve, 3),
        "runner_start_cpu_s": round(start_cost, 2),
        "stage_ratio": round(cold_stage / warm_stage, 2),
        "serve_ratio": round(cold_serve / warm_serve, 2),
    }
    out["target_met"] = min(out["stage_ratio"], out["serve_ratio"]) >= TARGET_RATIO
    print(
        f"a stage: {cold_stage:.2f} CPU-s cold, {warm_stage:.2f} forked ({out['stage_ratio']}x); a model server "
        f"start: {cold_serve:.2f} cold, {warm_serve:.2f} forked ({out['serve_ratio']}x); the runner's own start "
        f"{start_cost:.1f} CPU-s, once; target {TARGET_RATIO}x each: {'met' if out['target_met'] else 'MISSED'}"
    )
    return out


if __name__ == "__main__":
    main()
