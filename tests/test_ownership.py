"""One owner per concern: MLflow URIs, errors and exit codes, params, the state folder's layout, phases,
check collection, processes, service start and default ports."""

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
from mlops_workbench import errors, paramspec, settings, tracking
from mlops_workbench.errors import InputError, NotFoundError, TrackingServerDown, WorkbenchError
from mlops_workbench.labs.checks import load_checks
from mlops_workbench.rollout import state as st
from mlops_workbench.workbench import Workbench

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


def test_only_procs_starts_or_signals_processes():
    """Every child process starts through procs.spawn and every kill goes through procs, so each one is stopped
    the same way (its whole process group, waited for until it has gone)."""
    owned = {
        "Popen",
        "killpg",
        "kill",
        "fork",
        "forkpty",
        "spawnv",
        "spawnvp",
        "posix_spawn",
        "create_subprocess_exec",
        "create_subprocess_shell",
    }
    offenders = []
    for path in SRC.rglob("*.py"):
        if path.parent == SRC / "procs" or "templates" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            name = node.attr if isinstance(node, ast.Attribute) else node.id if isinstance(node, ast.Name) else None
            if name in owned and (name != "kill" or isinstance(node, ast.Attribute) and _is_os(node.value)):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno} {name}")
    assert offenders == [], "start processes with procs.spawn and end them with Handle.stop or procs.end"


def test_only_tools_and_procs_run_commands():
    """External commands run through tools.call/run/probe (wait for the end) or procs (background services): one
    place that knows timeouts, stdin, missing programs and the error each raises."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if path == SRC / "tools.py" or path.parent == SRC / "procs" or "templates" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] + ([node.module] if isinstance(node, ast.ImportFrom) else [])
                if "subprocess" in names:
                    offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert offenders == [], "run commands with mlops_workbench.tools.call (or run/probe)"


def _is_os(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id == "os"


def test_every_exception_class_derives_from_workbench_error():
    strays = []
    for module in _modules():
        for name, obj in vars(module).items():
            if inspect.isclass(obj) and issubclass(obj, BaseException) and obj.__module__ == module.__name__:
                if not issubclass(obj, WorkbenchError):
                    strays.append(f"{module.__name__}.{name}")
    assert strays == []


def _workbench(*args: str, env: dict | None = None, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "mlops_workbench.cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=120,
    )


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


def test_only_the_cli_root_turns_errors_into_exit_codes():
    """Commands raise a WorkbenchError (or Failed for a bad verdict); cli/main.py alone maps it to typer.Exit."""
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        if path != SRC / "cli" / "main.py"
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if "typer.Exit(" in line
    ]
    assert offenders == []


def test_only_the_output_module_makes_consoles():
    offenders = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path in SRC.rglob("*.py")
        if path != SRC / "output.py" and "templates" not in path.parts
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "Console"
    ]
    assert offenders == []


def test_alias_names_are_spelled_once():
    """Code names registry aliases through the Alias enum; only alias.py spells them (messages may quote them)."""
    from mlops_workbench.alias import PROMOTABLE, Alias
    from mlops_workbench.registry import ALIASES

    assert ALIASES == PROMOTABLE and all(alias == alias.value for alias in Alias)
    spelled = re.compile(r"""(?<![\w.'{])"(production|staging|previous)"(?![\w'])|\}@production""")
    offenders = [
        f"{path.relative_to(SRC)}:{number}"
        for path in SRC.rglob("*.py")
        if path != SRC / "alias.py" and "templates" not in path.parts
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if spelled.search(line) and not line.lstrip().startswith(("#", '"""', "``")) and "``" not in line
    ]
    assert offenders == []


def test_tracking_uri_is_the_state_folders_server_and_never_a_local_store(home, monkeypatch, wb):
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    with pytest.raises(TrackingServerDown, match="workbench mlflow up"):
        tracking.uri(wb)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:///mlflow.db")  # never a store of MLflow's own
    with pytest.raises(TrackingServerDown):
        tracking.uri(wb)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.example:5000/")  # an external server, named
    assert tracking.uri(wb) == "http://mlflow.example:5000"


def test_params_one_reader_one_rule(tmp_path, monkeypatch):
    with pytest.raises(NotFoundError, match="git checkout -- params.yaml"):
        paramspec.load_params(path=tmp_path / "params.yaml")
    (tmp_path / "params.yaml").write_text("train: {C: 2.0}\n")
    assert paramspec.load_params("registry", path=tmp_path / "params.yaml") == {}
    (tmp_path / "params.yaml").write_text("registry: [1, 2]\n")
    with pytest.raises(InputError, match="registry"):
        paramspec.load_params("registry", path=tmp_path / "params.yaml")
    project = tmp_path / "project"
    (project / "labs").mkdir(parents=True)
    (project / "params.yaml").write_text("registry: {model_name: flowers}\n")
    monkeypatch.setenv(settings.PROJECT_ENV, str(project))
    assert paramspec.model_name() == "flowers"
    from mlops_workbench.registry.gate import RegistryParams

    assert RegistryParams.load().model_name == "flowers"


def test_the_layout_owns_every_path_under_the_state_folder(tmp_path):
    paths = settings.layout(tmp_path)
    found = [
        paths.mlflow_db,
        paths.artifacts,
        paths.run,
        paths.log("x"),
        paths.audit_log(),
        paths.locks,
        paths.rollout_events,
        paths.rollout_state,
        paths.rollout_request,
        paths.rollout_ports,
        paths.prometheus,
        paths.workspace("02-versioning"),
        paths.deployments,
        paths.dvc_remote,
        paths.reproduction("r1"),
        paths.results,
        paths.pipeline,
        paths.pipeline_lab("03-registry-promotion"),
        paths.check_log("00-welcome"),
        paths.admin_token,
        paths.drills.root,
        paths.drills.session,
        paths.drills.reports,
        paths.drills.latest_report,
        paths.drills.interview,
        paths.drills.interviews,
        paths.drills.folder("d1"),
    ]
    assert len(set(found)) == len(found) and all(p.is_relative_to(tmp_path) for p in found)
    assert not any(p.exists() for p in found), "a layout only names paths, it creates none"
    assert tracking.store_paths(Workbench.from_env(tmp_path)) == (paths.mlflow_db, paths.artifacts)
    literal = re.compile(
        r"""home\)?\s*/\s*["'](mlflow|logs|run|audit|rollout|workspaces|results|locks|drills|pipeline)["']"""
    )
    owners = [
        p
        for p in [*SRC.rglob("*.py"), *ROOT.glob("labs/*/checks.py")]
        if p.name != "settings.py" and literal.search(p.read_text())
    ]
    assert owners == []


def test_rollout_phase_is_an_enum_even_when_read_back_from_json(tmp_path):
    state = st.RolloutState.new("2", {"steps": []})
    state.phase = st.RolloutPhase.ABORTED
    st.save(Workbench.from_env(tmp_path), state)
    loaded = st.load(Workbench.from_env(tmp_path))
    assert loaded.phase is st.RolloutPhase.ABORTED and loaded.done


def test_checks_are_collected_per_load_so_parallel_graders_do_not_mix(tmp_path):
    lab = tmp_path / "99-demo"
    lab.mkdir()
    body = "from mlops_workbench.labs.checks import check\n" + "".join(
        f"@check('c{i}')\ndef c{i}(ctx):\n    pass\n" for i in range(30)
    )
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

    ports = settings.default_ports()
    assert set(doctor.default_ports()) == set(ports.values())
    assert inspect.signature(serve.serve).parameters["port"].default.default() == ports["serve"]
    assert inspect.signature(rollout.router).parameters["port"].default.default() == ports["router"]
    readme, base = (ROOT / "README.md").read_text(), settings.BASE_PORTS
    assert f"workbench serve --model-uri models:/iris@production --port {base['serve']}" in readme
    assert re.search(rf"workbench router .*--port {base['router']}", readme)


def test_port_offset_moves_every_default_port_and_a_bad_one_names_the_fix():
    show = "from mlops_workbench import settings; print(settings.default_ports(), settings.default_port('mlflow'))"
    env = {**os.environ, "WORKBENCH_PORT_OFFSET": "300"}
    out = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True).stdout
    assert (
        out.strip()
        == "{'mlflow': 5300, 'serve': 8300, 'router': 8380, 'prometheus': 9390, 'jupyter': 9188, 'alertmanager': 9393, 'monitor': 9395} 5300"
    )
    env["WORKBENCH_PORT_OFFSET"] = "ten"
    bad = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True)
    assert bad.returncode != 0 and "WORKBENCH_PORT_OFFSET='ten' is not a whole number" in bad.stderr


def test_default_ports_follow_the_offset_of_the_moment_not_of_the_import(monkeypatch):
    from mlops_workbench.cli import serve

    monkeypatch.setenv(settings.PORT_OFFSET_ENV, "7")
    assert settings.default_port("serve") == 8007
    wb = Workbench.from_env()
    assert wb.port("serve") == 8007 and wb.port_reason("serve") == "8007 (8000 + WORKBENCH_PORT_OFFSET=7)"
    assert inspect.signature(serve.serve).parameters["port"].default.default() == 8007
    monkeypatch.delenv(settings.PORT_OFFSET_ENV)
    assert settings.default_ports()["router"] == 8080
    assert Workbench.from_env().port_reason("router") == "8080 (the default)"
    assert wb.port("serve") == 8007, "a workbench keeps the offset it was made with"


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
        assert procs.get(Workbench.from_env(tmp_path), "ghost") is None
        (settings.layout(tmp_path).run / "ghost.json").write_text(json.dumps(record.__dict__))
        assert procs.stop(Workbench.from_env(tmp_path), "ghost") is False
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
            procs.start(
                Workbench.from_env(tmp_path), "late", [sys.executable, "-c", "import time; time.sleep(60)"], port
            )
        assert (
            procs.get(Workbench.from_env(tmp_path), "late") is None
            and procs.running(Workbench.from_env(tmp_path)) == []
        )
    finally:
        winner.shutdown()


HTTP_OWNERS = {
    "procs/__init__.py": "the shared connection pool and the health probe of a starting service",
    "serving/client.py": "the model servers, the router and the monitor service",
    "rollout/prometheus.py": "Prometheus' query API",
    "monitoring/alertmanager.py": "Alertmanager's API",
    "tracking.py": "the MLflow tracking server's REST API",
}


def _checked_sources() -> list[Path]:
    """Every module of the package (not the learner project templates) and every lab's checks."""
    return sorted([p for p in SRC.rglob("*.py") if "templates" not in p.parts] + list(ROOT.glob("labs/*/checks.py")))


def _imports(tree: ast.AST, module: str) -> list[int]:
    lines = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name.split(".")[0] == module for a in node.names):
            lines.append(node.lineno)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").split(".")[0] == module and not node.level:
            lines.append(node.lineno)
    return lines


def test_one_client_per_server_api_only_the_clients_import_httpx():
    owners = {SRC / name for name in HTTP_OWNERS}
    offenders = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _checked_sources()
        if path not in owners
        for line in _imports(ast.parse(path.read_text()), "httpx")
    ]
    assert offenders == [], (
        f"these modules speak HTTP themselves: go through the client of that server instead "
        f"({', '.join(f'{k} for {v}' for k, v in HTTP_OWNERS.items())})"
    )


def test_the_server_paths_are_spelled_in_one_module():
    """Routes and calls name paths through serving/paths.py; only the generic ``/health`` probe of procs and
    the other servers' own ``/health`` (MLflow, the Argo analysis app) spell theirs."""
    from mlops_workbench.serving import paths

    holders = [path.relative_to(SRC).as_posix() for path in SRC.rglob("*.py") if "/admin/reload" in path.read_text()]
    assert holders == ["serving/paths.py"]
    spelled = {
        paths.PREDICT,
        paths.INVOCATIONS,
        paths.VERSION,
        paths.METRICS,
        paths.OPENAPI,
        paths.RELOAD,
        paths.FAULTS,
        paths.WEIGHTS,
        paths.SHADOW,
        paths.MONITOR_STATUS,
        paths.ADMIN_PREFIX,
        paths.UPSTREAM_HEADER,
        paths.SHADOW_HEADER,
        paths.REQUEST_ID_HEADER,
    }
    other_health = {"procs/__init__.py", "tracking.py", "k8s/analysis_app.py"}
    strays = []
    for path in _checked_sources():
        name = path.relative_to(SRC).as_posix() if path.is_relative_to(SRC) else path.relative_to(ROOT).as_posix()
        if name == "serving/paths.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and (
                node.value in spelled or node.value == paths.HEALTH and name not in other_health
            ):
                strays.append(f"{name}:{node.lineno} {node.value}")
    assert strays == [], "use the constants of mlops_workbench.serving.paths"


# The keys of the two append-only logs that name nothing else in the package: reading them by key outside
# registry/audit.py and rollout/events.py means a module bypasses the typed records (AuditEntry, RolloutEvent).
LOG_KEYS = {
    "ts",
    "action",
    "outcome",
    "replaced",
    "registered_by",
    "approver",
    "gate",
    "rollout",
    "type",
    "decision",
    "totals",
    "bound_s",
}
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
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("get", "pop", "setdefault")
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
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
    reads = [
        (name, line, key)
        for path, name in files
        if name not in LOG_OWNERS
        for line, key in _keys_read(ast.parse(path.read_text()))
        if key in LOG_KEYS
    ]
    offenders = [f"{name}:{line} [{key!r}]" for name, line, key in reads if (name, key) not in OTHER_DICTS]
    assert offenders == [], (
        "read these through AuditEntry / RolloutEvent attributes (registry.audit.read, rollout.events.read), not by key"
    )
    assert set(OTHER_DICTS) == {(name, key) for name, _, key in reads}, "an exemption no file needs any more"


def test_the_ownership_scan_sees_a_log_key_read_by_key():
    code = 'entries = [e for e in audit.read() if e.get("outcome") == "promoted" and e["ts"]]\nevent.pop("rollout")\n'
    assert sorted(key for _, key in _keys_read(ast.parse(code))) == ["outcome", "rollout", "ts"]


def _defaults(fn: ast.FunctionDef | ast.AsyncFunctionDef) -> dict[str, ast.expr]:
    a = fn.args
    positional = a.posonlyargs + a.args
    found = dict(zip([x.arg for x in positional[len(positional) - len(a.defaults) :]], a.defaults, strict=True))
    found.update({x.arg: d for x, d in zip(a.kwonlyargs, a.kw_defaults, strict=True) if d is not None})
    return found


def test_the_state_folder_comes_from_the_workbench_its_entry_point_made():
    """No function falls back to the environment's state folder: no ``home`` parameter defaulting to None, no
    optional ``Workbench``, and only ``Workbench.from_env`` calls ``settings.home()``."""
    offenders = []
    for path in SRC.rglob("*.py"):
        if "templates" in path.parts:
            continue
        where = path.relative_to(SRC)
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                defaults = _defaults(node)
                a = node.args
                for arg in a.posonlyargs + a.args + a.kwonlyargs:
                    default = defaults.get(arg.arg)
                    none = isinstance(default, ast.Constant) and default.value is None
                    if arg.arg == "home" and none and path.name != "workbench.py":  # from_env(home=None) reads it
                        offenders.append(f"{where}:{node.lineno} {node.name}(home=None)")
                    annotation = ast.unparse(arg.annotation) if arg.annotation else ""
                    if "Workbench" in annotation and ("None" in annotation or "Optional" in annotation):
                        offenders.append(f"{where}:{node.lineno} {node.name}({arg.arg}: {annotation})")
            elif isinstance(node, ast.Attribute) and ast.unparse(node) == "settings.home":
                if path.name != "workbench.py":
                    offenders.append(f"{where}:{node.lineno} settings.home")
            elif isinstance(node, ast.ImportFrom) and (node.module or "").endswith("settings"):
                offenders += [f"{where}:{node.lineno} imports home" for a in node.names if a.name == "home"]
            elif isinstance(node, ast.Call) and path.name == "settings.py" and ast.unparse(node.func) == "home":
                offenders.append(f"{where}:{node.lineno} home()")
    assert offenders == []


def test_a_workbench_is_read_from_the_environment_once_and_creates_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path / "state"))
    monkeypatch.setenv(settings.PORT_OFFSET_ENV, "300")
    wb = Workbench.from_env()
    assert wb.home == (tmp_path / "state").resolve() and not wb.home.exists(), "making one creates no folder"
    assert wb.port("mlflow") == 5300 and wb.layout.mlflow_db == wb.home / "mlflow" / "mlflow.db"
    assert wb.env()[settings.HOME_ENV] == str(wb.home) and wb.env()[settings.PORT_OFFSET_ENV] == "300"
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path / "elsewhere"))
    assert wb.home == (tmp_path / "state").resolve(), "a made workbench never follows the environment"
    assert Workbench.from_env(tmp_path / "given").home == (tmp_path / "given").resolve()
    assert wb.at(tmp_path / "drill").port_offset == 300
