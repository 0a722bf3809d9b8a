"""The MLflow tile in a real browser: ``<jupyter>/mlflow/`` when no tracking server runs, then when one had to move.

JupyterLab starts like `make lab` (tests/browser.py) on a fresh state folder while another program holds the
tracking server's default port. First the tile's page says at once that no tracking server runs and how to start
one; then ``tracking.up(wb)`` starts one on the next free port, and the same page turns into the MLflow UI by
itself, as does the launcher tile. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from browser import CHROMIUM, chromium, jupyterlab, launcher_tile, shot

from mlops_workbench import procs, settings, tracking
from mlops_workbench.workbench import Workbench

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("browser-mlflow-home")
    yield home
    procs.stop_all(Workbench.from_env(home))


@pytest.fixture(scope="module")
def default_port_taken() -> Iterator[int]:
    """Another program listens on the tracking server's default port (or already did)."""
    with ExitStack() as stack:
        if not procs.port_in_use(settings.default_port("mlflow")):
            stack.enter_context(socket.create_server(("127.0.0.1", settings.default_port("mlflow"))))
        yield settings.default_port("mlflow")


@pytest.fixture(scope="module")
def lab_url(state, default_port_taken, tmp_path_factory) -> Iterator[str]:
    with jupyterlab(state, tmp_path_factory.mktemp("jupyter")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    with chromium(tmp_path_factory.mktemp("chromium-profile")) as context:
        yield context


def test_without_a_tracking_server_the_tile_says_at_once_how_to_start_one(browser, lab_url, state) -> None:
    assert procs.get(Workbench.from_env(state), tracking.SERVICE) is None
    page = browser.new_page()
    started = time.monotonic()
    response = page.goto(f"{lab_url}/mlflow/", timeout=60_000)  # the first request also starts the forwarder
    assert time.monotonic() - started < 30
    assert response.status == 503
    text = page.locator("p").inner_text()
    assert text.startswith(f"No MLflow tracking server is running for the state folder {state}")
    assert "workbench mlflow up" in text and "tracking.up(lab.wb)" in text
    started = time.monotonic()
    page.reload()  # now that the forwarder runs, the answer is immediate
    assert time.monotonic() - started < 5 and "No MLflow tracking server" in page.locator("p").inner_text()
    shot(page, "mlflow-tile-no-server")
    page.close()


def test_the_tile_finds_a_tracking_server_that_had_to_move(
    browser, lab_url, state, default_port_taken, monkeypatch
) -> None:
    monkeypatch.delenv(tracking.URI_ENV, raising=False)  # tracking.up() exports it; gone again after the test
    waiting = browser.new_page()
    waiting.goto(f"{lab_url}/mlflow/")
    assert "No MLflow tracking server" in waiting.locator("p").inner_text()

    tracking.up(Workbench.from_env(state), timeout=300)  # generous: a busy machine can take minutes to start mlflow
    moved = procs.get(Workbench.from_env(state), tracking.SERVICE).port
    assert moved != default_port_taken
    tracking.client(Workbench.from_env(state)).create_experiment("moved-port")  # what the UI must list

    # the waiting page reloads itself into the MLflow UI of the moved server (maybe before the experiment existed)
    waiting.wait_for_function("() => document.title.includes('MLflow')", timeout=120_000)
    waiting.reload()
    waiting.get_by_text("moved-port").first.wait_for(timeout=120_000)
    shot(waiting, "mlflow-tile-moved-server")
    waiting.close()

    # and so does the launcher tile, in a new tab
    page = browser.new_page()
    page.goto(f"{lab_url}/lab?reset")
    tile = launcher_tile(page, "MLflow")
    with page.context.expect_page(timeout=60_000) as opened:
        tile.click()
    ui = opened.value
    started = time.monotonic()
    ui.wait_for_function("() => document.title.includes('MLflow')", timeout=60_000)
    ui.get_by_text("moved-port").first.wait_for(timeout=60_000)
    assert time.monotonic() - started < 60 and ui.url.rstrip("/").endswith("/mlflow"), ui.url
    shot(ui, "mlflow-launcher-tile-moved-server")
    ui.close()
    page.close()
