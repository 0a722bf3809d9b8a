"""The warm runner (``procs.warm``) with real DVC stages and a real service: the same outputs, messages and exit
codes as when started cold, and no process left behind when a stage, its caller or the runner's starter goes."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from mlops_workbench import procs, versioning
from mlops_workbench.data import load_iris_frame, save_csv
from mlops_workbench.errors import ServiceError
from mlops_workbench.procs import wait_exit, warm, zygote
from mlops_workbench.serving import paths
from mlops_workbench.versioning.workspace import file_md5

OUTPUTS = ("data/prepared/train.csv", "data/prepared/test.csv", "model/model.pkl", "metrics.json")


@pytest.fixture
def ws(wb) -> versioning.Workspace:
    """A workspace with Iris tracked by DVC and the prepare -> train -> evaluate pipeline declared."""
    ws = versioning.init_workspace(wb, wb.home / "ws")
    versioning.write_params(ws, train={"C": 0.5, "seed": 3})
    save_csv(load_iris_frame(), ws.path / versioning.DATA)
    ws.dvc("add", "--quiet", versioning.DATA)
    versioning.add_pipeline(ws)
    return ws


def stage(ws: versioning.Workspace, name: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, f"{name}.py"], cwd=ws.path, env=env, capture_output=True, text=True, timeout=120
    )


def cold_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != warm.RUNNER_ENV}


def outputs(ws: versioning.Workspace) -> dict[str, str]:
    return {path: file_md5(ws.path / path) for path in OUTPUTS}


def test_stages_in_the_runner_give_what_cold_stages_give(ws, warm_runner, monkeypatch) -> None:
    monkeypatch.delenv(warm.RUNNER_ENV)
    ws.dvc("repro")
    cold = outputs(ws)
    monkeypatch.setenv(warm.RUNNER_ENV, warm_runner.address)
    ws.dvc("repro", "--force")
    assert outputs(ws) == cold
    ran = [line for line in warm_runner.log.read_text().splitlines() if line.endswith(f" in {ws.path}")]
    assert [line.split(" stage ")[1].split()[0] for line in ran] == ["prepare", "train", "evaluate"]


def test_a_failing_stage_fails_as_it_does_cold(ws, warm_runner) -> None:
    (ws.path / versioning.PREPARED).mkdir(parents=True)
    (ws.path / versioning.TRAIN_SPLIT).write_text("sepal_length,sepal_width\n1,2\n")
    cold = stage(ws, "train", cold_env())
    warmed = stage(ws, "train", {**os.environ, **warm_runner.env})
    assert cold.returncode == warmed.returncode == 1
    # the same message, the traceback's end included; only the frames of the hand-over differ
    assert "Fix the data before training" in warmed.stderr
    assert warmed.stderr.splitlines()[-4:] == cold.stderr.splitlines()[-4:]
    assert f"stage train in {ws.path}" in warm_runner.log.read_text()


def test_without_a_runner_the_stage_runs_here_and_says_why(ws, tmp_path) -> None:
    done = stage(ws, "prepare", {**cold_env(), warm.RUNNER_ENV: str(tmp_path / "gone")})
    assert done.returncode == 0, done.stderr
    assert "did not take stage prepare" in done.stderr and "running it here" in done.stderr
    assert (ws.path / versioning.TRAIN_SPLIT).is_file()


def test_a_stage_python_would_start_otherwise_runs_as_its_own_process(ws, warm_runner) -> None:
    """Python reads PYTHONHASHSEED only when it starts: a child of the runner would keep the runner's."""
    done = stage(ws, "prepare", {**os.environ, "PYTHONHASHSEED": "123", **warm_runner.env})
    assert done.returncode == 0, done.stderr
    assert "start-up settings differ from the runner's: PYTHONHASHSEED); running it here" in done.stderr
    assert f"stage prepare in {ws.path}" not in warm_runner.log.read_text()
    assert (ws.path / versioning.TRAIN_SPLIT).is_file()


def test_an_unknown_stage_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="unknown stage 'fit'.*prepare, train, evaluate"):
        warm.run_stage("fit")


def blocked_child(ws: versioning.Workspace, runner: warm.Runner) -> tuple[subprocess.Popen[str], psutil.Process]:
    """``python prepare.py`` handed to ``runner``, its child stuck opening params.yaml (a FIFO nobody writes)."""
    params = ws.path / "params.yaml"
    params.unlink()
    os.mkfifo(params)
    script = subprocess.Popen(
        [sys.executable, "prepare.py"], cwd=ws.path, env={**os.environ, **runner.env}, text=True, stderr=subprocess.PIPE
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        for child in psutil.Process(runner.pid).children():
            try:
                if Path(child.cwd()) == ws.path:
                    return script, child
            except psutil.NoSuchProcess:
                continue
        assert script.poll() is None, script.communicate()[1]
        time.sleep(0.05)
    raise AssertionError("the stage never reached the runner")


def test_a_signal_to_the_stage_reaches_its_child(ws, warm_runner) -> None:
    script, child = blocked_child(ws, warm_runner)
    script.send_signal(signal.SIGTERM)
    assert script.wait(timeout=30) == 128 + signal.SIGTERM
    assert wait_exit([child.pid], timeout=30)


def test_a_killed_stage_leaves_no_child(ws, warm_runner) -> None:
    script, child = blocked_child(ws, warm_runner)
    script.kill()
    script.wait(timeout=30)
    assert wait_exit([child.pid], timeout=30)
    assert psutil.pid_exists(warm_runner.pid)  # the runner itself serves on


CHILD_CODE = {
    "versioning",
    "data",
    "train",
    "evaluate",
    "cli",
    "serving",
    "rollout",
    "monitoring",
    "registry",
    "tracking",
}
"""The workbench's stage and service code, which every child must import itself."""
STARTER = """
import sys
from mlops_workbench.procs import warm
with warm.runner() as runner:
    print(runner.pid, runner.log, flush=True)
    sys.stdin.read()
"""


def test_the_runner_ends_with_its_starter_and_holds_no_workbench_stage_code() -> None:
    starter = subprocess.Popen(
        [sys.executable, "-c", STARTER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert starter.stdout is not None
    pid, log = starter.stdout.readline().split()
    starter.kill()
    starter.wait(timeout=30)
    assert wait_exit([int(pid)], timeout=30), "the runner outlived the process that started it"
    loaded = Path(log).read_text()
    assert f"imported {len(zygote.PRELOAD)} modules" in loaded and "stopping" in loaded
    ours = loaded.split("workbench modules: ")[1].split()[0].split(",")
    stale = [m for m in ours if m.split(".")[1:2] and m.split(".")[1] in CHILD_CODE]
    assert "mlops_workbench.procs.warm" in ours and stale == [], (
        f"the runner imported {stale}: a child would run stale code"
    )
    shutil.rmtree(Path(log).parent)  # its starter was killed before it could


def router(wb, port: int) -> procs.Service:
    """The router as a real workbench service (no model behind it: its health answers all the same)."""
    stable = "http://127.0.0.1:9"  # nothing listens there; the router only needs the address
    cmd = procs.workbench_cmd("router", "--stable", stable, "--canary", stable, "--weight", "0", "--port", str(port))
    return procs.start(wb, "router", cmd, port, health_path=paths.HEALTH, timeout=60)


def test_a_service_forks_from_the_runner_and_outlives_it(wb) -> None:
    with warm.runner() as runner, pytest.MonkeyPatch.context() as mp:
        mp.setenv(warm.RUNNER_ENV, runner.address)
        service = router(wb, procs.free_port())
        assert psutil.Process(service.pid).ppid() == runner.pid
        assert os.getsid(service.pid) == service.pid  # a session of its own, as a spawned service
        assert f"pid {service.pid}: workbench router --stable" in runner.log.read_text()
    assert procs.get(wb, "router") == service, "the service ended with the runner that forked it"
    assert procs.http().get(service.url + paths.HEALTH, timeout=5).status_code == 200
    assert procs.stop(wb, "router")
    assert not procs.alive(service.pid)


def test_a_service_started_without_a_runner_is_spawned(wb, monkeypatch) -> None:
    monkeypatch.delenv(warm.RUNNER_ENV)
    service = router(wb, procs.free_port())
    assert psutil.Process(service.pid).ppid() == os.getpid()
    procs.stop(wb, "router")


def test_a_forked_service_that_fails_to_start_names_its_log(wb) -> None:
    port = procs.free_port()
    cmd = procs.workbench_cmd("router", "--weight", "heavy", "--port", str(port))
    with pytest.raises(ServiceError, match=r"'router' exited while starting; see .*router\.log"):
        procs.start(wb, "router", cmd, port, health_path=paths.HEALTH, timeout=60)
    assert "Invalid value for '--weight'" in wb.layout.log("router").read_text()
    assert procs.get(wb, "router") is None
