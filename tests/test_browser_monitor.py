"""Lab 07's monitoring dashboard in a real browser: JupyterLab (started like `make lab`) in Debian's headless Chromium.

A scratch notebook serves a registered Iris model behind the local router, sends it a later month with the
sepal width gauge reading high (every prediction lands in the prediction log, half of them get labels), measures
the drift against the version's reference and starts the real monitor service exporting those scores with the
in-process alert evaluation (the reference rules held pending). The dashboard must show the drifting feature's
score above the threshold and the pending alert, then, without the cell being run again, a notification posted
to the webhook and the monitor going down. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from browser import CHROMIUM, ROOT, SCRATCH, cell_output, lab_page, open_notebook, run_cell, shot
from browser import write_notebook as notebook
from test_monitoring_webhook import SENT

from mlops_workbench import procs
from mlops_workbench.monitoring import service, webhook
from mlops_workbench.serving import auth
from mlops_workbench.workbench import Workbench

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]
MODEL = "browser-monitor"
CELLS = [
    "import json\n"
    "import yaml\n"
    "from IPython.display import display\n"
    "from mlops_workbench.labs.session import start\n"
    "lab = start('07-monitor-retrain', chdir=False)\n"
    "from mlops_workbench.monitoring import dashboard, drift, labkit, reference, rules, scenarios, service\n"
    "from mlops_workbench.monitoring.labels import LabelFeed\n"
    "from mlops_workbench.monitoring.predictions import PredictionLog\n"
    "from mlops_workbench.monitoring.watch import Watch\n"
    "from mlops_workbench.rollout import prepare\n"
    "from mlops_workbench.rollout.backends.local import LocalBackend\n"
    "from mlops_workbench.serving.client import RouterClient\n"
    f"MODEL = {MODEL!r}\n"
    "versions = prepare.ensure_versions(lab.wb, model_name=MODEL, roles=('stable',))\n"
    "prepare.reset_production(lab.wb, versions.stable, model_name=MODEL)\n"
    "backend = LocalBackend(lab.wb, model_name=MODEL, metrics='direct')\n"
    "router = backend.up()\n"
    "truth = scenarios.replay(RouterClient(router), scenarios.traffic(5, 200, labkit.LATER_MONTH), 'month')\n"
    "window = labkit.logged(lab.wb, MODEL, 'month', truth)  # once the server has logged every request\n"
    "log = PredictionLog(lab.wb)\n"
    "labelled = LabelFeed(fraction=0.5, seed=5).deliver(log, truth)\n"
    "log.close()\n"
    "ref = reference.load(lab.wb, MODEL, versions.stable)\n"
    "found = drift.detect(ref, window)  # what the monitor's own scorer must export for the same 200 rows\n"
    "scores = {f.feature: f.psi for f in found.features if f.feature in ref.feature_names}\n"
    "slow = yaml.safe_load(rules.REFERENCE.read_text())\n"
    "for rule in slow['groups'][0]['rules']:\n"
    "    rule['for'] = '30m'  # pending for the whole test: only the posted notification fires\n"
    "(lab.workspace / 'rules.yaml').write_text(yaml.safe_dump(slow))\n"
    "fallback = service.Fallback(lab.workspace / 'rules.yaml', [backend.url('stable')])\n"
    "monitor = service.start(lab.wb, watch=Watch(model=MODEL, last=200), fallback=fallback)\n"
    "print('SETUP-DONE', labelled, 'labels;', json.dumps(scores))",
    "board = dashboard.Dashboard(lab.wb, MODEL, refresh_s=1.0).start()\ndisplay(board.widget)",
    "board.stop(); print('stopped:', backend.down())",
]


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("monitor-home")
    yield home
    procs.stop_all(Workbench.from_env(home))


def notification(feature: str) -> dict:
    """A firing drift notification of the browser model, as Alertmanager would post it."""
    sent = json.loads(json.dumps(SENT))
    labels = {"alertname": "FeatureDriftHigh", "feature": feature, "model": MODEL, "version": "1"}
    sent["alerts"][0]["labels"] = sent["commonLabels"] = labels
    return sent


def test_the_dashboard_shows_drift_alerts_and_traffic_and_updates_itself(state, tmp_path_factory):
    wb = Workbench.from_env(state)
    path = notebook(SCRATCH / "notebooks" / "monitor-dashboard.ipynb", CELLS)
    with lab_page(state, tmp_path_factory) as (_, page):
        open_notebook(page, path.relative_to(ROOT).as_posix())
        run_cell(page, "c0")
        page.locator("pre", has_text=re.compile("SETUP-DONE|Error")).first.wait_for(timeout=900_000)
        setup = cell_output(page, "c0")
        assert "SETUP-DONE" in setup, setup  # a failing setup cell ends the test at once, saying why
        scores = json.loads(setup.strip().split("labels; ")[-1])
        assert scores["sepal_width"] > 0.2, f"the later month must drift on sepal width: {scores}"
        run_cell(page, "c1")
        board = page.locator(".workbench-monitor")
        drifting = board.locator("tr[data-feature='sepal_width']")
        drifting.wait_for(timeout=120_000)
        assert f"{scores['sepal_width']:.3f}" in drifting.inner_text() and "above 0.2" in drifting.inner_text()
        calm = min(scores, key=scores.get)
        assert "below 0.2" in board.locator(f"tr[data-feature='{calm}']").inner_text()
        # the fallback evaluates the rules: the drift alert waits out its 30 minutes as pending
        board.locator("tr[data-alert='FeatureDriftHigh']", has_text="pending").wait_for(timeout=120_000)
        text = board.inner_text()
        assert re.search(r"\b2\d\d predictions in 2\d\d requests", text), text
        assert re.search(r"accuracy \d+\.\d% on \d+ labelled rows", text), text
        assert "0 notifications received" in text
        board.scroll_into_view_if_needed()
        shot(page, "lab07-monitor-dashboard")

        monitor = procs.get(wb, service.SERVICE)
        assert monitor is not None
        answer = procs.http().post(
            monitor.url + webhook.PATH, json=notification("sepal_width"), headers=auth.headers(auth.read_token(wb))
        )
        assert answer.status_code == 200, answer.text
        board.get_by_text("1 notification received").wait_for(timeout=60_000)  # the cell was not run again
        fired = board.locator("tr[data-alert='FeatureDriftHigh']", has_text="webhook")
        assert "firing" in fired.inner_text() and "feature=sepal_width" in fired.inner_text()
        board.scroll_into_view_if_needed()
        shot(page, "lab07-monitor-dashboard-notified")

        assert procs.stop(wb, service.SERVICE)
        board.get_by_text("monitor not running: workbench monitor up").wait_for(timeout=60_000)
        assert "refresh failed" not in page.inner_text("body")
        board.scroll_into_view_if_needed()
        shot(page, "lab07-monitor-dashboard-down")
        run_cell(page, "c2")
        page.locator("pre", has_text="stopped:").wait_for(timeout=120_000)
