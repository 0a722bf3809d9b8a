"""The README's two commands on a fresh clone, on a machine without uv.

Clones the committed ``HEAD`` of this checkout into a temporary folder, hides
``uv`` from ``PATH`` (so the Makefile must fetch it from PyPI), then times
``make demo`` (setup included) and ``make test`` (setup already done), the
latter stage by stage (``make lint``, ``make test-suite``: what ``make
test`` runs after setup). Each time is printed
against its targets (issue 30: demo 240 s and 450 CPU-s, test 900 s and
1,600 CPU-s) and against a baseline measured in the same run on the same
machine: a bare ``python -c "import mlflow"`` in the clone's venv, the cost
every kernel, server and CLI call pays at least once. It also counts the tests
that start real notebooks, servers or a browser (markers ``slow``, ``serial``,
``browser``), so a speed-up that drops them shows.

Beside each wall time it prints the CPU time the command's whole process tree
used (user + system; this process adopts orphaned services as a subreaper on
Linux, so a server whose parent exited first still counts) and the least wall
time that CPU work allows on this machine's cores: a command cannot finish
sooner than ``cpu / cores`` however well its work is spread.

Run: ``python -m benchmarks fresh_clone [demo|test]`` (default: both; the test
suite takes a while).
"""

from __future__ import annotations

import ctypes
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from mlops_workbench.procs.children import reaped

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"demo": (240.0, 450.0), "test": (900.0, 1600.0)}
"""Wall seconds and CPU seconds each README command may take on a 2-core machine."""
TEST_STAGES = ("lint", "test-suite")
"""The Makefile targets ``make test`` runs after setup, in order."""
REAL = "slow or serial or browser"
"""The tests that run notebooks or start real servers or a browser."""
HIDDEN = ("uv", "uvx")


def path_without_uv(scratch: Path) -> str:
    """``PATH`` with every folder that holds ``uv`` replaced by a copy of its links minus ``uv``/``uvx``."""
    parts = []
    for i, entry in enumerate(os.environ.get("PATH", "").split(os.pathsep)):
        folder = Path(entry)
        if not any((folder / name).exists() for name in HIDDEN):
            parts.append(entry)
            continue
        shadow = scratch / f"bin{i}"
        shadow.mkdir(parents=True)
        for tool in folder.iterdir():
            if tool.name not in HIDDEN:
                (shadow / tool.name).symlink_to(tool)
        parts.append(str(shadow))
    return os.pathsep.join(parts)


def adopt_orphans() -> bool:
    """Make this process the subreaper of its descendants (Linux): a process whose parent exits first becomes
    this one's child, so its CPU time is counted when it ends. False where the call is not available."""
    try:
        return bool(ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0) == 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        return False


def _reap() -> None:
    """Wait for every adopted descendant that has ended (their CPU time joins RUSAGE_CHILDREN)."""
    for _ in reaped():
        pass


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


LOGS = ROOT / "build" / "benchmarks"
"""Where each timed command's output is kept (``fresh-clone-<command>.log``), e.g. pytest's slowest tests."""


def _timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Run ``cmd``; its wall time and the CPU time of its process tree, in seconds. Its output goes to
    :data:`LOGS`."""
    _reap()
    cpu, started = _cpu(), time.perf_counter()
    result = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    _reap()
    LOGS.mkdir(parents=True, exist_ok=True)
    name = "-".join(Path(part).name for part in cmd[:2])
    (LOGS / f"fresh-clone-{name}.log").write_text(result.stdout + result.stderr)
    if result.returncode != 0:
        raise SystemExit(f"`{' '.join(cmd)}` failed after {took:.0f}s:\n{result.stdout[-3000:]}{result.stderr[-3000:]}")
    return took, _cpu() - cpu


def main(argv: list[str] | None = None) -> None:
    which = (argv or sys.argv[2:]) or ["demo", "test"]
    if not adopt_orphans():
        print(
            "note: this system cannot adopt orphaned processes (Linux prctl PR_SET_CHILD_SUBREAPER), so the CPU "
            "times below leave out services whose parent exited before them: read them as lower bounds",
            flush=True,
        )
    with tempfile.TemporaryDirectory(prefix="workbench-fresh-") as name:
        tmp = Path(name)
        clone = tmp / "mlops-workbench"
        subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "WORKBENCH_", "PYTEST_"))}
        env["PATH"] = path_without_uv(tmp / "path")
        assert shutil.which("uv", path=env["PATH"]) is None, "uv is still on PATH"
        env["WORKBENCH_CACHE"] = str(tmp / "cache")  # nothing derived from earlier runs (an empty MLflow store)
        # demo first, setup included; the baseline needs the venv it leaves; each line prints when it is known
        demo = _timed(["make", "demo"], clone, env) if "demo" in which else None
        if demo is None:
            _timed(["make", "setup"], clone, env)
        bare = [str(clone / ".venv" / "bin" / "python"), "-c", "import mlflow"]
        _timed(bare, clone, env)  # warm: the bytecode is cached and the files are in the page cache
        baseline = _timed(bare, clone, env)[0]
        print(f"baseline: import mlflow in the clone's venv {baseline:.2f}s", flush=True)
        if demo is not None:
            verdict("demo", demo, baseline)
        if "test" in which:
            py = str(clone / ".venv" / "bin" / "python")
            listed = subprocess.run(
                [py, "-m", "pytest", "--collect-only", "-q", "-m", REAL, "-n0"],
                cwd=clone,
                env=env,
                capture_output=True,
                text=True,
            )
            counted = (listed.stdout.strip().splitlines() or [f"none collected: {listed.stderr[-500:]}"])[-1]
            print(f"tests that start real notebooks, servers or a browser: {counted}", flush=True)
            total = (0.0, 0.0)
            for stage in TEST_STAGES:
                took, cpu = _timed(["make", stage], clone, env)
                print(f"  make {stage}: {took:.0f}s, CPU {cpu:.0f}s, floor {cpu / cores():.0f}s", flush=True)
                total = (total[0] + took, total[1] + cpu)
            verdict("test", total, baseline)


def cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def verdict(name: str, timed: tuple[float, float], baseline: float) -> None:
    took, cpu = timed
    wall_target, cpu_target = TARGETS[name]
    met = "met" if took <= wall_target else "MISSED"
    cpu_met = "met" if cpu <= cpu_target else "MISSED"
    print(
        f"make {name}: {took:.0f}s, {took / wall_target:.2f}x the {wall_target:.0f}s target ({met}), "
        f"{took / baseline:.0f}x the baseline; CPU {cpu:.0f}s against {cpu_target:.0f}s ({cpu_met}), so at least "
        f"{cpu / cores():.0f}s on {cores()} cores ({cpu / cores() / wall_target:.2f}x the wall target)",
        flush=True,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
