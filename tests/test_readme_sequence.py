"""The README's serve sequence, each command in a fresh process as a new shell runs it.

No ``MLFLOW_TRACKING_URI`` is set: every command must find the tracking server of
its state folder by itself, and none may leave an ``mlflow.db`` or ``mlruns/`` of
MLflow's own anywhere outside the state folder.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from mlops_workbench import data, procs, registry, tracking, train
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
MODEL = "readme-iris"


def _shell_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
    env["WORKBENCH_HOME"] = str(home)
    return env


def _workbench(*args: str, env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_workbench.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
    )


def _strays(*folders: Path) -> list[Path]:
    return [p for folder in folders for name in ("mlflow.db", "mlruns") if (p := folder / name).exists()]


def test_readme_serve_sequence_in_new_shells(tmp_path, monkeypatch):
    home, shell = tmp_path / "state", tmp_path / "elsewhere"
    home.mkdir()
    shell.mkdir()
    env = _shell_env(home)
    before = set(_strays(ROOT))
    try:
        up = _workbench("mlflow", "up", env=env, cwd=shell)
        assert up.returncode == 0, up.stderr
        import mlflow

        tracking.use(Workbench.from_env(home))  # this test's own process logs the model the commands then find
        mlflow.set_experiment("readme")
        train_df, _ = data.split(data.load_iris_frame(), test_size=0.2, seed=42)
        with mlflow.start_run() as run:
            tracking.log_sklearn_model(train.train(train_df, {"C": 1.0}), train_df[data.FEATURES].head(3))
        version = registry.register(Workbench.from_env(home), run.info.run_id, MODEL).version

        listed = _workbench("registry", "list", "--name", MODEL, env=env, cwd=shell)
        assert listed.returncode == 0, listed.stderr
        assert MODEL in listed.stdout

        port = procs.free_port()
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlops_workbench.cli.main",
                "serve",
                "--model-uri",
                f"models:/{MODEL}/{version}",
                "--port",
                str(port),
            ],
            env=env,
            cwd=shell,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            deadline = time.monotonic() + 240
            while time.monotonic() < deadline and server.poll() is None:
                try:
                    if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.3)
            assert server.poll() is None, server.stdout.read()
            described = httpx.get(f"http://127.0.0.1:{port}/version", timeout=5).json()
            assert (described["name"], described["version"]) == (MODEL, str(version))
        finally:
            server.terminate()
            server.wait(timeout=30)
        assert _strays(shell) == [] and set(_strays(ROOT)) == before
        assert tracking.store_paths(Workbench.from_env(home))[0].exists()
    finally:
        procs.stop_all(Workbench.from_env(home))

    down = _workbench(
        "serve", "--model-uri", f"models:/{MODEL}/1", "--port", str(procs.free_port()), env=env, cwd=shell
    )
    assert down.returncode == 2
    lines = down.stderr.strip().splitlines()
    assert len(lines) == 1 and "workbench mlflow up" in lines[0], down.stderr
    assert _strays(shell) == [] and set(_strays(ROOT)) == before
