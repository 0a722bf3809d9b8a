"""Registry and versioning drills against one real MLflow server (sqlite) per module: each drill's setup
breaks the state its checks see, the reference fix passes, reset leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from mlops_workbench import drills, procs, registry, tracking
from mlops_workbench.drills import validate


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("drills-home")
    tracking.up(port=procs.free_port(), home=home, timeout=300)
    yield home
    procs.stop_all(home)


def failed(drill, ctx) -> set[str]:
    return {o.id for o in drill.grade(ctx) if not o.passed}


def cycle(name: str, home: Path, broken: set[str]) -> None:
    """setup -> exactly ``broken`` fail (guards pass) -> reference fix -> all pass -> reset cleans up."""
    drill = drills.get(name)
    ctx = drill.context(home)
    drill.reset(ctx)
    drill.setup(ctx)
    assert failed(drill, ctx) == broken
    drill.reference_fix(ctx)
    assert failed(drill, ctx) == set()
    drill.reset(ctx)
    assert not drills.drill_paths(home).folder(name).exists()
    assert all(procs.get(s, home) is None for s in drill.services(ctx))
    assert ctx.model_name not in {m.name for m in registry.client(home).search_registered_models()}


@pytest.mark.slow
def test_bad_model(home):
    cycle("bad-model", home, {"production-restored", "rolled-back-by-alias", "server-answers-right", "postmortem"})


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
def test_validate_proves_the_irreproducible_drill(home):
    """The broken state fails the data check; versioning the drift, deleting the data, resetting the history and
    deleting the run or the model (even after the real repair) each fail a guard."""
    drill = drills.get("irreproducible")
    guards = {c.id for c in drill.all_checks() if c.guard}
    result = validate.validate_drill(drill, home)
    assert result.ok, result.model_dump()
    cases = {c.case: c for c in result.cases}
    assert "data-restored" in cases["broken"].failed_checks and cases["reference-fix"].failed_checks == []
    destructive = {name: set(c.failed_checks) for name, c in cases.items() if name.startswith("destructive:")}
    assert len(destructive) == len(drill.destructive_fixes())
    assert all(failed & guards for failed in destructive.values()), destructive
    assert "data-version-kept" in destructive["destructive:version-the-drift"]
    assert destructive["destructive:delete-the-production-run"] == {"runs-intact"}  # after the full repair
    assert destructive["destructive:delete-the-registered-model"] == {"registry-intact"}


@pytest.mark.slow
def test_validate_proves_the_bad_model_drill(home):
    """Broken fails, the reference fix passes, and stopping everything, deleting the model or rewriting the audit
    log never pass. (Last in the module: one destructive fix stops the tracking server.)"""
    result = validate.validate_drill(drills.get("bad-model"), home)
    assert result.ok, result.model_dump()
    cases = {c.case: c for c in result.cases}
    assert cases["broken"].failed_checks and cases["reference-fix"].failed_checks == []
    assert {"destructive:stop-every-service", "destructive:delete-the-registered-model",
            "destructive:rewrite-the-audit-log"} <= set(cases)
    assert "audit-trail-intact" in cases["destructive:rewrite-the-audit-log"].failed_checks
