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
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.workbench import Workbench


@pytest.fixture(scope="module")
def home(tmp_path_factory) -> Path:
    home = tmp_path_factory.mktemp("drills-home")
    tracking.up(Workbench.from_env(home), port=procs.free_port(), timeout=300)
    yield home
    procs.stop_all(Workbench.from_env(home))


def failed(drill, ctx) -> set[str]:
    return {o.id for o in grading.outcomes(drill, ctx) if not o.passed}


def cycle(name: str, home: Path, broken: set[str]) -> dict:
    """setup (of the first variant) -> exactly ``broken`` fail (guards pass) -> reference fix -> all
    pass -> reset cleans up. Returns the facts the setup saved."""
    drill = drills.get(name)
    ctx = drill.context(Workbench.from_env(home))
    drill.reset(ctx)
    seeds = variants.seeds(drill.variants, name)
    drill.prepare(ctx, seeds[drill.variants[0].key])
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
def test_signature_mismatch(home):
    cycle("signature-mismatch", home, {"production-restored", "server-answers", "ci-test-catches-it", "postmortem"})


@pytest.mark.slow
def test_triple_v(home):
    cycle("triple-v", home, {"trace-correct"})


class RunDrill(Drill):
    """A drill without services whose setup logs one run: the guards see every run logged since and the run's
    tags; the destructive fixes repair it, then log a run (undone from the snapshot) or retag the run (prepared
    again); two of them only repair it, so they fail the validation unless a change of the case before leaks."""

    teardown = "delete-the-fix"
    variants = (Variant(key="one"), Variant(key="two"), Variant(key="three"))
    spec = DrillSpec(
        name="run-drill",
        number=91,
        symptom="a run",
        root_cause=RootCause.ANALYSIS_CONFIG,
        fixes=[Change.POLICY_CORRECTED],
        incident=False,
        minutes=5,
        brief="Look at {model}.",
        hints=["one", "two", "three"],
        answer="a fake",
    )

    def __init__(self) -> None:
        self.setups = 0

    def setup(self, ctx: DrillContext, variant: Variant) -> None:
        self.setups += 1
        client = tracking.client(ctx.wb)
        found = client.get_experiment_by_name(ctx.experiment)
        experiment = found.experiment_id if found else client.create_experiment(ctx.experiment)
        run = client.create_run(experiment, tags={"state": "as-set-up"}).info.run_id
        ctx.save_facts(run=run, experiment=experiment)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("fixed", lambda ctx: (ctx.folder / "fixed").exists() or fail("write fixed")),
            GradedCheck("no-new-run", _no_new_run, guard=True),
            GradedCheck("run-as-set-up", _run_as_set_up, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        (ctx.folder / "fixed").write_text("yes")

    def destructive_fixes(self):
        def log_a_run(ctx: DrillContext) -> None:
            self.reference_fix(ctx)
            tracking.client(ctx.wb).create_run(ctx.fact("experiment"))

        def retag(ctx: DrillContext) -> None:
            self.reference_fix(ctx)
            tracking.client(ctx.wb).set_tag(ctx.fact("run"), "state", "changed")

        return {
            "delete-the-fix": lambda ctx: (ctx.folder / "fixed").unlink(),
            "log-a-run": log_a_run,
            "repair-after-the-new-run": self.reference_fix,
            "retag-the-run": retag,
            "repair-after-the-retag": self.reference_fix,
        }

    def services(self, ctx: DrillContext) -> list[str]:
        return []


def _no_new_run(ctx: DrillContext) -> None:
    client = tracking.client(ctx.wb)
    since = client.get_run(ctx.fact("run")).info.start_time
    if client.search_runs([ctx.fact("experiment")], f"attributes.start_time > {since}"):
        fail("a run was logged after the setup")


def _run_as_set_up(ctx: DrillContext) -> None:
    if tracking.client(ctx.wb).get_run(ctx.fact("run")).data.tags.get("state") != "as-set-up":
        fail("the setup's run was retagged")


@pytest.mark.slow
def test_validate_restores_a_drill_without_services_only_when_every_change_is_undone(home, wb):
    """A case that only logged a run is undone from the snapshot (no new setup); one that retagged the setup's run
    is prepared again. Either way the next case starts clean: the plain repair after each passes every check (so
    the validation reports those two cases, and only them, as wrong)."""
    drill = RunDrill()
    result = validate.validate_drill(wb, drill)
    failed = {c.case: set(c.failed_checks) for c in result.cases if c.variant == "one"}
    assert failed["destructive:log-a-run"] == {"no-new-run"}
    assert failed["destructive:retag-the-run"] == {"run-as-set-up"}
    assert failed["destructive:repair-after-the-new-run"] == failed["destructive:repair-after-the-retag"] == set()
    assert not result.ok and [c.case for c in result.cases if not c.ok] == [
        "destructive:repair-after-the-new-run",
        "destructive:repair-after-the-retag",
    ]
    assert drill.setups == 3 + 1  # one per variant, and one again after the retag


@pytest.mark.slow
@pytest.mark.timeout(VALIDATE_TIMEOUT)
def test_validate_proves_the_irreproducible_drill(home, wb, monkeypatch):
    """The broken state fails exactly the answer, data and reproduction checks (guards pass), and the reference fix
    passes them; versioning the drift, deleting the data, resetting the history and deleting the run or the model
    (even after the real repair) each fail a guard; the reset at the end leaves nothing behind. (This is also the
    drill's whole cycle: no separate test prepares it again.)"""
    drill = drills.get("irreproducible")
    guards = {c.id for c in drill.all_checks() if c.guard}
    seeds, real_prepare = [], drill.prepare
    monkeypatch.setattr(drill, "prepare", lambda ctx, seed: seeds.append(seed) or real_prepare(ctx, seed))
    repairs, real_repair = [], reproducibility.retrain_and_reproduce
    monkeypatch.setattr(
        reproducibility, "retrain_and_reproduce", lambda ctx, why: repairs.append(why) or real_repair(ctx, why)
    )
    result = validate.validate_drill(wb, drill)
    assert result.ok, result.model_dump()
    # one setup per variant: every destructive case was undone from the snapshot, none prepared again
    assert seeds == list(variants.seeds(drill.variants, drill.name).values())
    # one retrain per variant's reference fix and one for versioning the drift: the cases that destroy after the
    # whole repair start from the state it left instead of repairing again
    assert len(repairs) == len(seeds) + 1, repairs
    assert {c.variant for c in result.cases} == {v.key for v in drill.variants}
    first = {c.case: c for c in result.cases if c.variant == drill.variants[0].key}
    assert set(first["broken"].failed_checks) == {"cause-named", "data-restored", "reproduced-exactly"}
    assert first["reference-fix"].failed_checks == []
    ctx = drill.context(wb)
    assert not settings.layout(home).drills.folder(drill.name).exists() and not ctx.folder.exists()
    assert all(procs.get(wb, s) is None for s in drill.services(ctx))
    assert ctx.model_name not in {m.name for m in registry.client(wb).search_registered_models()}
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
def test_validate_proves_the_bad_model_drill(home, wb, monkeypatch):
    """Broken fails, the reference fix passes, and stopping everything, deleting the model or rewriting the audit
    log never pass. (Last in the module: one destructive fix stops the tracking server.)

    Its seeds break different versions and species: one makes v2 call versicolor virginica, another v3 call
    virginica versicolor; each fails exactly the broken checks and passes its own repair (the probe of the check
    follows the species), and the reset at the end leaves nothing behind."""
    drill = drills.get("bad-model")
    prepared: dict[str, dict] = {}
    real_prepare = drill.prepare

    def prepare(ctx, seed):  # the facts each variant's first setup saved
        variant = real_prepare(ctx, seed)
        prepared.setdefault(variant.key, ctx.facts())
        return variant

    monkeypatch.setattr(drill, "prepare", prepare)
    result = validate.validate_drill(wb, drill)
    assert result.ok, result.model_dump()
    broken = {"production-restored", "rolled-back-by-alias", "server-answers-right", "postmortem"}
    two = ("versicolor-as-virginica", "virginica-as-versicolor")
    for key in two:
        by_case = {c.case: c for c in result.cases if c.variant == key}
        assert set(by_case["broken"].failed_checks) == broken, key
        assert by_case["reference-fix"].failed_checks == [], key
    assert [(prepared[k]["variant"]["key"], prepared[k]["bad"], prepared[k]["good"]) for k in two] == [
        ("versicolor-as-virginica", "2", "1"),
        ("virginica-as-versicolor", "3", "2"),
    ]
    ctx = drill.context(wb)
    assert not settings.layout(home).drills.folder(drill.name).exists() and not ctx.folder.exists()
    assert all(procs.get(wb, s) is None for s in drill.services(ctx))
    assert ctx.model_name not in {m.name for m in registry.client(wb).search_registered_models()}
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
