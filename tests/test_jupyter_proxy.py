"""The MLflow tile's forwarder (``mlops_workbench.jupyter.proxy``) and the default-port choice of every service.

The forwarder runs as jupyter-server-proxy runs it (the spec's command, ``{port}`` filled in); a tiny HTTP server
recorded as the state folder's ``mlflow`` service on a non-default port stands in for the tracking server (the
real MLflow UI through JupyterLab is tests/test_browser_mlflow.py).
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import asdict
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from mlops_workbench import procs, settings, tracking
from mlops_workbench.cli import services
from mlops_workbench.cli.main import app
from mlops_workbench.errors import ServiceError
from mlops_workbench.jupyter import proxy
from mlops_workbench.workbench import Workbench

# stands in for `mlflow server`: answers /health and echoes every other request (method, path, body, Host)
ECHO = """
import json, sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class Echo(BaseHTTPRequestHandler):
    def answer(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode()
        reply = json.dumps({"method": self.command, "path": self.path, "body": body,
                            "host": self.headers["Host"]}).encode()
        self.send_response(201 if self.command == "POST" else 200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(reply)))
        self.send_header("X-Upstream", "echo")
        self.end_headers()
        self.wfile.write(reply)

    do_GET = do_POST = answer

    def log_message(self, *args):
        pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Echo).serve_forever()
"""


def listening() -> socket.socket:
    """A socket that listens on a free loopback port: "another program" holding that port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def free_pair() -> int:
    """A port that is free, with the one above it free as well."""
    while procs.port_in_use((port := procs.free_port()) + 1):
        pass
    return port


@contextmanager
def forwarder(home: Path) -> Iterator[str]:
    """The forwarder started from the jupyter-server-proxy spec, as jupyter-server-proxy starts it."""
    port = procs.free_port()
    spec = proxy.mlflow_server()
    cmd = [part.replace("{port}", str(port)) for part in spec["command"]]
    proc = subprocess.Popen(
        cmd, env={**os.environ, settings.HOME_ENV: str(home)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + spec["timeout"]
        while not procs.port_in_use(port):
            assert proc.poll() is None, proc.stderr.read().decode()
            assert time.monotonic() < deadline, "the forwarder did not listen in time"
            time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv(settings.HOME_ENV, str(tmp_path))
    yield tmp_path
    procs.stop_all(Workbench.from_env(tmp_path))


def test_the_tile_runs_the_forwarder_on_the_port_jupyter_server_proxy_picks() -> None:
    spec = proxy.mlflow_server()
    assert spec["command"][-1] == "{port}" and spec["port"] == 0
    assert spec["launcher_entry"]["title"] == "MLflow"
    assert 0 < spec["timeout"] <= 60


def test_without_a_tracking_server_the_tile_says_at_once_how_to_start_one(home: Path) -> None:
    with forwarder(home) as url:
        started = time.monotonic()
        reply = httpx.get(url + "/", timeout=10)
        assert time.monotonic() - started < 2
    assert reply.status_code == 503
    text = reply.text.split("<p>", 1)[1].removesuffix("</p>\n")
    assert "\n" not in text and "<" not in text
    assert text.startswith(f"No MLflow tracking server is running for the state folder {home}")
    assert "`workbench mlflow up`" in text and "`tracking.up(lab.wb)` in a notebook" in text
    assert reply.headers["cache-control"] == "no-store"


def test_the_forwarder_finds_the_server_on_any_port_at_every_request(home: Path, wb) -> None:
    with forwarder(home) as url:
        assert httpx.get(url + "/", timeout=10).status_code == 503  # nothing runs yet
        port = procs.free_port()
        assert port != settings.default_port("mlflow")
        procs.start(wb, tracking.SERVICE, [sys.executable, "-c", ECHO, str(port)], port, health_path="/health")
        assert tracking.url(wb) == f"http://127.0.0.1:{port}"

        got = httpx.get(url + "/static-files/a%2Fb?x=1&y=%20", timeout=10)
        assert got.status_code == 200 and got.headers["x-upstream"] == "echo"
        assert got.json() == {
            "method": "GET",
            "path": "/static-files/a%2Fb?x=1&y=%20",
            "body": "",
            "host": f"127.0.0.1:{port}",
        }
        posted = httpx.post(url + "/ajax-api/2.0/mlflow/experiments/search", json={"max_results": 5}, timeout=10)
        assert posted.status_code == 201
        assert json.loads(posted.json()["body"]) == {"max_results": 5}

        procs.stop(wb, tracking.SERVICE)  # stopped again: the next request says so
        assert httpx.get(url + "/", timeout=10).status_code == 503


def test_a_recorded_server_that_does_not_answer_is_a_one_line_502(home: Path) -> None:
    port = procs.free_port()  # nothing listens there, but the record says the tracking server does
    me = procs.Service(tracking.SERVICE, os.getpid(), port, ["mlflow"], "log", procs.start_time(os.getpid()))
    record = settings.layout(home).run / f"{tracking.SERVICE}.json"
    record.parent.mkdir(parents=True, exist_ok=True)
    try:  # removed before the fixture stops the state folder's services: this process is not one to stop
        record.write_text(json.dumps(asdict(me)))
        with forwarder(home) as url:
            reply = httpx.get(url + "/", timeout=15)
    finally:
        record.unlink(missing_ok=True)
    assert reply.status_code == 502
    assert f"at http://127.0.0.1:{port} does not answer" in reply.text and "`workbench mlflow up`" in reply.text


def pin_default_port(monkeypatch: pytest.MonkeyPatch, service: str, port: int) -> Workbench:
    """A workbench whose default port of ``service`` is ``port``, as an offset of ``port - base`` would give (also
    for the workbench a command makes in the test; an ephemeral port may be above the offsets the variable allows)."""
    offset = port - settings.BASE_PORTS[service]
    monkeypatch.setattr(settings, "port_offset", lambda: offset)
    return Workbench.from_env()


def test_a_free_default_port_is_taken_silently(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    wb = pin_default_port(monkeypatch, "jupyter", port := procs.free_port())
    choice = procs.choose_port(wb, "jupyter")
    assert choice.port == port and choice.note is None
    assert capsys.readouterr().err == ""


def test_a_taken_default_port_moves_to_the_next_free_one_and_says_which_and_why(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    port = free_pair()
    wb = pin_default_port(monkeypatch, "jupyter", port)  # as if WORKBENCH_PORT_OFFSET were port - 8888
    with closing(socket.create_server(("127.0.0.1", port))):
        choice = procs.choose_port(wb, "jupyter")
    assert choice.port == port + 1
    line = (
        f"port {port} (8888 + WORKBENCH_PORT_OFFSET={port - 8888}) is taken by another program; "
        f"JupyterLab uses {port + 1}"
    )
    assert choice.note == line and capsys.readouterr().err == line + "\n"


def test_without_an_offset_the_message_says_it_was_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    wb = pin_default_port(monkeypatch, "mlflow", 5000)
    assert procs.PortChoice("mlflow", 5001, wb.port("mlflow"), wb.port_reason("mlflow")).note == (
        "port 5000 (the default) is taken by another program; MLflow tracking server uses 5001"
    )


def test_workbench_lab_listens_on_8888_plus_the_offset_or_the_next_free_port(
    monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    port = free_pair()
    pin_default_port(monkeypatch, "jupyter", port)
    ran: list[list[str]] = []
    monkeypatch.setattr(os, "execv", lambda exe, argv: ran.append(argv))
    services.lab(port=None, browser=False)
    assert f"--ServerApp.port={port}" in ran[-1] and "--ServerApp.port_retries=0" in ran[-1]
    with closing(socket.create_server(("127.0.0.1", port))):
        services.lab(port=None, browser=False)
    assert f"--ServerApp.port={port + 1}" in ran[-1]
    assert capsys.readouterr().err.strip().endswith(f"is taken by another program; JupyterLab uses {port + 1}")


def test_offset_gives_jupyter_its_own_default_port() -> None:
    show = "from mlops_workbench.workbench import Workbench as W; w = W.from_env(); print(w.port('jupyter'), w.port_reason('jupyter'))"
    env = {**os.environ, settings.PORT_OFFSET_ENV: "100"}
    out = subprocess.run([sys.executable, "-c", show], env=env, capture_output=True, text=True, check=True).stdout
    assert out.strip() == "8988 8988 (8888 + WORKBENCH_PORT_OFFSET=100)"


def test_a_service_that_loses_its_port_at_the_same_moment_starts_on_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_pair()
    wb = pin_default_port(monkeypatch, "mlflow", port)
    squatters: list[socket.socket] = []

    def start(listen: int) -> int:
        if not squatters:  # another program takes the port between the check and the start
            squatters.append(socket.create_server(("127.0.0.1", listen)))
            raise procs.PortClash(f"port {listen} lost")
        return listen

    try:
        assert procs.on_default_port(wb, "mlflow", start) == port + 1
    finally:
        squatters[0].close()

    def broken(listen: int) -> int:
        raise ServiceError("mlflow exited")

    with pytest.raises(ServiceError, match="mlflow exited"):  # a failure with the port still free is not retried
        procs.on_default_port(wb, "mlflow", broken)


def free_run(length: int) -> int:
    """A port that is free, with the ``length - 1`` ports above it free as well."""
    while any(procs.port_in_use((port := procs.free_port()) + i) for i in range(1, length)):
        pass
    return port


def test_starters_at_the_same_moment_never_pick_the_same_port(monkeypatch: pytest.MonkeyPatch) -> None:
    """Four state folders start MLflow at once: each sees the default port free, and only the claim keeps them
    apart (without it three lose the port twice and fail)."""
    port = free_run(4)
    wb = pin_default_port(monkeypatch, "mlflow", port)
    gate = threading.Barrier(4)
    listening: list[socket.socket] = []

    def start(listen: int) -> int:
        time.sleep(0.3)  # a server takes a while before it listens
        try:
            listening.append(socket.create_server(("127.0.0.1", listen)))
        except OSError:
            raise procs.PortClash(f"port {listen} lost") from None
        return listen

    def starter() -> int:
        gate.wait()
        return procs.on_default_port(wb, "mlflow", start)

    try:
        with ThreadPoolExecutor(4) as pool:
            ports = sorted(pool.map(lambda _: starter(), range(4)))
    finally:
        for sock in listening:
            sock.close()
    assert ports == [port, port + 1, port + 2, port + 3]


def test_a_port_claimed_by_another_process_counts_as_taken(monkeypatch: pytest.MonkeyPatch) -> None:
    port = free_pair()
    holder = f"""
import sys
from mlops_workbench import procs, settings
from mlops_workbench.workbench import Workbench
settings.port_offset = lambda: {port - settings.BASE_PORTS["mlflow"]}
with procs.claim_port(Workbench.from_env(), "mlflow") as choice:
    print(choice.port, flush=True)
    sys.stdin.read()
"""
    proc = subprocess.Popen([sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == str(port)
        wb = pin_default_port(monkeypatch, "mlflow", port)
        assert procs.choose_port(wb, "mlflow").port == port + 1, "a port claimed by another starter is skipped"
    finally:
        proc.communicate("", timeout=30)
    assert procs.choose_port(wb, "mlflow").port == port, "the claim ends with the process that held it"


def test_serve_and_router_name_the_taken_port_and_why(monkeypatch: pytest.MonkeyPatch) -> None:
    with closing(listening()) as squatter:
        port = squatter.getsockname()[1]
        wb = pin_default_port(monkeypatch, "router", port)
        with pytest.raises(
            ServiceError,
            match=rf"port {port} \(8080 \+ WORKBENCH_PORT_OFFSET=\d+\) is taken by "
            "another program, so the traffic router cannot start",
        ):
            procs.ensure_free(wb, "router", port)
        result = CliRunner().invoke(app, ["serve", "--model-uri", "models:/iris/1", "--port", str(port)])
    assert result.exit_code == 2
    assert f"port {port} (--port) is taken by another program, so the model server cannot start" in result.output
