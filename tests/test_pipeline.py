"""The end-to-end demo: `workbench pipeline` runs every lab's solution as a DVC stage (real papermill runs)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mlops_workbench import procs
from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.pipeline import snapshot_project
from mlops_workbench.labs.report import validate_report
from mlops_workbench.workbench import Workbench

pytestmark = [pytest.mark.slow, pytest.mark.timeout(3600)]
ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
LABS = Lab.all()


def run(cmd: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=2700)


@pytest.fixture(scope="module")
def clone(tmp_path_factory) -> tuple[Path, dict]:
    """A copy of the working tree as its own git repository, as a fresh clone would be."""
    dest = tmp_path_factory.mktemp("clone") / "mlops-workbench"
    env = snapshot_project(ROOT, dest)
    return dest, env


@pytest.fixture(scope="module")
def first_run(clone):
    dest, env = clone
    result = run([str(BIN / "workbench"), "pipeline"], dest, env)
    return dest, env, result


def failed_stages(stdout: str) -> str:
    """The output of every stage that exited non-zero (the pipeline prints each under a ``dvc exit N`` rule)."""
    parts = re.split(r"^.*(lab-\S+): dvc exit (\d+) after .*$", stdout, flags=re.MULTILINE)
    return "\n".join(
        f"--- {name} (exit {code}) ---\n{text[-3000:]}"
        for name, code, text in zip(parts[1::3], parts[2::3], parts[3::3], strict=True)
        if code != "0"
    )


def test_pipeline_runs_every_lab_solution_to_full_marks(first_run):
    dest, _, result = first_run
    assert result.returncode == 0, failed_stages(result.stdout) + result.stdout[-2000:] + result.stderr[-2000:]
    for lab in LABS:
        folder = dest / "build" / "pipeline" / lab.id
        report = json.loads((folder / "report.json").read_text())
        validate_report(report)
        assert report["score"] == report["max_score"] > 0, [c for c in report["checks"] if c["status"] != "passed"]
        assert {"executed.ipynb", "report.html", "junit.xml", "gradescope.json"} <= {p.name for p in folder.iterdir()}
    state = dest / ".workbench"
    for lab in LABS:  # each lab in its own state folder: they run side by side and never meet
        assert (state / "pipeline" / lab.id / "workspaces" / lab.id).is_dir(), lab.id
        assert procs.running(Workbench.from_env(state / "pipeline" / lab.id)) == [], f"{lab.id} left services running"
    assert not (state / "workspaces").exists(), "solutions must not leave state where the learner's check() looks"
    assert "dvc --wait-for-lock repro --single-item" in result.stdout
    index = (dest / "build" / "pipeline" / "index.html").read_text()  # the summary page the demo ends with
    assert (
        all(f'href="{lab.id}/report.html"' in index for lab in LABS) and f"<strong>{len(LABS)} of {len(LABS)}" in index
    )
    assert "every report is linked from build/pipeline/index.html" in result.stdout


NOISE = {
    "MLflow's download bar": "Downloading artifacts",
    "a tqdm bar": "it/s]",
    "MLflow's runs:/ fallback warning": "has no artifacts at artifact path",
    "a third-party log warning": " WARNING mlflow",
    "a deprecation warning": "DeprecationWarning",
}


def test_the_labs_show_the_learner_no_third_party_noise(first_run):
    """What a learner sees in JupyterLab is these outputs: no download bars, no warnings of other libraries."""
    dest, _, _ = first_run
    found = []
    for lab in LABS:
        executed = json.loads((dest / "build" / "pipeline" / lab.id / "executed.ipynb").read_text())
        for cell in executed["cells"]:
            text = json.dumps(cell.get("outputs", []))
            found += [f"{lab.id} cell {cell.get('id')}: {what}" for what, mark in NOISE.items() if mark in text]
    assert found == []


def test_noop_rerun_runs_no_stage(first_run):
    dest, env, _ = first_run
    before = {lab.id: (dest / "build/pipeline" / lab.id / "report.json").stat().st_mtime_ns for lab in LABS}
    result = run([str(BIN / "workbench"), "pipeline"], dest, env)
    assert result.returncode == 0, result.stdout[-3000:]
    after = {lab.id: (dest / "build/pipeline" / lab.id / "report.json").stat().st_mtime_ns for lab in LABS}
    assert before == after
    assert "Running stage" not in result.stdout


def test_a_failing_stage_fails_the_pipeline_and_skips_the_labs_that_depend_on_it(first_run):
    dest, env, _ = first_run
    lab = dest / "labs" / "00-welcome"
    checks = lab / "checks.py"
    checks.write_text(checks.read_text().replace("if n != 150:", "if n != 151:"))
    spec = lab / "lab.yaml"  # one point lost stays above the pass mark of 0.8: demand every point
    spec.write_text(spec.read_text().replace("pass_mark: 0.8", "pass_mark: 1.0"))
    dependent = dest / "labs" / "01-ci-basics" / "lab.yaml"  # say lab 01 reads lab 00's state
    dependent.write_text(dependent.read_text().replace("depends_on: []", "depends_on: [00-welcome]"))
    assert run([str(BIN / "workbench"), "labs", "release"], dest, env).returncode == 0  # dvc.yaml follows
    result = run([str(BIN / "workbench"), "pipeline"], dest, env)
    assert result.returncode != 0
    report = json.loads((dest / "build/pipeline/00-welcome/report.json").read_text())
    assert {c["id"]: c["status"] for c in report["checks"]}["iris-rows"] == "failed"
    assert "Running stage 'lab-01-ci-basics'" not in result.stdout, "a failed stage stops the labs that need it"
    assert "skipped" in result.stdout and "pipeline failed (00-welcome, 01-ci-basics)" in result.stdout
    assert "Stage 'lab-02-versioning' didn't change, skipping" in result.stdout, "independent labs still run"
