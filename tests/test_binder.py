"""Binder as far as it can be proved without Docker: binder/postBuild and binder/start in a fresh
environment built from the lock (uv venv), then the MLflow UI through jupyter-server-proxy with the
JupyterHub prefix set, as on mybinder.org."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from mlops_workbench import procs
from mlops_workbench.workbench import Workbench

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("uv") is None, reason="needs uv to build the fresh environment"),
]
ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/user/learner/"


def test_postbuild_and_start_in_a_fresh_environment_serve_mlflow_through_the_proxy(tmp_path):
    venv = tmp_path / "srv" / "conda"
    subprocess.run(["uv", "venv", "-q", "--seed", "-p", "3.11", str(venv)], check=True, timeout=300)
    subprocess.run(
        [
            "uv",
            "pip",
            "install",
            "-q",
            "-p",
            str(venv / "bin" / "python"),
            "-r",
            str(ROOT / "requirements.lock"),
            "rfc3987-syntax==1.1.0",
        ],  # what binder/environment.yml
        check=True,
        timeout=900,
    )  # pins, and what pip adds for jsonschema[format-nongpl]
    home = tmp_path / "jovyan"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WORKBENCH_", "MLFLOW_", "VIRTUAL_ENV"))}
    env.update(PATH=f"{venv / 'bin'}:/usr/bin:/bin", HOME=str(home), REPO_DIR=str(ROOT))
    build = subprocess.run([str(ROOT / "binder" / "postBuild")], env=env, capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (venv / "share" / "jupyter" / "kernels" / "python3" / "kernel.json").exists()
    left = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.util as u; print(u.find_spec('rfc3987_syntax'))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert left == "None", (
        "postBuild removes rfc3987-syntax (a 2.7 s grammar build in every process importing jsonschema)"
    )
    listed = subprocess.run(
        [str(venv / "bin" / "jupyter"), "server", "extension", "list"], env=env, capture_output=True, text=True
    )
    # jupyter_server prints the list on stdout or stderr depending on its version and logging config
    assert re.search(r"jupyter_server_proxy\s+\S*enabled", listed.stdout + listed.stderr), listed.stdout + listed.stderr
    port = procs.free_port()
    env["JUPYTERHUB_SERVICE_PREFIX"] = PREFIX
    server = subprocess.Popen(
        [
            str(ROOT / "binder" / "start"),
            "jupyter",
            "lab",
            "--no-browser",
            f"--port={port}",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.base_url={PREFIX}",
            "--IdentityProvider.token=",
            "--allow-root",
            f"--ServerApp.root_dir={ROOT}",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    state = home / ".workbench"
    try:
        up = subprocess.run(
            [str(ROOT / "binder" / "start"), str(venv / "bin" / "workbench"), "mlflow", "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert up.returncode == 0, up.stdout + up.stderr
        mlflow = procs.get(Workbench.from_env(state), "mlflow")
        assert mlflow is not None, "binder/start puts the state folder in $HOME/.workbench"
        url = f"http://127.0.0.1:{port}{PREFIX}proxy/{mlflow.port}/"
        deadline, answer = time.monotonic() + 180, None
        while time.monotonic() < deadline:
            try:
                answer = httpx.get(url, timeout=10, follow_redirects=True)
                if answer.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(1)
        assert answer is not None and answer.status_code == 200, answer and answer.text[:500]
        assert "MLflow" in answer.text
        api = httpx.get(url + "api/2.0/mlflow/experiments/search?max_results=5", timeout=30)
        assert api.status_code == 200 and "Default" in api.text, api.text[:500]  # not refused as a foreign host
    finally:
        procs.stop_all(Workbench.from_env(state))
        procs.signal_group(server.pid, 15)
        server.wait(30)
