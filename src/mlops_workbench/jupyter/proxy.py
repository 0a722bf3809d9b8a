"""The MLflow tile in JupyterLab's launcher: ``<jupyter url>/mlflow/`` reaches the tracking server wherever it runs.

``pyproject.toml`` registers :func:`mlflow_server` under ``jupyter_serverproxy_servers``. jupyter-server-proxy
then shows an "MLflow" tile, starts ``python -m mlops_workbench.jupyter.proxy PORT`` on a free port of its
choosing the first time the tile is used, and proxies ``<jupyter url>/mlflow/`` to it. That process is a small
forwarder: for every request it asks :func:`tracking.url` where the state folder's tracking server runs right now
(``workbench mlflow up`` may have moved it off its default port) and streams the request and the answer through.
When no tracking server runs, it answers at once (503) with one line saying how to start one; it never starts
one itself (``workbench mlflow up`` and :mod:`mlops_workbench.procs` do that). ``/proxy/<port>/`` still reaches
the tracking server directly.
"""

from __future__ import annotations

import html
import sys
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from mlops_workbench import tracking
from mlops_workbench.errors import TrackingServerDown
from mlops_workbench.workbench import Workbench

# headers of one connection, not of the request: never forwarded (aiohttp sets Host and the framing itself)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
    }
)
WB = web.AppKey("workbench", Workbench)
CLIENT = web.AppKey("client", aiohttp.ClientSession)


def mlflow_server() -> dict[str, Any]:
    """The jupyter-server-proxy spec of the MLflow tile: the forwarder, on the port jupyter-server-proxy picks."""
    return {
        "command": [sys.executable, "-m", "mlops_workbench.jupyter.proxy", "{port}"],
        "port": 0,
        "timeout": 60,  # the forwarder answers within a second or two, even on a busy machine
        "absolute_url": False,
        "new_browser_tab": True,
        "launcher_entry": {"title": "MLflow", "enabled": True},
    }


def notice(status: int, text: str) -> web.Response:
    """A one-line page that reloads itself every few seconds, so it turns into the MLflow UI once the server runs."""
    page = (
        f'<!doctype html><meta charset="utf-8"><meta http-equiv="refresh" content="5">'
        f"<title>MLflow UI unavailable</title><p>{html.escape(text)}</p>\n"
    )
    return web.Response(status=status, text=page, content_type="text/html", headers={"Cache-Control": "no-store"})


async def forward(request: web.Request) -> web.StreamResponse:
    """Send ``request`` to the state folder's tracking server and stream its answer back, or say why not."""
    wb = request.app[WB]
    try:
        target = tracking.url(wb)
    except TrackingServerDown:
        return notice(
            503,
            f"No MLflow tracking server is running for the state folder {wb.home}: start one with "
            "`workbench mlflow up` in a terminal (or `tracking.up(lab.wb)` in a notebook); this page reloads "
            "by itself.",
        )
    headers = CIMultiDict((k, v) for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP)
    try:
        upstream = await request.app[CLIENT].request(
            request.method,
            URL(target + request.raw_path, encoded=True),
            headers=headers,
            data=request.content if request.body_exists else None,
            allow_redirects=False,
        )
    except aiohttp.ClientError as exc:
        return notice(
            502,
            f"The MLflow tracking server of the state folder {wb.home} at {target} does not answer "
            f"({type(exc).__name__}): if it is still starting this page reloads by itself, else restart "
            "it with `workbench mlflow down` and `workbench mlflow up`.",
        )
    try:
        response = web.StreamResponse(status=upstream.status, reason=upstream.reason)
        for key, value in upstream.headers.items():
            if key.lower() not in HOP_BY_HOP:
                response.headers.add(key, value)
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response
    finally:
        upstream.release()


def app(wb: Workbench) -> web.Application:
    """The forwarder for the tracking server of the state folder of ``wb``."""

    async def client(application: web.Application) -> AsyncIterator[None]:
        # bytes pass through as the server sent them (compressed or not); a big answer may take as long as it
        # takes, but a server that does not connect, or then sends nothing for a minute, is reported, not awaited
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=5, sock_read=60)
        async with aiohttp.ClientSession(auto_decompress=False, timeout=timeout) as session:
            application[CLIENT] = session
            yield

    application = web.Application()
    application[WB] = wb
    application.cleanup_ctx.append(client)
    application.router.add_route("*", "/{path:.*}", forward)
    return application


def main(argv: list[str] | None = None) -> None:
    """Run the forwarder on 127.0.0.1:PORT (jupyter-server-proxy starts it with the port it picked)."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1 or not args[0].isdigit():
        raise SystemExit(
            "usage: python -m mlops_workbench.jupyter.proxy PORT (jupyter-server-proxy runs this for "
            "the MLflow tile; to run MLflow itself use `workbench mlflow up`)"
        )
    web.run_app(app(Workbench.from_env()), host="127.0.0.1", port=int(args[0]), print=None, access_log=None)


if __name__ == "__main__":
    main()
