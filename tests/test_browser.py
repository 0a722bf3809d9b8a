"""The labs in a real browser: JupyterLab (started like `make lab`) driven in Debian's headless Chromium.

Screenshots go to build/screenshots/ (a CI artifact). One JupyterLab and one browser serve
every test of this module; each test works in the same fresh state folder.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest
from browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    SCRATCH,
    app_ready,
    cell_output,
    jupyterlab,
    launcher_tile,
    open_notebook,
    run_all,
    run_cell,
    set_cell_source,
    shot,
    write_notebook,
)

from mlops_workbench.workbench import Workbench

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]

LAB00 = {
    "hello-file": 'from pathlib import Path\n\nPath("hello.txt").write_text(f"Hello from {name}!\\n")',
    "iris-rows": "from sklearn.datasets import load_iris\n\nn_samples = load_iris().data.shape[0]\nprint(n_samples)",
    "seeded-sample": "import numpy as np\n\nsample = np.random.default_rng(seed).integers(0, 100, size=5).tolist()",
    "state-folder": "state_folder = str(lab.home)\nprint(state_folder)",
}


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    from mlops_workbench import procs

    home = tmp_path_factory.mktemp("browser-home")
    yield home
    procs.stop_all(Workbench.from_env(home))


@pytest.fixture(scope="module")
def lab_url(state, tmp_path_factory):
    with jupyterlab(state, tmp_path_factory.mktemp("jupyter")) as url:
        yield url


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from playwright.sync_api import sync_playwright

    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=str(CHROMIUM),
            headless=True,
            args=CHROMIUM_ARGS,
            viewport={"width": 1400, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser, lab_url):
    page = browser.new_page()
    page.set_default_timeout(120_000)
    app_ready(page, lab_url)
    yield page
    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
    page.evaluate("() => window.jupyterapp.serviceManager.sessions.shutdownAll()")
    page.close()


def learner_copy(name: str) -> str:
    """A copy of notebooks/<name> to work in (JupyterLab autosaves; the released notebooks stay untouched)."""
    dest = SCRATCH / "notebooks" / name
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "notebooks" / name, dest)
    return dest.relative_to(ROOT).as_posix()


def test_every_learner_notebook_opens_and_starts_its_kernel(page):
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    assert len(notebooks) >= 5
    for nb in notebooks:
        open_notebook(page, learner_copy(nb.name))
        title = page.evaluate("() => window.jupyterapp.shell.currentWidget.title.label")
        assert title == nb.name
        shot(page, f"open-{nb.stem}")
    # the file browser shows the project (JupyterLab is rooted there) with notebooks/ open
    assert page.evaluate("() => window.jupyterapp.serviceManager.contents.get('labs').then(m => m.type)") == "directory"


def test_lab00_solved_through_the_ui_passes_its_checks(page, state):
    open_notebook(page, learner_copy("00-welcome.ipynb"))
    for cell_id, text in LAB00.items():
        set_cell_source(page, cell_id, text)
    run_all(page)
    page.get_by_text("state-folder passed").first.wait_for(timeout=60_000)
    everything = cell_output(page, "check-everything")
    shot(page, "lab00-solved")
    for check_id in ("hello-file", "iris-rows", "state-folder"):
        assert re.search(rf"{check_id} passed", everything), everything
    for cell_id in ("check-hello", "check-rows", "check-state", "check-everything"):
        assert "CheckResult" not in cell_output(page, cell_id), "only the friendly line, no repr under it"
    assert (state / "workspaces" / "00-welcome" / "hello.txt").read_text() == "Hello from learner!\n"
    # a learner's own files live in a hidden folder (.workbench/workspaces/<lab>/): JupyterLab opens them by path
    hidden = SCRATCH / ".workbench" / "workspaces" / "04-canary-rollback" / "policy.yaml"
    hidden.parent.mkdir(parents=True, exist_ok=True)
    hidden.write_text("name: opened-in-jupyterlab\n")
    page.evaluate(
        "(path) => window.jupyterapp.commands.execute('docmanager:open', {path}).then(() => true)",
        hidden.relative_to(ROOT).as_posix(),
    )
    page.get_by_text("opened-in-jupyterlab").first.wait_for(timeout=60_000)
    shot(page, "hidden-workspace-file")


REGISTRY = [
    "from mlops_workbench.labs.session import start\nlab = start('03-registry-promotion', chdir=False)",
    "import pandas as pd\n"
    "from mlops_workbench import registry, tracking\n"
    "from mlops_workbench.registry import audit, candidates, panel\n"
    "tracking.up(lab.wb)\n"
    "vs = [registry.register(lab.wb, candidates.log_candidate({'C': c}, experiment='browser'), 'browser-iris') for c in (1.0, 10.0)]\n"
    "for v in vs:\n"
    "    registry.promote(lab.wb, 'browser-iris', v.version, 'staging', approver='setup', reason='candidate')\n"
    "registry.promote(lab.wb, 'browser-iris', vs[0].version, 'production', approver='setup', reason='first')\n"
    "from mlops_workbench.registry import gate\n"
    "for tag, value in ((gate.COST_TAG, '0.0125'), (gate.COST_CURRENCY_TAG, 'EUR'), (gate.LATENCY_TAG, '1.75')):\n"
    "    tracking.client(lab.wb).set_model_version_tag('browser-iris', vs[0].version, tag, value)  # as cost.record does\n"
    "print('MLflow UI:', tracking.ui(lab.wb, open_browser=False))",
    "rules = {'metric': 'f1_macro', 'min_gain': -1.0, 'non_regression': [], 'min_accuracy': 0.0}\n"
    "panel.panel(lab.wb, 'browser-iris', rules=rules, approver='browser-test')",
    "pd.DataFrame(audit.read(lab.wb))",
]


def production(state: Path, name: str) -> str:
    from mlflow import MlflowClient

    from mlops_workbench import procs

    url = procs.get(Workbench.from_env(state), "mlflow").url
    return str(MlflowClient(tracking_uri=url, registry_uri=url).get_model_version_by_alias(name, "production").version)


def test_registry_panel_promote_and_rollback_change_the_registry(page, state, lab_url):
    path = write_notebook(SCRATCH / "registry-panel.ipynb", REGISTRY)
    open_notebook(page, path.relative_to(ROOT).as_posix())
    page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    page.get_by_role("button", name="Promote").wait_for(timeout=900_000)  # cells up to the panel have run
    assert production(state, "browser-iris") == "1"
    panel = page.locator(".widget-vbox").filter(has=page.get_by_role("button", name="Promote")).first
    # lab 08's measurements beside the metrics: v1's mean latency and cost per 1,000 predictions, v2 never measured
    for header in ("metrics", "mean latency", "cost / 1k predictions"):
        panel.locator("th", has_text=header).first.wait_for()
    row = panel.locator("tr", has=page.locator("td", has_text="1.8 ms"))
    assert row.locator("td").nth(4).inner_text() == "0.0125 EUR" and row.locator("td").first.inner_text() == "1"
    shot(page, "registry-panel-cost")
    panel.locator("select").first.select_option("2")  # version
    panel.locator("select").nth(1).select_option("production")  # alias
    assert panel.get_by_role("textbox").first.input_value() == "browser-test"
    panel.get_by_placeholder("why this change").fill("clicked in the browser")
    panel.get_by_role("button", name="Promote").click()
    panel.get_by_text("is now 'production'").wait_for(timeout=180_000)
    assert production(state, "browser-iris") == "2"
    shot(page, "registry-promoted")
    panel.get_by_role("button", name="Rollback").click()
    panel.get_by_text("rolled back to v1").wait_for(timeout=180_000)
    assert production(state, "browser-iris") == "1"
    shot(page, "registry-rolled-back")
    # wide tables wrap at 1400 px instead of scrolling sideways
    wide = page.evaluate("""() => [...document.querySelectorAll('.jp-OutputArea-output')]
        .filter(o => o.querySelector('table') && o.scrollWidth > o.clientWidth + 1).length""")
    assert wide == 0
    # the MLflow UI through jupyter-server-proxy (/proxy/<port>/), as the lab prints it
    from mlops_workbench import procs

    port = procs.get(Workbench.from_env(state), "mlflow").port
    mlflow = page.context.new_page()
    response = mlflow.goto(f"{lab_url}/proxy/{port}/")
    assert response.status == 200
    mlflow.wait_for_function("() => document.title.includes('MLflow')", timeout=120_000)
    mlflow.get_by_text("browser").first.wait_for(timeout=120_000)  # the experiment this test logged
    shot(mlflow, "mlflow-through-proxy")
    mlflow.close()


def test_mlflow_launcher_tile_opens_the_state_folders_mlflow_ui(page, state):
    from mlops_workbench import procs, tracking

    tracking.up(Workbench.from_env(state))  # the tile forwards to the state folder's server, on whatever port it got
    assert procs.get(Workbench.from_env(state), "mlflow") is not None
    if tracking.client(Workbench.from_env(state)).get_experiment_by_name("launcher-tile") is None:
        tracking.client(Workbench.from_env(state)).create_experiment("launcher-tile")  # what the UI must list
    tile = launcher_tile(page, "MLflow")
    with page.context.expect_page(timeout=120_000) as opened:
        tile.click()
    ui = opened.value
    ui.wait_for_function("() => document.title.includes('MLflow')", timeout=180_000)
    ui.get_by_text("launcher-tile").first.wait_for(timeout=120_000)  # the state folder's own server answered
    assert ui.url.rstrip("/").endswith("/mlflow"), ui.url
    shot(ui, "mlflow-launcher-tile")
    ui.close()


DASHBOARD = [
    "from mlops_workbench.labs.session import start\n"
    "lab = start('04-canary-rollback', chdir=False)\n"
    "from IPython.display import display\n"
    "from mlops_workbench.rollout import dashboard, ops, prepare\n"
    "from mlops_workbench.rollout.backends.local import LocalBackend\n"
    "from mlops_workbench.rollout.load import BackgroundLoad\n"
    "from mlops_workbench.rollout.policy import builtin\n"
    "versions = prepare.ensure_versions(lab.wb, model_name='browser-canary', roles=('stable', 'candidate'))\n"
    "prepare.reset_production(lab.wb, versions.stable, model_name='browser-canary')\n"
    "traffic = BackgroundLoad(LocalBackend(lab.wb, model_name='browser-canary').up(), 40, seed=3).start()\n"
    "board = dashboard.Dashboard(lab.wb).start()\n"
    "display(board.widget)",
    "ops.start(lab.wb, builtin('demo'), versions.candidate, model_name='browser-canary', background=True)\n"
    "print('rollout started in the background: the cell returns, the buttons act')",
    "final = ops.wait(lab.wb, timeout=300)\nprint('FINAL', final.phase, '-', final.reason)",
    "traffic.stop(); board.stop(); print('stopped:', ops.down(lab.wb))",
]


def test_dashboard_updates_during_a_rollout_and_its_abort_button_acts(page, state):
    from mlops_workbench.rollout import state as st

    path = write_notebook(SCRATCH / "dashboard.ipynb", DASHBOARD)
    open_notebook(page, path.relative_to(ROOT).as_posix())
    run_cell(page, "c0")
    page.get_by_role("button", name="Abort rollout").wait_for(timeout=600_000)
    run_cell(page, "c1")
    page.locator("pre", has_text="rollout started in the background").wait_for(timeout=60_000)
    # the table refreshes while the rollout runs: the canary takes traffic, measurements arrive
    page.get_by_text(re.compile(r"canary weight [1-9][0-9]?%")).first.wait_for(timeout=240_000)
    page.get_by_text(re.compile(r"successful|inconclusive|failed")).first.wait_for(timeout=120_000)
    shot(page, "dashboard-during-rollout")
    running = st.load(Workbench.from_env(state))
    assert running is not None and not running.done, "the rollout ended before the button could act"
    page.get_by_role("button", name="Abort rollout").click()
    run_cell(page, "c2")
    page.locator("pre", has_text="FINAL Aborted - aborted from the dashboard").wait_for(timeout=120_000)
    shot(page, "dashboard-aborted")
    assert "Errno" not in page.inner_text("body")
    run_cell(page, "c3")
    page.locator("pre", has_text="stopped:").wait_for(timeout=120_000)


@pytest.fixture(scope="module", autouse=True)
def _scratch():
    yield
    shutil.rmtree(SCRATCH, ignore_errors=True)
