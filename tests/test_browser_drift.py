"""Lab 07's drift report in a real browser: JupyterLab (started like `make lab`) in Debian's headless Chromium.

A scratch notebook scores a seeded later month (petal length moved) in process, measures its drift against the
reference and shows the workbench's HTML report inline; the rendered output must name the verdict, the moved
feature and draw its figures. Screenshots go to build/screenshots/.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from browser import (
    CHROMIUM,
    ROOT,
    SCRATCH,
    cell_output,
    lab_page,
    open_notebook,
    run_all,
    shot,
    write_notebook,
)

from mlops_workbench import procs
from mlops_workbench.workbench import Workbench

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.serial,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium: apt-get install chromium"),
]

CELLS = [
    "from IPython.display import HTML\n"
    "from mlops_workbench import data, train\n"
    "from mlops_workbench.datastats import compute\n"
    "from mlops_workbench.monitoring import drift, report, scenarios\n"
    "from mlops_workbench.registry.candidates import candidate_params\n"
    "params = candidate_params()\n"
    "training, holdout = data.split(data.load_iris_frame(), test_size=params.test_size, seed=params.seed)\n"
    "model = train.train(training, params)\n"
    "reference = compute(training, model, holdout=holdout)\n"
    "window = scenarios.scored_window(scenarios.later_month(5, rows=300), model)\n"
    "found = drift.detect(reference, window)\n"
    "print('drifted:', found.drifted_features)",
    "HTML(report.render(found, reference, window))",
]


@pytest.fixture(scope="module")
def state(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("drift-home")
    yield home
    procs.stop_all(Workbench.from_env(home))


def test_the_drift_report_renders_inline_in_jupyterlab(state, tmp_path_factory):
    notebook = write_notebook(SCRATCH / "notebooks" / "drift-report.ipynb", CELLS)
    with lab_page(state, tmp_path_factory) as (_, page):
        open_notebook(page, notebook.relative_to(ROOT).as_posix())
        run_all(page)
        assert "drifted: ['petal_length'" in cell_output(page, "c0")
        shown = cell_output(page, "c1")
        shot(page, "lab07-drift-report")
        assert "DRIFT" in shown and "petal_length" in shown and "sepal_width" in shown, shown[:2000]
        figures = page.evaluate(
            """() => {
          const nb = window.jupyterapp.shell.currentWidget.content;
          const cell = nb.widgets.find(c => c.model.id === 'c1');
          return cell.outputArea.node.querySelectorAll('svg, img, table').length;
        }"""
        )
        assert figures >= 2, "the report's table and figures are rendered, not shown as text"
