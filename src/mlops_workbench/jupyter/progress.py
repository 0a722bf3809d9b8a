"""The Progress tile in JupyterLab's launcher (a jupyter-server-proxy server entry point).

``pyproject.toml`` registers :func:`progress_server` under ``jupyter_serverproxy_servers``; jupyter-server-proxy
shows a "Progress" tile, starts ``python -m mlops_workbench.jupyter.progress PORT`` on a free port of its choosing
the first time ``<jupyter url>/progress/`` is opened, and proxies to it. The page is built afresh on every request
from the state folder JupyterLab runs with (``GET /``: HTML, ``GET /progress.json``: the record).
"""

from __future__ import annotations

import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, cast

from mlops_workbench.errors import EXIT_ERROR, WorkbenchError
from mlops_workbench.workbench import Workbench


def progress_server() -> dict[str, Any]:
    """The jupyter-server-proxy spec of the progress page."""
    return {
        "command": [sys.executable, "-m", "mlops_workbench.jupyter.progress", "{port}"],
        "timeout": 60,
        "absolute_url": False,
        "new_browser_tab": True,
        "launcher_entry": {"title": "Progress", "enabled": True},
    }


class ProgressServer(ThreadingHTTPServer):
    """The page's HTTP server, holding the workbench whose progress it shows."""

    def __init__(self, wb: Workbench, port: int) -> None:
        super().__init__(("127.0.0.1", port), ProgressHandler)
        self.wb = wb


class ProgressHandler(BaseHTTPRequestHandler):
    """Answers ``/`` with the page and ``/progress.json`` with the record; 404 naming both otherwise."""

    def do_GET(self) -> None:
        from mlops_workbench.labs.progress import build
        from mlops_workbench.labs.progress_view import page

        path = self.path.split("?", 1)[0]
        if path not in ("/", "/index.html", "/progress.json"):
            return self._send(
                HTTPStatus.NOT_FOUND,
                "text/plain",
                f"No page {path}: the progress page is / and its record /progress.json.",
            )
        try:
            record = build(cast(ProgressServer, self.server).wb)
        except WorkbenchError as exc:  # e.g. no checkout found: the message names the fix
            return self._send(HTTPStatus.SERVICE_UNAVAILABLE, "text/plain", str(exc))
        if path == "/progress.json":
            return self._send(HTTPStatus.OK, "application/json", record.model_dump_json(indent=1))
        return self._send(HTTPStatus.OK, "text/html", page(record))

    def _send(self, status: HTTPStatus, kind: str, body: str) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", f"{kind}; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")  # always the state of now
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # jupyter-server-proxy's own log shows the requests


def main(argv: list[str] | None = None) -> None:
    """Serve the progress page on 127.0.0.1:PORT until stopped (jupyter-server-proxy stops it with JupyterLab)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        print(
            f"error: pass the port to serve on, as in `python -m mlops_workbench.jupyter.progress 8765` "
            f"(got {' '.join(args) or 'nothing'})",
            file=sys.stderr,
        )
        raise SystemExit(EXIT_ERROR)
    with ProgressServer(Workbench.from_env(), int(args[0])) as server:
        server.serve_forever()


if __name__ == "__main__":
    main()
