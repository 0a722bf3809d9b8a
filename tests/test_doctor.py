"""workbench doctor: each check's failure branches (monkeypatched or real), and the real command here."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_workbench import doctor, procs
from mlops_workbench.workbench import Workbench


@pytest.fixture
def home(tmp_path: Path):
    path = tmp_path / "home"
    path.mkdir()
    yield path
    procs.stop_all(Workbench.from_env(path))


def test_python_version_outside_requires_python_fails():
    assert doctor.check_python("3.11.7", ">=3.11,<3.13").status == "OK"
    result = doctor.check_python("3.10.4", ">=3.11,<3.13")
    assert result.status == "FAIL"
    assert "3.10.4" in result.detail and "3.11" in result.fix


def test_python_check_reads_requires_python_of_pyproject():
    import tomllib

    pyproject = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
    assert doctor.SpecifierSet(doctor._requires_python()) == doctor.SpecifierSet(
        pyproject["project"]["requires-python"]
    )
    assert doctor.check_python().status == "OK"


def test_unregistered_kernel_fails_with_install_command():
    result = doctor.check_kernel("no-such-kernel-for-doctor")
    assert result.status == "FAIL"
    assert "ipykernel install" in result.fix and "no-such-kernel-for-doctor" in result.fix


def _kernel(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, python: str) -> str:
    kernels = tmp_path / "jupyter" / "kernels" / "doctor-test"
    kernels.mkdir(parents=True)
    spec = {
        "argv": [python, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "t",
        "language": "python",
    }
    (kernels / "kernel.json").write_text(json.dumps(spec))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "doctor-test"


def test_kernel_whose_python_cannot_import_the_package_fails(tmp_path, monkeypatch):
    name = _kernel(tmp_path, monkeypatch, str(tmp_path / "no" / "python"))
    result = doctor.check_kernel(name)
    assert result.status == "FAIL"
    assert "cannot import mlops_workbench" in result.detail


def test_kernel_with_this_python_is_ok(tmp_path, monkeypatch):
    assert doctor.check_kernel(_kernel(tmp_path, monkeypatch, sys.executable)).status == "OK"


def test_package_mismatch_is_reported_by_name(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text("pyyaml==0.0.1\nrich==0.0.2\nnot-installed-pkg==1.0\n# comment\n")
    result = doctor.check_packages(lock, direct={"pyyaml"})
    assert result.status == "FAIL"
    assert "pyyaml" in result.detail and "lock 0.0.1" in result.detail
    assert "rich" in result.detail and "not-installed-pkg missing" in result.detail
    transitive = doctor.check_packages(lock, direct=set())
    assert transitive.status == "WARN"


def test_packages_match_the_real_lock():
    result = doctor.check_packages()
    assert result.status == "OK", result.detail


def test_read_lock_honours_markers(tmp_path):
    lock = tmp_path / "requirements.lock"
    lock.write_text('PyYAML==6.0\nfoo==1.0 ; sys_platform == "nonexistent"\n')
    assert doctor.read_lock(lock) == {"pyyaml": "6.0"}


def test_missing_required_tool_fails_and_optional_warns(monkeypatch):
    monkeypatch.setattr(doctor.tools, "find", lambda tool: None)
    assert doctor.check_tool("dvc", fix="make setup").status == "FAIL"
    optional = doctor.check_tool("kind", required=False, purpose=" (optional)")
    assert optional.status == "WARN" and "optional" in optional.detail


def test_tool_that_errors_reports_its_exit_code(monkeypatch):
    monkeypatch.setattr(doctor.tools, "find", lambda tool: "/bin/false")
    result = doctor.check_tool("docker", ["info"], required=False)
    assert result.status == "WARN" and "exited 1" in result.detail


def test_git_and_dvc_are_found_here():
    for tool in ("git", "dvc"):
        result = doctor.check_tool(tool)
        assert result.status == "OK" and result.detail[0].isalnum(), result


def test_port_taken_by_another_program_warns(home, wb):
    port = procs.free_port()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", port))
        sock.listen()
        result = doctor.check_ports(wb, {port: "test"})
    assert result.status == "WARN" and str(port) in result.detail and f":{port}" in result.fix
    assert doctor.check_ports(wb, {port: "test"}).status == "OK"


def test_port_held_by_a_workbench_service_is_ok(home, wb):
    port = procs.free_port()
    procs.start(
        wb,
        "web",
        [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
        port,
        health_path="/",
        timeout=30,
    )
    result = doctor.check_ports(wb, {port: "test"})
    assert result.status == "OK" and f"{port} (web)" in result.detail


def test_unwritable_state_folder_fails(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    result = doctor.check_home(Workbench.from_env(not_a_folder))
    assert result.status == "FAIL" and "WORKBENCH_HOME" in result.fix
    assert doctor.check_home(Workbench.from_env(tmp_path)).status == "OK"
    assert list(tmp_path.iterdir()) == [not_a_folder]  # the probe file is cleaned up


def test_failed_is_true_only_for_fail():
    ok = doctor.CheckResult(name="a", status="OK", detail="")
    warn = doctor.CheckResult(name="b", status="WARN", detail="")
    assert not doctor.failed([ok, warn])
    assert doctor.failed([ok, doctor.CheckResult(name="c", status="FAIL", detail="")])


def test_cli_exits_non_zero_on_fail(monkeypatch):
    from typer.testing import CliRunner

    from mlops_workbench.cli.main import app

    bad = [doctor.CheckResult(name="git", status="FAIL", detail="git not found", fix="install git")]
    monkeypatch.setattr(doctor, "run_all", lambda wb: bad)
    result = CliRunner().invoke(app, ["doctor", "--json"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.exception
    assert json.loads(result.stdout)[0]["status"] == "FAIL"
    table = CliRunner().invoke(app, ["doctor"])
    assert table.exit_code == 1 and isinstance(table.exception, SystemExit), table.exception
    assert "install git" in table.stdout and "FAIL: fix the red lines above" in table.stdout
    quiet = CliRunner().invoke(app, ["--quiet", "doctor"])
    assert quiet.exit_code == 1 and quiet.stdout.strip() == "FAIL: fix the red lines above"


@pytest.mark.slow
def test_real_workbench_doctor_passes_on_this_machine(tmp_path):
    exe = Path(sys.executable).with_name("workbench")
    env = {**os.environ, "WORKBENCH_HOME": str(tmp_path / "home")}
    proc = subprocess.run([str(exe), "doctor", "--json"], capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    results = {r["name"]: r["status"] for r in json.loads(proc.stdout)}
    for required in ("python", "kernel", "packages", "git", "dvc", "state folder"):
        assert results[required] == "OK", (required, proc.stdout)
    table = subprocess.run([str(exe), "doctor"], capture_output=True, text=True, env=env, timeout=300)
    assert table.returncode == 0 and "kernel" in table.stdout and "ready" in table.stdout
