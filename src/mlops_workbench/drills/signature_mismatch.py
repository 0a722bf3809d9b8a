"""Drill ``signature-mismatch``: production serves a version whose signature does not fit the clients' payloads."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from pydantic import Field

from mlops_workbench import tools
from mlops_workbench.drills import common, incidents, localtests, models
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.postmortem_spec import PostMortemTruth
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry.gate import GateResult

TRAFFIC = 30
URI_ENV = "MODEL_URI"
TEST_FILE = "tests/test_release.py"
REFERENCE_TEST = '''"""CI: the model under test must accept the payload our clients send (four named Iris features)."""
import os

from mlflow.models import get_model_info

from mlops_workbench.data import FEATURES


def test_signature_takes_the_client_payload():
    signature = get_model_info(os.environ["MODEL_URI"]).signature
    assert signature is not None, "log models with a signature"
    assert signature.inputs.input_names() == FEATURES
'''


class SignatureVariant(Variant):
    dropped: str = Field(description="the feature the broken version was trained without")
    good_releases: int = Field(ge=1, description="good releases before the broken one (so which version breaks)")


class SignatureMismatch(Drill):
    variants = (
        SignatureVariant(key="without-petal-width", dropped="petal_width", good_releases=1),
        SignatureVariant(key="without-sepal-length", dropped="sepal_length", good_releases=2),
        SignatureVariant(key="without-petal-length", dropped="petal_length", good_releases=1),
    )
    spec = DrillSpec(
        name="signature-mismatch",
        number=5,
        symptom="every request failing",
        root_cause=RootCause.MODEL_INTERFACE,
        symptoms=[RootCause.REQUEST_ERRORS],
        fixes=[Change.ROLLED_BACK, Change.SERVER_RELOADED, Change.CI_TEST_ADDED],
        incident=True,
        minutes=20,
        brief=(
            "Since the last release of `{model}` every request to the iris service fails: clients get 400 and an "
            "error message (many servers would answer 500). Restore service for users. Then make sure such a release "
            f"cannot ship again: add a pytest test `{TEST_FILE}` in {{folder}} that reads a model URI from "
            f"${URI_ENV} and fails on the version that broke users but passes on the one before. File the "
            "post-mortem."
        ),
        hints=[
            "Send the server one request and read the error; then compare what the last two versions expect "
            "(mlflow.models.get_model_info('models:/MODEL/N')).",
            "The registry can point production back at the version the last promotion replaced; the server loads the "
            "alias again when told. The test can compare the logged signature with mlops_workbench.data.FEATURES.",
            f"registry.rollback(lab.wb, MODEL, reason=...) then ModelServerClient.of(lab.wb, url).reload(). The test runs as "
            f"`MODEL_URI=models:/MODEL/N python -m pytest {TEST_FILE}` in the drill folder and asserts "
            "get_model_info(uri).signature.inputs.input_names() == FEATURES.",
        ],
        answer=(
            "The new version was trained on three features (one dropped): its signature takes three "
            "columns, the clients send four, every request is rejected. Roll back by alias, reload, then make the "
            "contract a CI test on the logged signature, so a version that breaks the payload can never be promoted "
            "again. Root cause: the model (its interface), not the servers."
        ),
    )

    def setup(self, ctx: DrillContext, variant: SignatureVariant) -> None:
        def skipped(ctx: DrillContext, bad: str, production: str) -> GateResult:  # "it's only a refactor"
            return GateResult(
                passed=True,
                model=ctx.model_name,
                candidate_version=bad,
                production_version=production,
                metric="f1_macro",
                min_gain=0.0,
                candidate={},
                production=None,
                reasons=[],
                holdout_rows=0,
            )

        (ctx.folder / "tests").mkdir(exist_ok=True)
        localtests.write_config(ctx.folder)
        incidents.break_production(
            ctx,
            variant.good_releases,
            models.Fault(dropped=variant.dropped),
            "refactor: fewer inputs, same accuracy",
            skipped,
            TRAFFIC,
            seed=ctx.fact("seed"),
        )

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("production-restored", incidents.production_restored),
            GradedCheck(
                "server-answers", lambda ctx: common.guard_server_answers(ctx, common.production(ctx)), guard=True
            ),
            GradedCheck("ci-test-catches-it", _ci_test),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
            GradedCheck("audit-trail-intact", common.guard_audit_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        dropped = ctx.variant(SignatureVariant).dropped
        incidents.roll_back(ctx, f"v{ctx.fact('bad')} takes no {dropped}, clients send it: every request fails")
        (ctx.folder / TEST_FILE).write_text(REFERENCE_TEST)
        incidents.record_truth(self, ctx)

    def wrong_repairs(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "test-that-always-fails": _always_failing_test,
        }

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        written = [Change.CI_TEST_ADDED] if (ctx.folder / TEST_FILE).is_file() else []
        return incidents.incident_truth(self, ctx, *written)


def run_test(ctx: DrillContext, version: str) -> tools.Ran:
    """Run the learner's CI test against ``models:/<model>/<version>``."""
    return localtests.run(ctx.folder, TEST_FILE, env={URI_ENV: f"models:/{ctx.model_name}/{version}"})


def _ci_test(ctx: DrillContext) -> None:
    """The CI test fails on the broken version and passes on the good one."""
    if not (Path(ctx.folder) / TEST_FILE).exists():
        fail(f"{ctx.folder / TEST_FILE} does not exist: write a pytest test that reads ${URI_ENV}.")
    with ThreadPoolExecutor(max_workers=2) as pool:  # two independent pytest runs, side by side
        broken, good = pool.map(lambda version: run_test(ctx, version), (ctx.fact("bad"), ctx.fact("good")))
    if broken.returncode == 0:
        fail(
            f"{TEST_FILE} passes on v{ctx.fact('bad')}, the version that broke every request: assert on its signature."
        )
    if good.returncode != 0:
        tail = (good.stdout + good.stderr).strip().splitlines()[-3:]
        fail(
            f"{TEST_FILE} fails on v{ctx.fact('good')}, the good version, too: a test that always fails blocks "
            f"every release. pytest said: {' | '.join(tail)}"
        )


def _always_failing_test(ctx: DrillContext) -> None:
    (ctx.folder / TEST_FILE).write_text("def test_block_everything():\n    assert False\n")


DRILL = SignatureMismatch()
