"""Helpers of the browser tests: JupyterLab started like `make lab`, Debian's Chromium driven by Playwright.

Never `playwright install`: the browser is Debian's ``chromium`` package (``.ci/run``
installs it). JupyterLab gets a galata config (``window.jupyterapp`` for commands) and
no token, on a free loopback port, in a fresh state folder.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx

from mlops_workbench import procs
from mlops_workbench.jupyter.lab import command

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = Path("/usr/bin/chromium")
SHOTS = ROOT / "build" / "screenshots"
SCRATCH = ROOT / "build" / "browser"  # scratch notebooks must live under JupyterLab's root (the project)
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
GALATA = "from jupyterlab.galata import configure_jupyter_server\nconfigure_jupyter_server(c)\n"


@contextmanager
def jupyterlab(home: Path, tmp: Path, env: dict[str, str] | None = None) -> Iterator[str]:
    """JupyterLab as `make lab` starts it (workbench.jupyter.lab.command) plus galata; yields its base URL."""
    config = tmp / "jupyter_galata_config.py"
    config.write_text(GALATA)
    port = procs.free_port()
    argv = command(ROOT, port=port, token="", open_browser=False, config=config)
    environ = {
        **os.environ,
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_PROJECT": str(ROOT),
        "PATH": f"{ROOT / '.venv' / 'bin'}:{os.environ.get('PATH', '')}",
        "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
        **(env or {}),
    }
    log = open(tmp / "jupyterlab.log", "wb")
    proc = subprocess.Popen(argv, cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {(tmp / 'jupyterlab.log').read_text()[-3000:]}")
            try:
                if httpx.get(f"{base}/api/status", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.5)
        else:
            raise RuntimeError("JupyterLab did not answer within 180 s")
        yield base
    finally:
        procs.signal_group(proc.pid, 15)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            procs.signal_group(proc.pid, 9)
            proc.wait(10)
        log.close()


@contextmanager
def chromium(profile: Path) -> Iterator[Any]:
    """Debian's headless Chromium as a Playwright browser context (1400x900), with its profile in ``profile``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        try:
            yield context
        finally:
            context.close()


def app_ready(page: Any, url: str) -> None:
    """Open JupyterLab at ``url`` with a fresh layout (no notebook left open by an earlier test) and wait until its
    application has started (``window.jupyterapp``, from galata)."""
    page.goto(f"{url}/lab/tree/notebooks?reset")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started !== undefined", timeout=180_000)
    page.evaluate("() => window.jupyterapp.started")


@contextmanager
def lab_page(home: Path, tmp_path_factory: Any, *, ready: bool = True) -> Iterator[tuple[Any, Any]]:
    """JupyterLab on the state folder ``home`` and Chromium; yields (browser, a page on JupyterLab's file browser,
    its application started unless ``ready=False``). Both stop afterwards."""
    with (
        jupyterlab(home, tmp_path_factory.mktemp("jupyter")) as url,
        chromium(tmp_path_factory.mktemp("chromium-profile")) as browser,
    ):
        page = browser.new_page()
        page.set_default_timeout(120_000)
        if ready:
            app_ready(page, url)
        else:
            page.goto(f"{url}/lab/tree/notebooks?reset")
        yield browser, page


def launcher_tile(page: Any, title: str, timeout: float = 120_000) -> Any:
    """The tile ``title`` of a new launcher, once JupyterLab in ``page`` has started."""
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started !== undefined", timeout=180_000)
    page.evaluate("() => window.jupyterapp.started")
    page.evaluate("() => window.jupyterapp.commands.execute('launcher:create')")
    tile = page.locator(".jp-LauncherCard:visible", has_text=title).first
    tile.wait_for(timeout=timeout)
    return tile


def write_notebook(path: Path, cells: list[str]) -> Path:
    """A scratch notebook (python3 kernel) with one code cell per source."""
    nb = {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {"cell_type": "code", "id": f"c{i}", "metadata": {}, "source": src, "outputs": [], "execution_count": None}
            for i, src in enumerate(cells)
        ],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(nb, indent=1))
    return path


OPEN = """async (path) => {
  const app = window.jupyterapp;
  const widget = await app.commands.execute('docmanager:open', {path, factory: 'Notebook'});
  await widget.context.ready;
  await widget.sessionContext.ready;
  return widget.id;
}"""

KERNEL = """() => {
  const w = window.jupyterapp.shell.currentWidget;
  const k = w && w.sessionContext && w.sessionContext.session && w.sessionContext.session.kernel;
  return k ? k.status : 'none';
}"""


def open_notebook(page: Any, path: str, timeout: float = 240.0) -> None:
    """Open ``path`` (relative to the project) in JupyterLab and wait until its kernel is idle."""
    page.evaluate(OPEN, path)
    wait_for_kernel(page, "idle", timeout)


def wait_for_kernel(page: Any, status: str, timeout: float) -> None:
    page.wait_for_function(f"() => ({KERNEL})() === '{status}'", timeout=timeout * 1000, polling=250)


def set_cell_source(page: Any, cell_id: str, text: str) -> None:
    """Type ``text`` into the cell ``cell_id`` of the current notebook through its editor (select all, insert)."""
    index = page.evaluate(
        """(id) => {
      const nb = window.jupyterapp.shell.currentWidget.content;
      const i = nb.widgets.findIndex(c => c.model.id === id);
      nb.activeCellIndex = i; nb.mode = 'edit'; nb.activeCell.editor.focus();
      return i;
    }""",
        cell_id,
    )
    assert index >= 0, f"no cell {cell_id}"
    page.keyboard.press("Control+A")
    page.keyboard.insert_text(text)
    page.keyboard.press("Escape")


def run_all(page: Any, timeout: float = 300.0) -> None:
    """Run every cell of the current notebook and wait until the kernel is idle again."""
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.wait_for_timeout(500)
    wait_for_kernel(page, "idle", timeout)


def run_cell(page: Any, cell_id: str) -> None:
    """Run one cell (select it, then Shift+Enter); returns at once."""
    page.evaluate(
        """(id) => {
      const nb = window.jupyterapp.shell.currentWidget.content;
      nb.activeCellIndex = nb.widgets.findIndex(c => c.model.id === id); nb.mode = 'command';
      return window.jupyterapp.commands.execute('notebook:run-cell');
    }""",
        cell_id,
    )


def cell_output(page: Any, cell_id: str) -> str:
    return page.evaluate(
        """(id) => {
      const nb = window.jupyterapp.shell.currentWidget.content;
      const cell = nb.widgets.find(c => c.model.id === id);
      return cell.outputArea ? cell.outputArea.node.innerText : '';
    }""",
        cell_id,
    )


def shot(page: Any, name: str) -> Path:
    SHOTS.mkdir(parents=True, exist_ok=True)
    path = SHOTS / f"{name}.png"
    page.screenshot(path=str(path))
    return path
