"""Registry and versioning drills against one real MLflow server (sqlite) per module: each drill's setup
breaks the state its checks see, the reference fix passes, reset leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from drill_fakes import VALIDATE_TIMEOUT

from mlops_workbench import drills, procs, registry, settings, tracking
from mlops_workbench.drills import grading, reproducibility, validate, variants
from mlops_workbench.workbench import Workbench


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("drills-home")
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)
    yield home
    procs.stop_all(Workbench.from_env(home))


def failed(drill, ctx) -> set[str]:
    return {o.id for o in grading.outcomes(drill, ctx) if not o.passed}


def cycle(name: str, home: Path, broken: set[str], variant: str | None = None) -> dict:
    """setup (of ``variant``, default the first) -> exactly ``broken`` fail (guards pass) -> reference fix -> all
    pass -> reset cleans up. Returns the facts the setup saved."""
    drill = drills.get(name)
    ctx = drill.context(Workbench.from_env(home))
    drill.reset(ctx)
    seeds = variants.seeds(drill.variants, name)
    drill.prepare(ctx, seeds[variant or drill.variants[0].key])
    facts = ctx.facts()
    assert failed(drill, ctx) == broken
    drill.reference_fix(ctx)
    assert failed(drill, ctx) == set()
    drill.reset(ctx)
    assert not settings.layout(home).drills.folder(name).exists()
    assert all(procs.get(Workbench.from_env(home), s) is None for s in drill.services(ctx))
    assert ctx.model_name not in {m.name for m in registry.client(Workbench.from_env(home)).search_registered_models()}
    return facts


@pytest.mark.slow
def test_two_seeds_of_bad_model_break_different_versions_and_species_each_graded_correctly(home):
    """One seed makes v2 call versicolor virginica, another v3 call virginica versicolor; each fails broken and
    passes its own repair (the probe of the check follows the species)."""
    broken = {"production-restored", "rolled-back-by-alias", "server-answers-right", "postmortem"}
    seen = [
        cycle("bad-model", home, broken, variant=key) for key in ("versicolor-as-virginica", "virginica-as-versicolor")
    ]
    assert [(f["variant"]["key"], f["bad"], f["good"]) for f in seen] == [
        ("versicolor-as-virginica", "2", "1"),
        ("virginica-as-versicolor", "3", "2"),
    ]


@pytest.mark.slow
def test_signature_mismatch(home):
    cycle("signature-mismatch", home, {"production-restored", "server-answers", "ci-test-catches-it", "postmortem"})


@pytest.mark.slow
def test_triple_v(home):
    cycle("triple-v", home, {"trace-correct"})


@pytest.mark.slow
def test_irreproducible(home):
    cycle("irreproducible", home, {"cause-named", "data-restored", "reproduced-exactly"})


@pytest.mark.slow
@pytest.mark.timeout(VALIDATE_TIMEOUT)
def test_validate_proves_the_irreproducible_drill(home, wb):
    """The broken state fails the data check; versioning the drift, deleting the data, resetting the history and
    deleting the run or the model (even after the real repair) each fail a guard."""
    drill = drills.get("irreproducible")
    guards = {c.id for c in drill.all_checks() if c.guard}
    result = validate.validate_drill(wb, drill)
    assert result.ok, result.model_dump()
    assert {c.variant for c in result.cases} == {v.key for v in drill.variants}
    cases = {c.case: c for c in result.cases}  # the first variant's destructive cases; the last one's others
    assert "data-restored" in cases["broken"].failed_checks and cases["reference-fix"].failed_checks == []
    destructive = {name: set(c.failed_checks) for name, c in cases.items() if name.startswith("destructive:")}
    assert len(destructive) == len(drill.destructive_fixes()) - 1  # the teardown runs after each reference fix
    assert all(failed & guards for failed in destructive.values()), destructive
    assert "data-version-kept" in destructive["destructive:version-the-drift"]
    assert destructive["destructive:delete-the-production-run"] == {"runs-intact"}  # after the full repair
    assert destructive["destructive:delete-the-registered-model"] == {"registry-intact"}
    assert "data-version-kept" in cases["teardown:delete-the-workspace"].failed_checks


@pytest.mark.slow
@pytest.mark.timeout(VALIDATE_TIMEOUT)
def test_validate_proves_the_bad_model_drill(home, wb):
    """Broken fails, the reference fix passes, and stopping everything, deleting the model or rewriting the audit
    log never pass. (Last in the module: one destructive fix stops the tracking server.)"""
    result = validate.validate_drill(wb, drills.get("bad-model"))
    assert result.ok, result.model_dump()
    assert len({c.variant for c in result.cases}) == 3 and len([c for c in result.cases if c.case == "broken"]) == 3
    cases = {c.case: c for c in result.cases}
    assert cases["broken"].failed_checks and cases["reference-fix"].failed_checks == []
    assert {
        "teardown:stop-every-service",
        "destructive:delete-the-registered-model",
        "destructive:rewrite-the-audit-log",
    } <= set(cases)
    assert "audit-trail-intact" in cases["destructive:rewrite-the-audit-log"].failed_checks


@pytest.mark.slow
def test_signature_ci_test_runs_by_hand_without_environment_and_leaves_no_files(home):
    """The hint's command, typed in the drill folder with no MLFLOW_TRACKING_URI, finds the state folder's tracking
    server through the folder's pytest.ini and leaves nothing behind (no mlflow.db, cache or bytecode)."""
    drill = drills.get("signature-mismatch")
    ctx = drill.context(Workbench.from_env(home))
    drill.reset(ctx)
    drill.prepare(ctx, 0)
    try:
        drill.reference_fix(ctx)
        before = sorted(p.relative_to(ctx.folder) for p in ctx.folder.rglob("*"))
        env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "WORKBENCH_HOME")}
        for version, code in ((ctx.fact("good"), 0), (ctx.fact("bad"), 1)):
            by_hand = subprocess.run(
                [sys.executable, "-m", "pytest", "tests/test_release.py"],
                cwd=ctx.folder,
                env={**env, "MODEL_URI": f"models:/{ctx.model_name}/{version}"},
                capture_output=True,
                text=True,
                timeout=300,
            )
            assert by_hand.returncode == code, by_hand.stdout[-2000:] + by_hand.stderr[-2000:]
        assert sorted(p.relative_to(ctx.folder) for p in ctx.folder.rglob("*")) == before
    finally:
        drill.reset(ctx)


@pytest.mark.slow
def test_unlocked_data(home, wb):
    """A data commit without its dvc.lock: the answer, the rerun pipeline and an exact reproduction repair it."""
    facts = cycle("unlocked-data", home, {"cause-named", "lock-committed", "reproduced-exactly"})
    tags = tracking.client(wb).get_run(facts["bad_run"]).data.tags
    assert reproducibility.expected(tags) == ("stale-outputs", "data/iris.csv") and tags["data.modified"] == "false"


@pytest.mark.slow
def test_unapproved_release(home):
    """A version slipped into production: putting production back, then releasing it properly, repairs it."""
    cycle("unapproved-release", home, {"put-back-first", "released-properly"})
