"""One owner per concern: MLflow URIs, errors and exit codes, params, the state folder's layout, phases,
check collection, service start and default ports."""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import pkgutil
import re
import subprocess
import sys
import threading
from pathlib import Path

import pytest

import mlops_workbench
from mlops_workbench import errors, settings, tracking
from mlops_workbench.errors import InputError, NotFoundError, TrackingServerDown, WorkbenchError
from mlops_workbench.labs.checks import load_checks
from mlops_workbench.rollout import state as st

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src" / "mlops_workbench"


def _modules():
    for info in pkgutil.walk_packages(mlops_workbench.__path__, "mlops_workbench."):
        if ".templates" not in info.name:
            yield importlib.import_module(info.name)


def test_only_tracking_touches_mlflow_global_uris():
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.name == "tracking.py" and path.parent == SRC or "templates" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Attribute) and node.attr in ("set_tracking_uri", "set_registry_uri"):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == []


def test_every_exception_class_derives_from_workbench_error():
    strays = []
    for module in _modules():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                if not issubclass(obj, WorkbenchError):
                    strays.append(f"{module.__name__}.{name}")
    assert strays == []


def _workbench(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mlops_workbench.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=120)


def test_cli_turns_a_workbench_error_into_one_line_and_exit_2(home, tmp_path, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    out = _workbench("registry", "list", cwd=tmp_path)
    assert out.returncode == errors.EXIT_ERROR
    assert "workbench mlflow up" in out.stderr and "Traceback" not in out.stderr + out.stdout
    bad = tmp_path / "policy.yaml"
    bad.write_text("steps: [{setWeight: 500}]\nanalysis: {}\n")
    out = _workbench("rollout", "start", "--candidate", "2", "--policy", str(bad))
    assert out.returncode == errors.EXIT_ERROR and "Traceback" not in out.stderr
    assert "setWeight" in out.stderr
    assert not list(tmp_path.glob("mlflow.db")) and not (tmp_path / "mlruns").exists()


def test_tracking_uri_is_the_state_folders_server_and_never_a_local_store(home, monkeypatch):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(TrackingServerDown, match="workbench mlflow up"):
        tracking.uri(home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")  # never a store of MLflow's own
    with pytest.raises(TrackingServerDown):
        tracking.uri(home)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000/")  # an external server, named
    assert tracking.uri(home) == "http://mlflow.example:5000"


def test_params_one_reader_one_rule(tmp_path, monkeypatch):
    with pytest.raises(NotFoundError, match="git checkout -- params.yaml"):
        settings.load_params(path=tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("train: {C: 2.0}\n")
    assert settings.load_params("registry", path=tmp_path / "params.yaml") == {}
    (tmp_path / "params.yaml").write_text("registry: [1, 2]\n")
    with pytest.raises(InputError, match="registry"):
        settings.load_params("registry", path=tmp_path / "params.yaml")
    project = tmp_path / "project"
    (project / "labs").mkdir(parents=True)
    (project / "params.yaml").write_text("registry: {model_name: flowers}\n")
    monkeypatch.setenv(settings.PROJECT_ENV, str(project))
    assert settings.model_name() == "flowers"
    from mlops_workbench.registry.gate import RegistryParams

    assert RegistryParams.load().model_name == "flowers"


def test_the_layout_owns_every_path_under_the_state_folder(tmp_path):
    paths = settings.layout(tmp_path)
    found = [paths.mlflow_db, paths.artifacts, paths.run, paths.log("x"), paths.audit_log(), paths.locks,
             paths.rollout_events, paths.rollout_state, paths.rollout_request, paths.rollout_ports, paths.prometheus,
             paths.workspace("02-versioning"), paths.dvc_remote, paths.reproduction("r1"), paths.results,
             paths.pipeline, paths.pipeline_lab("03-registry-promotion"), paths.drills, paths.check_log("00-welcome"),
             paths.admin_token]
    assert len(set(found)) == len(found) and all(p.is_relative_to(tmp_path) for p in found)
    assert not any(p.exists() for p in found), "a layout only names paths, it creates none"
    assert tracking.store_paths(tmp_path) == (paths.mlflow_db, paths.artifacts)
    literal = re.compile(r"""home\)?\s*/\s*["'](mlflow|logs|run|audit|rollout|workspaces|results|locks|drills|pipeline)["']""")
    owners = [p for p in [*SRC.rglob("*.py"), *ROOT.glob("labs/*/checks.py")]
              if p.name != "settings.py" and literal.search(p.read_text())]
    assert owners == []


def test_rollout_phase_is_an_enum_even_when_read_back_from_json(tmp_path):
    state = st.RolloutState.new("2", {"steps": []})
    state.phase = st.RolloutPhase.ABORTED
    st.save(state, tmp_path)
    loaded = st.load(tmp_path)
    assert loaded.phase is st.RolloutPhase.ABORTED and loaded.done


def test_checks_are_collected_per_load_so_parallel_graders_do_not_mix(tmp_path):
    lab = tmp_path / "99-demo"
    lab.mkdir()
    body = "from mlops_workbench.labs.checks import check\n" + "".join(
        f"@check('c{i}')\ndef c{i}(ctx):\n    pass\n" for i in range(30))
    (lab / "checks.py").write_text(body)
    results: list[list[str]] = []

    def load() -> None:
        results.append([c.id for c in load_checks(lab / "checks.py")])

    threads = [threading.Thread(target=load) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [[f"c{i}" for i in range(30)]] * 8
    (lab / "checks.py").write_text(body + "@check('c0')\ndef again(ctx):\n    pass\n")
    with pytest.raises(InputError, match="share the id 'c0'"):
        load_checks(lab / "checks.py")


def test_one_set_of_default_ports():
    from mlops_workbench import doctor
    from mlops_workbench.cli import rollout, serve

    ports = settings.DEFAULT_PORTS
    assert set(doctor.DEFAULT_PORTS) == set(ports.values())
    assert tracking.DEFAULT_PORT == ports["mlflow"]
    assert inspect.signature(serve.serve).parameters["port"].default.default == ports["serve"]
    assert inspect.signature(rollout.router).parameters["port"].default.default == ports["router"]
    readme, base = (ROOT / "README.md").read_text(), settings.BASE_PORTS
    assert f"workbench serve --model-uri models:/iris@production --port {base['serve']}" in readme
    assert re.search(rf"workbench router .*--port {base['router']}", readme)


def test_port_offset_moves_every_default_port_and_a_bad_one_names_the_fix():
    show = "from mlops_workbench import settings, tracking; print(settings.DEFAULT_PORTS, tracking.DEFAULT_PORT)"
    env = {**os.environ, "WORKBENCH_PORT_OFFSET": "300"}
    out = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "{'mlflow': 5300, 'serve': 8300, 'router': 8380, 'prometheus': 9390, 'jupyter': 9188} 5300"
    env["WORKBENCH_PORT_OFFSET"] = "ten"
    bad = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "WORKBENCH_PORT_OFFSET='ten' is not a whole number" in bad.stderr


def test_services_start_through_the_workbench_cli():
    from mlops_workbench import procs

    assert procs.workbench_cmd("serve", "--port", "1")[1:3] == ["-m", "mlops_workbench.cli.main"]
    router = (SRC / "rollout" / "router.py").read_text()
    assert "argparse" not in router and "__main__" not in router


def test_a_recycled_pid_is_never_taken_for_a_service(tmp_path):
    import json
    import signal

    from mlops_workbench import procs

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    try:
        record = procs.Service(name="ghost", pid=bystander.pid, port=1, cmd=["ghost"], log="x", started="1")
        (settings.layout(tmp_path).run).mkdir(parents=True)
        (settings.layout(tmp_path).run / "ghost.json").write_text(json.dumps(record.__dict__))
        assert procs.get("ghost", tmp_path) is None
        (settings.layout(tmp_path).run / "ghost.json").write_text(json.dumps(record.__dict__))
        assert procs.stop("ghost", tmp_path) is False
        assert bystander.poll() is None, "stop() signalled a process that only reused the recorded pid"
    finally:
        bystander.send_signal(signal.SIGKILL)
        bystander.wait()


def test_a_service_that_lost_its_port_to_another_program_is_refused_not_taken(tmp_path, monkeypatch):
    """Two state folders starting MLflow at once both see the default port free; the loser must not adopt the
    winner's server (its registry is another one), but fail with PortClash so tracking.up moves to a free port."""
    from http.server import BaseHTTPRequestHandler, HTTPServer

    from mlops_workbench import procs

    class Healthy(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    winner = HTTPServer(("127.0.0.1", 0), Healthy)
    threading.Thread(target=winner.serve_forever, daemon=True).start()
    port = winner.server_address[1]
    monkeypatch.setattr(procs, "port_in_use", lambda p: False)  # the moment both saw the port free
    try:
        with pytest.raises(procs.PortClash, match=f"Port {port} answered, but another program listens on it"):
            procs.start("late", [sys.executable, "-c", "import time; time.sleep(60)"], port, home=tmp_path)
        assert procs.get("late", tmp_path) is None and procs.running(tmp_path) == []
    finally:
        winner.shutdown()


# The keys of the two append-only logs that name nothing else in the package: reading them by key outside
# registry/audit.py and rollout/events.py means a module bypasses the typed records (AuditEntry, RolloutEvent).
LOG_KEYS = {"ts", "action", "outcome", "replaced", "registered_by", "approver", "gate", "rollout", "type",
            "decision", "totals", "bound_s"}
LOG_OWNERS = {"registry/audit.py", "rollout/events.py"}
# (file, key) pairs where the same word keys a different dict, each with what that dict is
OTHER_DICTS = {
    ("fielderrors.py", "type"): "pydantic's error dicts",
    ("rollout/policy.py", "type"): "pydantic's error dicts",
    ("rollout/router.py", "type"): "ASGI messages",
    ("serving/hotpath.py", "type"): "ASGI messages",
    ("rollout/controller.py", "action"): "the operator's request file (rollout/state.py)",
    ("rollout/dashboard.py", "decision"): "the dashboard's own summary",
    ("registry/panel.py", "gate"): "approval tags on a model version (registry/approvals.py)",
    ("registry/panel.py", "approver"): "approval tags on a model version (registry/approvals.py)",
    ("cli/drill_interview.py", "outcome"): "the interview's progress record",
    ("03-registry-promotion/checks.py", "approver"): "the approval record (registry/approvals.py)",
    ("03-registry-promotion/checks.py", "registered_by"): "model version tags",
}


def _keys_read(tree: ast.AST):
    """(line, key) for every ``x["key"]`` and ``x.get("key")`` (also ``pop``, ``setdefault``) with a literal key."""
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant):
            key = node.slice.value
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
              and node.func.attr in ("get", "pop", "setdefault") and node.args and isinstance(node.args[0], ast.Constant)):
            key = node.args[0].value
        if isinstance(key, str):
            yield node.lineno, key


def test_only_their_owner_modules_read_the_audit_and_event_logs_by_key():
    from mlops_workbench.registry.audit import AuditEntry
    from mlops_workbench.rollout.events import MODELS

    fields = set(AuditEntry.model_fields).union(*(model.model_fields for model in MODELS.values()))
    assert LOG_KEYS <= fields, "every watched key is a field of one of the records"
    files = [(p, p.relative_to(SRC).as_posix()) for p in SRC.rglob("*.py") if "templates" not in p.parts]
    files += [(p, p.relative_to(ROOT / "labs").as_posix()) for p in ROOT.glob("labs/*/*.py")]
    reads = [(name, line, key) for path, name in files if name not in LOG_OWNERS
             for line, key in _keys_read(ast.parse(path.read_text())) if key in LOG_KEYS]
    offenders = [f"{name}:{line} [{key!r}]" for name, line, key in reads if (name, key) not in OTHER_DICTS]
    assert offenders == [], ("read these through AuditEntry / RolloutEvent attributes (registry.audit.read, "
                             "rollout.events.read), not by key")
    assert set(OTHER_DICTS) == {(name, key) for name, _, key in reads}, "an exemption no file needs any more"


def test_the_ownership_scan_sees_a_log_key_read_by_key():
    code = 'entries = [e for e in audit.read() if e.get("outcome") == "promoted" and e["ts"]]\nevent.pop("rollout")\n'
    assert sorted(key for _, key in _keys_read(ast.parse(code))) == ["outcome", "rollout", "ts"]
