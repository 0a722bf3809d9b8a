"""Drill ``bad-model``: a skewed model was promoted to production. It answers 200, but wrongly."""

from __future__ import annotations

from typing import Callable

from mlops_workbench import procs, registry
from mlops_workbench.drills import common
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck, delete_model
from mlops_workbench.drills.postmortem import registry_truth
from mlops_workbench.drills.spec import DrillSpec, PostMortemTruth
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry import audit
from mlops_workbench.serving.client import ModelServerClient

TRAFFIC = 40
LENIENT_GATE = {"tolerance": 1.0, "min_gain": -1.0}
"""The gate someone loosened so the release could go out: the incident's real root cause upstream."""


class BadModel(Drill):
    spec = DrillSpec(
        name="bad-model",
        title="A bad model promoted to production",
        category="model",
        incident=True,
        minutes=15,
        brief=(
            "Support says the iris service (`drill-bad-model`) has been calling every versicolor a virginica since "
            "the last release. The server answers 200 to everything and its dashboards are green. Find which "
            "version is serving and how it got there (registry audit log, lineage), roll production back by "
            "alias with a reason, make the server serve it, keep the audit trail intact, and file the post-mortem."
        ),
        hints=[
            "`workbench registry audit` (or registry.audit.read()) shows who promoted "
            "what, when, and the gate they used.",
            "registry.rollback('drill-bad-model', approver=..., reason=...) moves production back to `previous`; "
            "the server follows after ModelServerClient(url).reload() (`workbench drill status` prints its URL).",
            "Post-mortem: onset is the bad promotion's `ts` in the audit log; detect and restore end at your rollback "
            "entry; the blast radius is workbench_model_requests_total{version=<bad>} on the server's /metrics.",
        ],
        answer=(
            "Verify: a versicolor flower comes back virginica from the server; /version names the version. "
            "Trace: the audit log shows it was promoted with a loosened gate (tolerance 1.0) that let a "
            "regression through. Roll back by alias (registry.rollback with a reason), reload the server, "
            "confirm the answer. Root cause: the model (trained on mislabelled data); prevent it by keeping the "
            "gate's non-regression tolerance at 0 and a canary with a prediction-shift metric."
        ),
    )

    def setup(self, ctx: DrillContext) -> None:
        good = common.log_version(ctx, "good")
        common.ship(ctx, good, "first release")
        bad = common.log_version(ctx, "skewed")
        gate = registry.quality_gate(ctx.model_name, bad, params=LENIENT_GATE, home=ctx.home)
        common.ship(ctx, bad, "hotfix release, gate loosened to ship on time", gate_result=gate)
        onset = audit.read(home=ctx.home)[-1]["ts"]
        service = common.serve(ctx)
        common.send_traffic(service.url, TRAFFIC, seed=1)
        ctx.save_facts(good=good, bad=bad, versions=[good, bad], onset=onset, **common.audit_fingerprint(ctx.home))

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("production-restored", _production_restored),
            GradedCheck("rolled-back-by-alias", _rolled_back),
            GradedCheck("server-answers-right", _server_right, guard=True),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
            GradedCheck("audit-trail-intact", common.guard_audit_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        registry.rollback(ctx.model_name, home=ctx.home, approver="on-call",
                          reason=f"v{ctx.fact('bad')} answers virginica for versicolor; back to v{ctx.fact('good')}")
        service = procs.get(ctx.server, ctx.home)
        assert service is not None
        ModelServerClient(service.url, home=ctx.home).reload()
        record_truth(self, ctx)

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "stop-every-service": lambda ctx: procs.stop_all(ctx.home) and None,
            "delete-the-registered-model": delete_model,
            "rewrite-the-audit-log": _rewrite_history,
        }

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        return incident_truth(ctx, "model")


def incident_truth(ctx: DrillContext, category) -> PostMortemTruth:
    """Registry incident truth: audit log since setup and the server's counter for the bad version."""
    service = procs.get(ctx.server, ctx.home)
    blast = common.served_requests(service.url, ctx.fact("bad")) if service else None
    return registry_truth(common.registry_entries_since(ctx), ctx.fact("onset"), str(ctx.fact("bad")), blast,
                          category)


def record_truth(drill: Drill, ctx: DrillContext) -> None:
    """Write the post-mortem the logs support (what a careful learner writes)."""
    from mlops_workbench.drills.postmortem import write
    from mlops_workbench.drills.spec import PostMortem

    truth = drill.truth(ctx)
    write(ctx.postmortem_path, PostMortem(time_to_detect_s=truth.time_to_detect_s or 0.0,
                                          time_to_restore_s=truth.time_to_restore_s or 0.0,
                                          blast_radius=truth.blast_radius or 0, root_cause=truth.root_cause))


def _production_restored(ctx: DrillContext) -> None:
    """Production points at the good version again."""
    current = common.production(ctx)
    if current == str(ctx.fact("bad")):
        fail(f"Production still points at v{current}, the skewed model: roll back by alias.")
    if current != str(ctx.fact("good")):
        fail(f"Production points at v{current}, not v{ctx.fact('good')} (the last good version).")


def _rolled_back(ctx: DrillContext) -> None:
    """The audit log records a rollback (or promotion) off the bad version with a reason of your own."""
    moves = [e for e in common.registry_entries_since(ctx)
             if e.get("alias") == "production" and e.get("outcome") in ("rolled_back", "promoted")]
    if not moves:
        fail("The audit log records no rollback since the drill started: use registry.rollback(...) "
             "(aliases set by hand leave no audit record).")
    if moves[-1].get("reason", "").strip() in ("", "rollback"):
        fail("The rollback has no reason: pass reason='what was wrong and what you restored'.")


def _server_right(ctx: DrillContext) -> None:
    """The model server is up, serves production and calls a versicolor a versicolor."""
    served = common.guard_server_answers(ctx, expect_version=common.production(ctx))
    if served["prediction"] != "versicolor":
        fail(f"The server answers {served['prediction']!r} for a versicolor flower: it still serves a skewed model.")


def _rewrite_history(ctx: DrillContext) -> None:
    """Make it look as if the bad release never happened: rewrite the audit log and move the alias by hand."""
    path = audit.log_path(home=ctx.home)
    kept = [line for line in path.read_text().splitlines(keepends=True) if f'"version": "{ctx.fact("bad")}"' not in line]
    path.write_text("".join(kept))
    registry.client(ctx.home).set_registered_model_alias(ctx.model_name, "production", str(ctx.fact("good")))


DRILL = BadModel()
