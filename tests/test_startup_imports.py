"""What short-lived processes import when they start: each module listed here costs every such process time.

DVC stage processes (prepare, train, evaluate) run many times per lab, and every service (model server, router,
controller, load generator) is a `workbench` process. Heavy modules load where they are used.
"""

from __future__ import annotations

import subprocess
import sys

import pytest


def loaded(imports: str, candidates: tuple[str, ...]) -> list[str]:
    code = f"import sys, {imports}\nprint(' '.join(m for m in {candidates!r} if m in sys.modules))"
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()


def test_pipeline_stage_code_leaves_plotting_and_bundled_datasets_unimported():
    """matplotlib (0.6 s) loads when a plot is drawn, sklearn.datasets when Iris is loaded from scikit-learn, httpx
    (0.25 s) with the first request to a service."""
    stage = "mlops_workbench.versioning, mlops_workbench.evaluate, mlops_workbench.train"
    assert loaded(stage, ("matplotlib", "sklearn.datasets", "httpx")) == []


def test_the_data_constants_load_neither_pandera_nor_scikit_learn():
    """Model servers, the drills' CI tests and the stage scripts import FEATURES and friends; pandera (0.4 s) loads
    with the first validation and scikit-learn's splitter (1.5 s, scipy.stats with it) with the first split."""
    assert loaded("mlops_workbench.data", ("pandera", "sklearn", "scipy")) == []


@pytest.mark.parametrize(
    "module",
    [
        "nbformat",
        "jsonschema",
        "jupyter_client",
        "mlops_workbench.labs.grade",
        "mlops_workbench.ci.workflow",
        "mlops_workbench.doctor",
    ],
)
def test_the_cli_loads_the_lab_machinery_workflow_checkers_and_doctor_only_for_their_commands(module):
    """About 0.8 s that a model server, router or load generator started as `workbench ...` never uses."""
    assert loaded("mlops_workbench.cli.main", (module,)) == []
