"""nbval on the reference notebooks: seeded, deterministic outputs (tagged ``nbval-check-output``) must not drift.

``pytest --nbval-lax`` runs every cell and compares the outputs of the tagged cells with
the ones committed in ``labs/NN-slug/lab.ipynb``; a dependency that changes a result
fails with a diff of the two. The fast labs run here (``make test``); the weekly drift
workflow runs every lab on the newest dependency versions.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]
FAST_LABS = ["00-welcome"]


def nbval(notebook: Path, home: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "WORKBENCH_HOME": str(home),
        "WORKBENCH_PROJECT": str(ROOT),
        "PATH": f"{Path(sys.executable).parent}:{os.environ.get('PATH', '')}",
    }
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-cell-timeout=300",
            "-p",
            "no:cacheprovider",
            "-q",
            "-o",
            "addopts=",
            str(notebook),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


@pytest.mark.parametrize("lab", FAST_LABS)
def test_reference_outputs_are_reproduced(lab, tmp_path):
    notebook = ROOT / "labs" / lab / "lab.ipynb"
    checked = [
        c for c in json.loads(notebook.read_text())["cells"] if "nbval-check-output" in c["metadata"].get("tags", [])
    ]
    assert checked and all(c["outputs"] for c in checked), "tag deterministic cells and commit their outputs"
    result = nbval(notebook, tmp_path / "home")
    assert result.returncode == 0, result.stdout[-4000:]


def test_a_changed_result_fails_with_a_readable_diff(tmp_path):
    nb = json.loads((ROOT / "labs" / "00-welcome" / "lab.ipynb").read_text())
    rows = next(c for c in nb["cells"] if c.get("id") == "iris-rows")
    rows["outputs"][0]["text"] = ["151\n"]  # as if a new scikit-learn shipped a different Iris
    drifted = tmp_path / "00-welcome.ipynb"
    drifted.write_text(json.dumps(nb))
    result = nbval(drifted, tmp_path / "home")
    assert result.returncode != 0
    assert "151" in result.stdout and "150" in result.stdout, result.stdout[-4000:]
