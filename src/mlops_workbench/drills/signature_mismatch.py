"""Drill ``signature-mismatch``: production serves a version whose signature does not fit the clients' payloads."""

from __future__ import annotations

import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Callable

from mlops_workbench import procs, registry
from mlops_workbench.ci.scaffold import run_tests
from mlops_workbench.drills import common
from mlops_workbench.drills.bad_model import incident_truth, record_truth
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck, delete_model
from mlops_workbench.drills.spec import DrillSpec, PostMortemTruth
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry import audit
from mlops_workbench.registry.gate import GateResult
from mlops_workbench.serving.client import ModelServerClient

TRAFFIC = 30
URI_ENV = "MODEL_URI"
TEST_FILE = "tests/test_signature.py"
REFERENCE_TEST = '''"""CI: the model under test must accept the payload our clients send (four named Iris features)."""
import os

from mlflow.models import get_model_info

from mlops_workbench.data import FEATURES


def test_signature_takes_the_client_payload():
    signature = get_model_info(os.environ["MODEL_URI"]).signature
    assert signature is not None, "log models with a signature"
    assert signature.inputs.input_names() == FEATURES
'''


class SignatureMismatch(Drill):
    spec = DrillSpec(
        name="signature-mismatch",
        title="Errors after promoting a version whose signature does not match the payloads",
        category="model",
        incident=True,
        minutes=20,
        brief=(
            "Right after the last release every request to the iris service (`drill-signature-mismatch`) fails. "
            "(This server answers a payload the model cannot take with 400 and a message; many servers answer 500.) "
            "Restore service by rolling production back by alias, make the server follow, then add a CI test "
            f"`{TEST_FILE}` in the drill folder that reads the model URI from ${URI_ENV} and fails on the broken "
            "version but passes on the good one. File the post-mortem."
        ),
        hints=[
            "Send the server one request and read the error; compare the signatures of the last two versions "
            "(mlflow.models.get_model_info('models:/drill-signature-mismatch/N').signature).",
            "registry.rollback('drill-signature-mismatch', reason=...) then ModelServerClient(url).reload().",
            f"The test runs as `MODEL_URI=models:/drill-signature-mismatch/N pytest {TEST_FILE}` in the drill folder "
            "with MLFLOW_TRACKING_URI set; assert on the signature's input names (mlops_workbench.data.FEATURES).",
        ],
        answer=(
            "The new version was trained on three features (petal_width dropped): its signature takes three "
            "columns, the clients send four, every request is rejected. Roll back by alias, reload, then make the "
            "contract a CI test on the logged signature, so a version that breaks the payload can never be promoted "
            "again. Root cause: the model (its interface), not the servers."
        ),
    )

    def setup(self, ctx: DrillContext) -> None:
        good = common.log_version(ctx, "good")
        common.ship(ctx, good, "first release")
        broken = common.log_version(ctx, "three-features")
        gate = GateResult(passed=True, model=ctx.model_name, candidate_version=broken, production_version=good,
                          metric="f1_macro", min_gain=0.0, candidate={}, production=None,
                          reasons=[], holdout_rows=0)  # the release skipped the gate ("it's only a refactor")
        common.ship(ctx, broken, "refactor: fewer features, same accuracy", gate_result=gate)
        onset = audit.read(home=ctx.home)[-1]["ts"]
        (ctx.folder / "tests").mkdir(exist_ok=True)
        common.pytest_config(ctx.folder)
        service = common.serve(ctx)
        common.send_traffic(service.url, TRAFFIC, seed=2)
        ctx.save_facts(good=good, bad=broken, versions=[good, broken], onset=onset,
                       **common.audit_fingerprint(ctx.home))

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("production-restored", _production_restored),
            GradedCheck("server-answers", lambda ctx: common.guard_server_answers(ctx, common.production(ctx)),
                        guard=True),
            GradedCheck("ci-test-catches-it", _ci_test),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
            GradedCheck("audit-trail-intact", common.guard_audit_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        registry.rollback(ctx.model_name, home=ctx.home, approver="on-call",
                          reason=f"v{ctx.fact('bad')} takes 3 features, clients send 4: every request fails")
        service = procs.get(ctx.server, ctx.home)
        assert service is not None
        ModelServerClient(service.url, home=ctx.home).reload()
        (ctx.folder / TEST_FILE).write_text(REFERENCE_TEST)
        record_truth(self, ctx)

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "stop-every-service": lambda ctx: procs.stop_all(ctx.home) and None,
            "delete-the-registered-model": delete_model,
            "test-that-always-fails": _always_failing_test,
        }

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        return incident_truth(ctx, "model")


def _production_restored(ctx: DrillContext) -> None:
    """Production points at the version whose signature fits the payloads."""
    current = common.production(ctx)
    if current != str(ctx.fact("good")):
        fail(f"Production points at v{current}; the version that takes the clients' payload is v{ctx.fact('good')}: "
             "roll back by alias.")


def run_test(ctx: DrillContext, version: str) -> subprocess.CompletedProcess:
    """Run the learner's CI test against ``models:/<model>/<version>``."""
    from mlops_workbench import tracking

    env = {**os.environ, URI_ENV: f"models:/{ctx.model_name}/{version}", "MLFLOW_TRACKING_URI": tracking.url(ctx.home)}
    return run_tests(ctx.folder, TEST_FILE, env=env)


def _ci_test(ctx: DrillContext) -> None:
    """The CI test fails on the broken version and passes on the good one."""
    if not (Path(ctx.folder) / TEST_FILE).exists():
        fail(f"{ctx.folder / TEST_FILE} does not exist: write a pytest test that reads ${URI_ENV}.")
    with ThreadPoolExecutor(max_workers=2) as pool:  # two independent pytest runs, side by side
        broken, good = pool.map(lambda version: run_test(ctx, version), (ctx.fact("bad"), ctx.fact("good")))
    if broken.returncode == 0:
        fail(f"{TEST_FILE} passes on v{ctx.fact('bad')}, the version that broke every request: assert on its signature.")
    if good.returncode != 0:
        tail = (good.stdout + good.stderr).strip().splitlines()[-3:]
        fail(f"{TEST_FILE} fails on v{ctx.fact('good')}, the good version, too: a test that always fails blocks "
             f"every release. pytest said: {' | '.join(tail)}")


def _always_failing_test(ctx: DrillContext) -> None:
    (ctx.folder / TEST_FILE).write_text("def test_block_everything():\n    assert False\n")


DRILL = SignatureMismatch()
