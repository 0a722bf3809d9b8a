"""Lab 03 graded end to end (papermill, real MLflow and model servers): a submission that lets `registry.promote` do
the promotion scores 0 for that exercise with the API to write, and a hand-made rollback that leaves `previous` and
`production` on one version and writes no audit line fails the public and the hidden rollback checks.

One graded run, shared by the module's tests (a lab 03 grading takes minutes here).
"""

from __future__ import annotations

import nbformat
import pytest

from mlops_workbench.labs.format import Lab
from mlops_workbench.labs.grade import fresh_workbench, grade
from mlops_workbench.labs.report import Report
from mlops_workbench.workbench import Workbench

pytestmark = pytest.mark.slow
LAB = Lab.find("03-registry-promotion")

PACKAGE_PROMOTE = """
promote = load_function("promotion.py", "promote")
for version, why in ((v1.version, "first production model"), (v2.version, "beats production on the held-out set")):
    client.set_registered_model_alias(model_name, "staging", version)
    gate = registry.quality_gate(lab.wb, model_name, version, rule=gate_rule)
    registry.promote(lab.wb, model_name, version, "production", approver=approver, reason=why, gate_result=gate)
gate_v2 = gate
print(gate_v2.summary())
"""
HAND_ROLLBACK = """
rollback = load_function("rollback.py", "rollback")
previous = client.get_model_version_by_alias(model_name, "previous")
client.set_registered_model_alias(model_name, "production", previous.version)  # `previous` stays, no audit line
ModelServerClient.of(lab.wb, service.url).reload()
served = httpx.get(service.url + "/version").json()
"""
LAZY_ROLLBACK_FILE = """%%writefile rollback.py
def rollback(client, name, approver, reason, record):
    previous = client.get_model_version_by_alias(name, "previous").version
    client.set_registered_model_alias(name, "production", previous)
    return client.get_model_version(name, previous)
"""


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> Report:
    folder = tmp_path_factory.mktemp("lab03-graded")
    nb = nbformat.read(LAB.source, as_version=4)
    answers = {
        "promote": PACKAGE_PROMOTE.strip(),
        "rollback": HAND_ROLLBACK.strip(),
        "rollback-code": LAZY_ROLLBACK_FILE.strip(),
    }
    for cell in nb.cells:
        cell.source = answers.get(cell.get("id"), cell.source)
    path = folder / "03-registry-promotion.ipynb"
    nbformat.write(nb, path)
    return grade(fresh_workbench(Workbench.from_env(), folder / "out"), path, folder / "out", LAB, seed=424242)


def test_the_seed_is_recorded(report):
    assert report.seed == 424242


def test_registry_promote_scores_zero_for_the_promotion_exercise_and_names_the_api(report):
    checks = {c.id: c for c in report.checks}
    for cid in (
        "gate-written",
        "promoted-through-staging",
        "worse-model-refused",
        "promote-refuses-hidden",
        "promote-moves-hidden",
    ):
        assert checks[cid].score == 0 and checks[cid].status == "failed", cid
        assert "`registry.promote` (cell 'promote'" in checks[cid].message, cid
        assert "MlflowClient.set_registered_model_alias" in checks[cid].message, cid
    for cid in ("versions-registered", "gate-rule-written", "gate-rule-planted", "serving-production"):
        assert checks[cid].status == "passed", (cid, checks[cid].message)


def test_a_rollback_that_leaves_both_aliases_and_no_audit_line_fails(report):
    checks = {c.id: c for c in report.checks}
    assert checks["rolled-back"].status == "failed"
    assert "holds both 'production' and 'previous'" in checks["rolled-back"].message
    hidden = checks["rollback-hidden"]
    assert hidden.status == "failed" and hidden.score == 0
    assert "lab03-hidden" not in hidden.message, "the message must not reveal the hidden registry"
