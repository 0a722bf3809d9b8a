"""Lab 08's strategy panel in a real browser: JupyterLab (started like `make lab`) in Debian's headless Chromium.

A scratch notebook serves two registered Iris versions as blue (production) and green (the candidate) behind
the local router, measures what each costs per 1,000 predictions, records a reviewer's approval and creates a
deployment repository. The panel must show the split, each version's cost and latency as recorded, the approval
and the GitOps state; "Switch to green" must move the router to 100 on the healthy green (read from the router
itself), "Switch back to blue" to 0, and a switch to a green that no longer answers must be refused with the
traffic left on blue. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from browser import CHROMIUM, ROOT, SCRATCH, cell_output, lab_page, open_notebook, run_cell, shot
from browser import write_notebook as notebook

from mlops_workbench import procs
from mlops_workbench.registry import gate
from mlops_workbench.rollout.backends.local import CANARY, ROUTER
from mlops_workbench.serving.client import RouterClient
from mlops_workbench.workbench import Workbench

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]
MODEL = "browser-strategies"
CELLS = [
    "from IPython.display import display\n"
    "from mlops_workbench.labs.session import start\n"
    "lab = start('08-strategies-governance', chdir=False)\n"
    "from mlops_workbench import gitops, registry, tracking\n"
    "from mlops_workbench.registry import approvals\n"
    "from mlops_workbench.rollout import prepare\n"
    "from mlops_workbench.rollout.backends.local import LocalBackend\n"
    "from mlops_workbench.serving.client import ModelServerClient\n"
    "from mlops_workbench.strategies import cost, panel\n"
    f"MODEL = {MODEL!r}\n"
    "versions = prepare.ensure_versions(lab.wb, model_name=MODEL, roles=('stable', 'candidate'))\n"
    "prepare.reset_production(lab.wb, versions.stable, model_name=MODEL)\n"
    "backend = LocalBackend(lab.wb, model_name=MODEL, metrics='direct')\n"
    "backend.up()\n"
    "backend.deploy_canary(versions.candidate)\n"
    "urls = {'blue': backend.url('stable'), 'green': backend.url('canary')}\n"
    "rows = [[5.1, 3.5, 1.4, 0.2], [6.4, 3.2, 4.5, 1.5], [6.3, 3.3, 6.0, 2.5]]\n"
    "def send():\n"
    "    for url in urls.values():\n"
    "        for _ in range(30):\n"
    "            for row in rows:\n"
    "                ModelServerClient(url).send([row])\n"
    "client = tracking.client(lab.wb)\n"
    "for measured in cost.measure(lab.wb, urls, during=send).values():\n"
    "    cost.record(client, MODEL, measured)\n"
    "client.set_model_version_tag(MODEL, versions.candidate, approvals.REGISTERED_BY, 'builder')\n"
    "registry.approve(lab.wb, MODEL, versions.candidate, approver='reviewer', reason='smoke test and gate read')\n"
    "repo = gitops.init_repo(lab.wb, stable=versions.stable, model=MODEL, auto_sync=False)\n"
    "print('SETUP-DONE', versions.stable, versions.candidate)",
    "board = panel.StrategyPanel(lab.wb, MODEL, repo=repo, by='browser-test', refresh_s=1.0).start()\n"
    "display(board.widget)",
    "board.stop(); print('stopped:', backend.down())",
]


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("strategies-home")
    yield home
    procs.stop_all(Workbench.from_env(home))


def recorded(wb: Workbench, version: str) -> tuple[str, str]:
    """The cost and latency of ``version`` as the registry panel writes them, from the tags cost.record wrote."""
    from mlflow import MlflowClient

    url = procs.get(wb, "mlflow").url
    tags = MlflowClient(tracking_uri=url, registry_uri=url).get_model_version(MODEL, version).tags
    cost = f"{float(tags[gate.COST_TAG]):.4g} {tags[gate.COST_CURRENCY_TAG]}"
    return cost, f"{float(tags[gate.LATENCY_TAG]):.1f} ms"


def weight(wb: Workbench) -> float:
    """Green's share of traffic, asked of the router itself."""
    return RouterClient.of(wb, procs.get(wb, ROUTER).url).weight()


def test_the_panel_shows_the_split_and_costs_and_its_switch_moves_the_router(state, tmp_path_factory):
    wb = Workbench.from_env(state)
    path = notebook(SCRATCH / "notebooks" / "strategy-panel.ipynb", CELLS)
    with lab_page(state, tmp_path_factory) as (_, page):
        open_notebook(page, path.relative_to(ROOT).as_posix())
        run_cell(page, "c0")
        page.locator("pre", has_text="SETUP-DONE").wait_for(timeout=900_000)
        stable, candidate = cell_output(page, "c0").split("SETUP-DONE")[-1].split()[:2]
        run_cell(page, "c1")
        board = page.locator(".workbench-strategy")
        blue, green = board.locator("tr[data-env='blue']"), board.locator("tr[data-env='green']")
        blue.wait_for(timeout=120_000)
        assert (
            blue.locator("td").nth(1).inner_text() == "100%" and blue.locator("td").nth(2).inner_text() == f"v{stable}"
        )
        assert (
            green.locator("td").nth(1).inner_text() == "0%"
            and green.locator("td").nth(2).inner_text() == f"v{candidate}"
        )
        assert green.locator("td").nth(3).inner_text() == "answers"
        assert "blue has all the traffic" in board.inner_text()
        for version, env in ((stable, "blue"), (candidate, "green")):
            cells = board.locator(f"tr[data-version='{version}'] td")
            cost, latency = recorded(wb, version)
            assert cells.nth(2).inner_text() == env
            assert (cells.nth(4).inner_text(), cells.nth(5).inner_text()) == (latency, cost)
            accuracy = cells.nth(3).inner_text()  # the registry's metric, else measured on the held-out rows
            assert re.fullmatch(r"\d\.\d{3} \((registry|held-out rows, live)\)", accuracy), accuracy
            assert float(accuracy.split()[0]) > 0.8, accuracy
        assert "production" in board.locator(f"tr[data-version='{stable}'] td").nth(1).inner_text()
        approved = board.locator(f"tr[data-version='{candidate}'] td").nth(6).inner_text()
        assert approved == "approved for production by reviewer"
        assert "GitOps: " in board.inner_text() and "Sync" in board.inner_text()
        board.scroll_into_view_if_needed()
        shot(page, "lab08-strategy-panel")

        page.get_by_role("button", name="Switch to green").click()
        page.get_by_text(f"green is live: all traffic on v{candidate}").wait_for(timeout=120_000)
        assert weight(wb) == 100.0, "the router itself sends everything to green"
        green.filter(has_text="100%").wait_for(timeout=60_000)
        board.get_by_text("green has all the traffic").wait_for(timeout=60_000)
        shot(page, "lab08-strategy-panel-switched")

        page.get_by_role("button", name="Switch back to blue").click()
        page.get_by_text(f"blue is live: all traffic on v{stable}").wait_for(timeout=120_000)
        assert weight(wb) == 0.0

        assert procs.stop(wb, CANARY)  # green goes down: a switch must be refused, saying why
        green.filter(has_text="does not answer").wait_for(timeout=60_000)
        page.get_by_role("button", name="Switch to green").click()
        page.get_by_text("Switch to green refused, traffic unchanged: smoke FAILED").wait_for(timeout=120_000)
        assert weight(wb) == 0.0, "no traffic to a green that failed its smoke test"
        shot(page, "lab08-strategy-panel-refused")
        assert "refresh failed" not in page.inner_text("body")
        run_cell(page, "c2")
        page.locator("pre", has_text="stopped:").wait_for(timeout=120_000)
