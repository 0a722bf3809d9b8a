"""Drill ``unapproved-release``: a version reached production without the release process (its alias set directly,
approval tags written by its own author, or staging skipped). The repair puts production back on the last properly
released version, then releases the newer one properly: staging, the gate, a second person's approval."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import Field

from mlops_workbench import procs, registry
from mlops_workbench.alias import Alias
from mlops_workbench.drills import common
from mlops_workbench.drills.base import SETUP_APPROVER, Drill, DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry import audit
from mlops_workbench.serving.client import ModelServerClient

TRAFFIC = 20
REGISTERED_BY = "registered_by"
MOVED = (audit.AuditOutcome.PROMOTED, audit.AuditOutcome.ROLLED_BACK)


class Bypass(Variant):
    """How the newer version reached production (the key says it) and after how many proper releases."""

    good_releases: int = Field(ge=1)


class UnapprovedRelease(Drill):
    variants = (
        Bypass(key="alias-set-directly", good_releases=2),
        Bypass(key="self-approved", good_releases=1),
        Bypass(key="staging-skipped", good_releases=2),
    )
    spec = DrillSpec(
        name="unapproved-release",
        number=10,
        symptom="production flagged by the release audit",
        root_cause=RootCause.RELEASE_PROCESS_BYPASSED,
        fixes=[Change.ROLLED_BACK, Change.PROMOTED_PROPERLY, Change.SERVER_RELOADED],
        incident=False,
        minutes=15,
        brief=(
            "The release dashboard flags `{model}`: the version that answers users now has no complete release "
            "record. Put production back on the last version that has one, then bring the newer version to "
            "production the way every release goes, keeping every record intact. The model server must serve what "
            "production names."
        ),
        hints=[
            "Compare the registry's aliases and version tags (`workbench registry list`, the approval.* tags) with "
            "the audit log (`workbench registry audit`): which production change has no entry, or an incomplete one?",
            "A release goes to staging first, passes the gate against production, and is approved by someone other "
            "than its author. `registry.rollback` goes to the `previous` alias, which may not be the version you want.",
            "registry.promote(lab.wb, MODEL, GOOD, 'production', approver=..., reason=...), then promote the newer version to "
            "'staging' and to 'production' (gate run, approver not its author), then ModelServerClient.of(lab.wb, url).reload().",
        ],
        answer=(
            "The newest version reached production outside the process: the audit log has no promotion for it, or "
            "one without a staging approval, or its approval tags name its own author. Put production back on the "
            "last version with a full record (an audited promotion: the `previous` alias may point elsewhere), then "
            "release the newer one through staging, the gate and a second person, and make the server follow. "
            "Prevent it: only the release pipeline may set aliases (registry permissions), and an alert on alias "
            "changes without an audit entry."
        ),
    )

    def setup(self, ctx: DrillContext, variant: Bypass) -> None:
        good = common.good_releases(ctx, variant.good_releases)[-1]
        service = common.serve(ctx)
        common.send_traffic(service.url, TRAFFIC, seed=ctx.fact("seed"))
        candidate = common.log_version(ctx)
        {"alias-set-directly": _alias_directly, "self-approved": _self_approved, "staging-skipped": _staging_skipped}[
            variant.key
        ](ctx, candidate)
        ModelServerClient.of(ctx.wb, service.url).reload()
        common.send_traffic(service.url, TRAFFIC, seed=ctx.fact("seed") + 1)
        versions = [v.version for v in registry.list_versions(ctx.wb, ctx.model_name)]
        ctx.save_facts(good=good, candidate=candidate, versions=versions, **common.audit_fingerprint(ctx.wb))

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("put-back-first", _put_back_first),
            GradedCheck("released-properly", _released_properly),
            GradedCheck(
                "server-follows", lambda ctx: common.guard_server_answers(ctx, common.production(ctx)), guard=True
            ),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
            GradedCheck("audit-trail-intact", common.guard_audit_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        _repair(ctx)

    def wrong_repairs(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "set-the-alias-directly-again": _alias_back_and_forth,
            "rewrite-the-audit-log": _repair_then_forget,
        }


def _repair(ctx: DrillContext) -> None:
    """Production back on the good version through the registry, then the newer one released properly."""
    good, candidate = str(ctx.fact("good")), str(ctx.fact("candidate"))
    registry.promote(
        ctx.wb,
        ctx.model_name,
        good,
        Alias.PRODUCTION,
        approver="on-call",
        reason=f"v{candidate} reached users without a release record; back to v{good}",
    )
    registry.release(
        ctx.wb,
        ctx.model_name,
        candidate,
        approver="reviewer",
        reason="staged, gated and reviewed",
        staging_approver="on-call",
        staging_reason="release candidate, through the process this time",
    )
    _reload(ctx)


def _alias_directly(ctx: DrillContext, version: str) -> None:
    registry.client(ctx.wb).set_registered_model_alias(ctx.model_name, Alias.PRODUCTION, version)


def _self_approved(ctx: DrillContext, version: str) -> None:
    """Approval tags written by the version's own author, and the alias set directly."""
    client = registry.client(ctx.wb)
    author = client.get_model_version(ctx.model_name, version).tags.get(REGISTERED_BY, "unknown")
    for key, value in {"approver": author, "at": audit.now(), "reason": "hotfix, approved it myself"}.items():
        client.set_model_version_tag(ctx.model_name, version, f"approval.production.{key}", value)
    _alias_directly(ctx, version)


def _staging_skipped(ctx: DrillContext, version: str) -> None:
    registry.promote(
        ctx.wb,
        ctx.model_name,
        version,
        Alias.PRODUCTION,
        approver="release-bot",
        reason="urgent, straight out",
        params={"require_staging": False},
    )


def _moves(ctx: DrillContext) -> list[audit.AuditEntry]:
    return [e for e in common.registry_entries_since(ctx) if e.outcome in MOVED]


def _proper(entries: list[audit.AuditEntry], version: str) -> int | None:
    """The position of the last proper production release of ``version`` in ``entries``: staged before, gate
    passed, approved by someone other than its author and than the drill's setup."""
    staged = False
    found = None
    for n, e in enumerate(entries):
        if e.version != version:
            continue
        if e.alias == Alias.STAGING:
            staged = True
        elif (
            e.alias == Alias.PRODUCTION
            and staged
            and e.gate is not None
            and e.gate.passed
            and e.approver not in (e.registered_by, SETUP_APPROVER)
        ):
            found = n
    return found


def _put_back_first(ctx: DrillContext) -> None:
    """Production went back to the last properly released version before anything else was released."""
    good, entries = str(ctx.fact("good")), _moves(ctx)
    back = next((n for n, e in enumerate(entries) if e.alias == Alias.PRODUCTION), None)
    if back is None or entries[back].version != good:
        fail(
            f"The first production change since the drill started is not a move back to v{good}, the last version "
            "with a full release record: put production back there first, through the registry (an alias set "
            "directly leaves no record, and the `previous` alias may point at another version)."
        )


def _released_properly(ctx: DrillContext) -> None:
    """The newer version is in production through staging, a passed gate and a second person's approval."""
    candidate = str(ctx.fact("candidate"))
    if common.production(ctx) != candidate:
        fail(f"Production is not on v{candidate}: release it too, the way every release goes.")
    if _proper(_moves(ctx), candidate) is None:
        fail(
            f"The audit log shows no proper release of v{candidate} since the drill started: promote it to "
            "staging, then to production with a gate that passes and an approver who is not its author."
        )


def _reload(ctx: DrillContext) -> None:
    service = procs.get(ctx.wb, ctx.server)
    assert service is not None
    ModelServerClient.of(ctx.wb, service.url).reload()


def _alias_back_and_forth(ctx: DrillContext) -> None:
    """Set the alias to the good version and back to the newer one directly: no record of either."""
    _alias_directly(ctx, str(ctx.fact("good")))
    _alias_directly(ctx, str(ctx.fact("candidate")))
    _reload(ctx)


def _repair_then_forget(ctx: DrillContext) -> None:
    """The repair, then every line the setup wrote dropped from the audit log, as if history began with it."""
    _repair(ctx)
    path = audit.log_path(ctx.wb)
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[int(ctx.fact("audit_lines")) :]))


DRILL = UnapprovedRelease()
