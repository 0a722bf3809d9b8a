"""The embedded MLflow tracking server against a real ``mlflow server`` process."""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlops_workbench import procs, tracking, tracking_server, tracking_store
from mlops_workbench.cli.main import app
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("WORKBENCH_HOME", str(tmp_path))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    yield tmp_path
    procs.stop_all(Workbench.from_env(tmp_path))


def test_up_status_idempotent_up_and_down(home: Path, wb) -> None:
    port = procs.free_port()
    url = tracking.up(wb, port=port)
    assert url == f"http://127.0.0.1:{port}"
    assert httpx.get(url + "/health", timeout=5).status_code == 200

    report = tracking.status(wb)
    assert report.running and report.url == url and report.port == port
    assert report.pid and procs.alive(report.pid)
    assert _children(report.pid) == [], "mlflow server runs its uvicorn in its own process (tracking_server)"
    assert report.backend_store == f"sqlite:///{home / 'mlflow' / 'mlflow.db'}"
    assert (home / "mlflow" / "mlflow.db").exists()
    assert report.experiments == 1  # the Default experiment
    assert report.registered_models == 0

    # loopback only: a foreign Host header (DNS rebinding) is refused outside JupyterHub/Binder
    search = url + "/api/2.0/mlflow/experiments/search?max_results=10"
    assert httpx.get(search, headers={"Host": "hub.example.org"}, timeout=10).status_code >= 400

    # a second `up`, even asking for another port, reuses the running server
    assert tracking.up(wb, port=procs.free_port()) == url
    assert tracking.status(wb).pid == report.pid
    assert [s.name for s in procs.running(wb)] == [tracking.SERVICE]

    assert tracking.down(wb) is True
    assert not procs.alive(report.pid)
    assert not procs.port_in_use(port)
    assert procs.running(wb) == []
    after = tracking.status(wb)
    assert not after.running and after.url is None and after.experiments is None
    assert tracking.down(wb) is False


def _children(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:  # the process ended while we looked
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.parent.name))
    return found


def test_the_one_process_launcher_refuses_anything_but_uvicorn() -> None:
    with pytest.raises(RuntimeError, match="not uvicorn"):
        tracking_server._in_process([sys.executable, "-m", "gunicorn", "app"])


def test_up_refuses_a_port_taken_by_another_program(home: Path, wb) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        with pytest.raises(RuntimeError, match=f"Port {port} is already taken"):
            tracking.up(wb, port=port)
        result = CliRunner().invoke(app, ["mlflow", "up", "--port", str(port), "--home", str(home)])
    assert result.exit_code == 2
    assert "already taken" in result.output
    assert procs.running(wb) == []


def test_cli_up_status_ui_down(home: Path, monkeypatch: pytest.MonkeyPatch, wb) -> None:
    runner = CliRunner()
    port = procs.free_port()
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/ada/")
    result = runner.invoke(app, ["mlflow", "up", "--port", str(port), "--home", str(home)])
    assert result.exit_code == 0, result.output
    assert f"127.0.0.1:{port}" in result.output
    # on JupyterHub/Binder the proxied UI arrives with the hub's Host header and must be served
    search = f"http://127.0.0.1:{port}/api/2.0/mlflow/experiments/search?max_results=10"
    assert httpx.get(search, headers={"Host": "hub.example.org"}, timeout=10).status_code == 200

    result = runner.invoke(app, ["mlflow", "status", "--home", str(home)])
    assert result.exit_code == 0 and "yes" in result.output and str(port) in result.output

    result = runner.invoke(app, ["mlflow", "ui", "--no-browser", "--home", str(home)])
    assert result.exit_code == 0
    assert f"/user/ada/proxy/{port}/" in result.output

    result = runner.invoke(app, ["mlflow", "down", "--home", str(home)])
    assert result.exit_code == 0 and "stopped" in result.output
    assert procs.running(wb) == []
    result = runner.invoke(app, ["mlflow", "ui", "--home", str(home)])
    assert result.exit_code == 2 and "workbench mlflow up" in result.output


def test_ui_links_without_server_or_proxy(home: Path, monkeypatch: pytest.MonkeyPatch, wb) -> None:
    monkeypatch.delenv("JUPYTERHUB_SERVICE_PREFIX", raising=False)
    assert tracking.proxy_path(5000) is None
    monkeypatch.setenv("JUPYTERHUB_SERVICE_PREFIX", "/user/x")
    assert tracking.proxy_path(5000) == "/user/x/proxy/5000/"
    with pytest.raises(RuntimeError, match="workbench mlflow up"):
        tracking.ui(wb)


def _outside_ci_env(**extra: str) -> dict[str, str]:
    """This environment as a learner's laptop has it: none of the variables by which MLflow recognises a CI run
    or a pytest test (which would turn its telemetry off by themselves), and no telemetry setting."""
    ci_markers = {
        "PYTEST_CURRENT_TEST",
        "GITHUB_ACTIONS",
        "CI",
        "CIRCLECI",
        "GITLAB_CI",
        "JENKINS_URL",
        "TRAVIS",
        "TF_BUILD",
        "BITBUCKET_BUILD_NUMBER",
        "CODEBUILD_BUILD_ARN",
        "BUILDKITE",
        "TEAMCITY_VERSION",
        "CLOUD_RUN_EXECUTION",
        "MLFLOW_DISABLE_TELEMETRY",
        "DO_NOT_TRACK",
    }
    env = {key: value for key, value in os.environ.items() if key not in ci_markers and not key.startswith("RUNBOT_")}
    return {**env, **extra}


def test_importing_the_workbench_turns_mlflow_telemetry_off_for_the_process_and_its_children() -> None:
    # MLflow's telemetry thread, failing to reach its server offline, removed an environment variable while the
    # main thread's requests read the environment: a lab's MLflow call failed at random with a KeyError.
    code = (
        "import mlops_workbench, mlflow, os, subprocess, sys\n"
        "from mlflow.telemetry import get_telemetry_client\n"
        "child = subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"MLFLOW_DISABLE_TELEMETRY\"])'],"
        " capture_output=True, text=True, check=True).stdout.strip()\n"
        "print(get_telemetry_client() is None, child)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_outside_ci_env(), timeout=120, check=True
    ).stdout.split()
    assert out == ["True", "true"]


def test_an_explicit_telemetry_setting_is_kept() -> None:
    code = "import mlops_workbench, os; print(os.environ['MLFLOW_DISABLE_TELEMETRY'])"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=_outside_ci_env(MLFLOW_DISABLE_TELEMETRY="false"),
        timeout=60,
        check=True,
    )
    assert out.stdout.strip() == "false"


def _default_experiment_created(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT creation_time FROM experiments WHERE name = 'Default'").fetchone()[0]


def test_a_new_store_starts_from_the_empty_store_the_first_one_left(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    first, second = tmp_path / "first", tmp_path / "second"
    try:
        tracking.up(Workbench.from_env(first), port=procs.free_port())
        tracking.down(Workbench.from_env(first))
        template = tracking_store.empty_store()
        assert template.is_file() and template.parent == tmp_path / "cache"
        born = _default_experiment_created(template)
        assert born == _default_experiment_created(first / "mlflow" / "mlflow.db")

        url = tracking.up(Workbench.from_env(second), port=procs.free_port())
        assert _default_experiment_created(second / "mlflow" / "mlflow.db") == born  # a copy, not a new build
        client = tracking.client(Workbench.from_env(second))
        experiment = client.create_experiment("seeded")
        client.create_run(experiment)
        assert tracking.status(Workbench.from_env(second)).experiments == 2 and url.startswith("http://127.0.0.1:")
        assert _default_experiment_created(template) == born and tracking_store.empty_store() == template
        with sqlite3.connect(template) as conn:  # the second store's writes never reach the template
            assert conn.execute("SELECT count(*) FROM experiments").fetchone()[0] == 1
    finally:
        procs.stop_all(Workbench.from_env(first))
        procs.stop_all(Workbench.from_env(second))


def test_a_store_that_holds_anything_is_never_kept_as_the_empty_store(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    db = tmp_path / "mlflow.db"
    with sqlite3.connect(db) as conn:
        for table in ("experiments", "runs", "registered_models", "logged_models"):
            conn.execute(f"CREATE TABLE {table} (name TEXT)")
        conn.execute("INSERT INTO experiments VALUES ('Default')")
        conn.execute("INSERT INTO runs VALUES ('a run logged before the copy')")
    tracking_store.keep_empty(db)
    assert not tracking_store.empty_store().exists()
    with sqlite3.connect(db) as conn:
        conn.execute("DELETE FROM runs")
    tracking_store.keep_empty(db)
    assert tracking_store.empty_store().is_file()
    assert list((tmp_path / "cache").iterdir()) == [tracking_store.empty_store()]  # no partial copy left


def test_an_unwritable_cache_only_costs_the_speed_up(tmp_path: Path, monkeypatch) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder would go")
    monkeypatch.setenv("WORKBENCH_CACHE", str(blocker / "cache"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    home = tmp_path / "home"
    try:
        url = tracking.up(Workbench.from_env(home), port=procs.free_port())
        assert httpx.get(url + "/health", timeout=5).status_code == 200
        assert not tracking_store.empty_store().exists()
    finally:
        procs.stop_all(Workbench.from_env(home))


def test_a_failed_copy_of_the_empty_store_falls_back_to_mlflow_building_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    tracking_store.empty_store().parent.mkdir()
    tracking_store.empty_store().write_bytes(b"an empty store")
    db = tmp_path / "home" / "mlflow.db"
    db.parent.mkdir()

    def disk_full(src, dst):
        Path(dst).write_bytes(b"half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(tracking_store.shutil, "copyfile", disk_full)
    assert tracking_store.seed(db) is False
    assert list(db.parent.iterdir()) == []  # neither a store nor a partial copy: MLflow starts from nothing
    monkeypatch.undo()
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path / "cache"))
    assert tracking_store.seed(db) is True and db.read_bytes() == b"an empty store"
    assert tracking_store.seed(db) is None  # an existing store is never replaced
