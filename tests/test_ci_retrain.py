"""Lab 07's retrain workflow: triggered by a push that changes a .dvc file or dvc.lock, schema-valid and zizmor-clean,
and run on this machine with lab 01's runner in a real git + DVC workspace, where it reproduces a data commit."""

from __future__ import annotations

import pytest
from retrain_state import commit_data, first_month

from mlops_workbench import data, versioning
from mlops_workbench.ci import scaffold
from mlops_workbench.ci.runner import run_workflow
from mlops_workbench.ci.workflow import triggers, validate
from mlops_workbench.ci.yamldoc import YamlDoc
from mlops_workbench.versioning.workspace import locked_md5
from mlops_workbench.workbench import Workbench


def test_the_retrain_workflow_is_valid_clean_and_triggered_by_data_commits(tmp_path):
    written = scaffold.scaffold_retrain_workflow(tmp_path)
    workflow = tmp_path / scaffold.RETRAIN_WORKFLOW
    assert set(written) == {workflow, tmp_path / "requirements.txt"}
    report = validate(workflow, require=("push", "install", "train"))
    assert report.ok, [str(f) for f in report.findings]
    assert report.rules() <= {"test-step", "build-step"}, "zizmor and the schema find nothing"
    doc = YamlDoc.read(workflow).data
    assert triggers(doc) == {"push", "workflow_dispatch"}
    assert doc["on"]["push"]["paths"] == ["**.dvc", "dvc.lock"]
    assert doc["permissions"] == {"contents": "read"}
    steps = doc["jobs"]["retrain"]["steps"]
    runs = [str(s.get("run", "")) for s in steps]
    assert "dvc pull" in runs and "dvc repro" in runs
    upload = next(s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@"))
    assert "metrics.json" in upload["with"]["path"]
    pins = (tmp_path / "requirements.txt").read_text().splitlines()
    assert any(p.startswith("dvc==") for p in pins) and any(p.startswith("mlops-workbench==") for p in pins)
    assert not any(p.lower().startswith("rfc3987-syntax") for p in pins), "only what is installed here"
    with pytest.raises(scaffold.ScaffoldError, match="force=True"):
        scaffold.scaffold_retrain_workflow(tmp_path)
    assert scaffold.scaffold_retrain_workflow(tmp_path, force=True) == written


@pytest.mark.slow
def test_the_retrain_workflow_reproduces_a_data_commit_with_the_local_runner(tmp_path):
    home = tmp_path / "home"
    ws = versioning.init_workspace(Workbench.from_env(home), tmp_path / "workspace")
    data.save_csv(first_month(), ws.path / versioning.DATA)
    ws.dvc("add", versioning.DATA)
    versioning.write_params(ws)
    versioning.add_pipeline(ws)
    scaffold.scaffold_retrain_workflow(ws.path)
    ws.commit("First month, the pipeline and the retrain workflow")
    ws.dvc("push", "--quiet")
    ws.dvc("repro", "--quiet")
    ws.commit("Train on the first month")
    before = (ws.path / versioning.METRICS).read_text()
    commit_data(ws, data.load_iris_frame(), "Second month")
    new_md5 = ws.dvc_md5(versioning.DATA)
    assert locked_md5((ws.path / "dvc.lock").read_text(), versioning.DATA) != new_md5, "the lock is stale"

    run = run_workflow(ws.path / scaffold.RETRAIN_WORKFLOW, ws.path, quiet=True)
    statuses = {s.name: s.status for s in run.steps}
    assert run.ok, [(s.name, s.status, s.reason, s.output[-800:]) for s in run.steps]
    for step in ("Install the pinned dependencies", "Fetch the data (dvc pull)", "Reproduce the pipeline (dvc repro)"):
        assert statuses[step] == "passed", step
    assert statuses["Show the metrics"] == "passed" and statuses["Keep the metrics and the lock file"] == "skipped"
    assert locked_md5((ws.path / "dvc.lock").read_text(), versioning.DATA) == new_md5, "dvc repro ran on the new data"
    assert (ws.path / versioning.METRICS).read_text() != before
