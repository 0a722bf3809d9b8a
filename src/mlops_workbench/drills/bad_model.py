"""Drill ``bad-model``: a skewed model was promoted to production. It answers 200, but wrongly."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from mlops_workbench import registry
from mlops_workbench.alias import Alias
from mlops_workbench.drills import common, incidents, models
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.postmortem_spec import PostMortemTruth
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry import audit
from mlops_workbench.registry.gate import GateResult

TRAFFIC = 40


class BadModelVariant(Variant):
    species: str = Field(description="the species the bad model names wrong")
    shown_as: str = Field(description="the name it gives those flowers instead")
    good_releases: int = Field(ge=1, description="good releases before the bad one (so which version is bad)")


class BadModel(Drill):
    variants = (
        BadModelVariant(key="versicolor-as-virginica", species="versicolor", shown_as="virginica", good_releases=1),
        BadModelVariant(key="virginica-as-versicolor", species="virginica", shown_as="versicolor", good_releases=2),
        BadModelVariant(key="setosa-as-versicolor", species="setosa", shown_as="versicolor", good_releases=2),
    )
    spec = DrillSpec(
        name="bad-model",
        number=1,
        symptom="customers report wrong species",
        root_cause=RootCause.MODEL_QUALITY,
        symptoms=[RootCause.WRONG_ANSWERS],
        fixes=[Change.ROLLED_BACK, Change.SERVER_RELOADED],
        incident=True,
        minutes=15,
        brief=(
            "Support forwards complaints about the iris service (model `{model}`): since the last release it calls "
            "some flowers by the wrong species. The server answers 200 to every request and its dashboards are "
            "green. Make users get right answers again without losing any record of what happened, then file the "
            "post-mortem."
        ),
        hints=[
            "Ask the server about a flower whose species you know and read its `GET /version`; then read the "
            "registry's audit log (`workbench registry audit`): who changed production, when, with which gate?",
            "The registry can point production back at the version the last promotion replaced, with your reason; a "
            "running model server keeps what it loaded until it is told to load the alias again.",
            "registry.rollback(lab.wb, MODEL, approver=..., reason=...), then ModelServerClient.of(lab.wb, url).reload(). Post-mortem: "
            "the onset is the bad promotion's `ts` in the audit log, the restore your rollback entry; the server's "
            "workbench_model_requests_total{version=<bad>} counts the requests it answered.",
        ],
        answer=(
            "Verify: a flower of the affected species comes back as another from the server; /version names the "
            "version. Trace: the audit log shows it was promoted with a loosened gate (tolerance 1.0) that let a "
            "regression through. Roll back by alias (registry.rollback with a reason), reload the server, "
            "confirm the answer. Root cause: the model (trained on mislabelled data); prevent it by keeping the "
            "gate's non-regression tolerance at 0 and a canary with a prediction-shift metric."
        ),
    )

    def setup(self, ctx: DrillContext, variant: BadModelVariant) -> None:
        fault = models.Fault(relabel=(variant.species, variant.shown_as))

        def lenient(ctx: DrillContext, bad: str, _production: str) -> GateResult:
            return registry.quality_gate(ctx.wb, ctx.model_name, bad, params=common.LENIENT_GATE)

        incidents.break_production(
            ctx,
            variant.good_releases,
            fault,
            "hotfix release, gate loosened to ship on time",
            lenient,
            TRAFFIC,
            seed=ctx.fact("seed"),
        )

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("production-restored", incidents.production_restored),
            GradedCheck("rolled-back-by-alias", _rolled_back),
            GradedCheck("server-answers-right", _server_right, guard=True),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
            GradedCheck("audit-trail-intact", common.guard_audit_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        variant = ctx.variant(BadModelVariant)
        incidents.roll_back(
            ctx, f"v{ctx.fact('bad')} calls {variant.species} flowers {variant.shown_as}; back to v{ctx.fact('good')}"
        )
        incidents.record_truth(self, ctx)

    def wrong_repairs(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "rewrite-the-audit-log": _rewrite_history,
        }

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        return incidents.incident_truth(self, ctx)


def _rolled_back(ctx: DrillContext) -> None:
    """The audit log records a rollback (or promotion) off the bad version with a reason of your own."""
    moves = [e for e in common.registry_entries_since(ctx) if e.changed_production]
    if not moves:
        fail(
            "The audit log records no rollback since the drill started: use registry.rollback(...) "
            "(aliases set by hand leave no audit record)."
        )
    if (moves[-1].reason or "").strip() in ("", "rollback"):
        fail("The rollback has no reason: pass reason='what was wrong and what you restored'.")


def _server_right(ctx: DrillContext) -> None:
    """The model server is up, serves production and names a flower of the affected species right."""
    species = ctx.variant(BadModelVariant).species
    served = common.guard_server_answers(ctx, expect_version=common.production(ctx), probe=models.TYPICAL[species])
    if served["prediction"] != species:
        fail(
            f"The server answers {served['prediction']!r} for a typical {species} flower: it still serves a model "
            "that names that species wrong."
        )


def _rewrite_history(ctx: DrillContext) -> None:
    """Make it look as if the bad release never happened: rewrite the audit log and move the alias by hand."""
    path = audit.log_path(ctx.wb)
    bad = f'"version": "{ctx.fact("bad")}"'
    path.write_text("".join(line for line in path.read_text().splitlines(keepends=True) if bad not in line))
    registry.client(ctx.wb).set_registered_model_alias(ctx.model_name, Alias.PRODUCTION, str(ctx.fact("good")))


DRILL = BadModel()
