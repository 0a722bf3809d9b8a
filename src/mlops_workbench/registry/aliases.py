"""Model registry: register versions, gate them, promote them by alias, roll back, with an audit trail.

Promotion moves aliases only (never the deprecated stages): a version is
approved into ``staging``, then ``production``; the version it replaces in
production keeps the alias ``previous`` so :func:`rollback` can bring it back.
Each approval (who, when, why, gate verdict) is stored twice: as tags on the
model version and as a line of the append-only audit log
``<home>/audit/registry.jsonl``. Alias moves happen under a file lock, so
racing promotions end with consistent aliases and both attempts logged.

Separation of duties: whoever registered a version (its ``registered_by`` tag)
may not approve its promotion to ``production``; the audit line names both. With
``registry.second_approval`` the person asking for a production promotion needs an
approval recorded beforehand by someone else (:func:`approve`; who is who:
:func:`mlops_workbench.registry.approvals.identity`).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from mlops_workbench import paramspec, tracking
from mlops_workbench.alias import PROMOTABLE, Alias
from mlops_workbench.errors import RegistryError
from mlops_workbench.paramspec import RegistryParams
from mlops_workbench.registry import approvals, audit
from mlops_workbench.registry import gate as gates
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome
from mlops_workbench.registry.gate import GateResult, holdout, judge, score
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:  # mlflow is imported where used: importing the registry stays cheap
    from mlflow import MlflowClient
    from mlflow.entities.model_registry import ModelVersion, RegisteredModel

__all__ = [
    "ALIASES",
    "GateResult",
    "RegistryError",
    "RegistryParams",
    "approve",
    "client",
    "get_alias",
    "list_versions",
    "promote",
    "quality_gate",
    "register",
    "release",
    "rollback",
]
ALIASES = PROMOTABLE
PREVIOUS = Alias.PREVIOUS
REGISTERED_BY = approvals.REGISTERED_BY
GateRule = Callable[[dict[str, float], "dict[str, float] | None", dict[str, str], RegistryParams], list[str]]
"""``rule(candidate_scores, production_scores_or_None, candidate_run_tags, params) -> reasons`` (empty: passed)."""


def client(wb: Workbench) -> MlflowClient:
    """An ``MlflowClient`` for the state folder's tracking server (:func:`mlops_workbench.tracking.client`)."""
    return tracking.client(wb)


def _model(c: MlflowClient, name: str) -> RegisteredModel:
    from mlflow.exceptions import MlflowException

    try:
        return c.get_registered_model(name)
    except MlflowException:
        known = sorted(m.name for m in c.search_registered_models())
        raise RegistryError(
            f"There is no registered model '{name}' (known: {', '.join(known) or 'none'}). "
            "Register a run's model first with registry.register(run_id, name)."
        ) from None


def _version(c: MlflowClient, name: str, version: str | int) -> ModelVersion:
    from mlflow.exceptions import MlflowException

    _model(c, name)
    try:
        return c.get_model_version(name, str(version))
    except MlflowException:
        known = sorted(int(v.version) for v in c.search_model_versions(f"name='{name}'"))
        raise RegistryError(
            f"Model '{name}' has no version {version} (versions: {', '.join(map(str, known)) or 'none'}). "
            "Pick an existing version or register a new one."
        ) from None


def register(wb: Workbench, run_id: str, name: str | None = None, artifact_path: str = "model") -> ModelVersion:
    """Register the model logged by run ``run_id`` (under ``artifact_path``) as a new version of ``name``.

    Records the sha256 digest of every artifact file on the version (tag ``integrity.sha256``).
    """
    name = name or paramspec.model_name()
    from mlflow.exceptions import MlflowException

    c = client(wb)
    try:
        run = c.get_run(run_id)
    except MlflowException:
        raise RegistryError(f"There is no run '{run_id}': pass the run_id of a run that logged a model.") from None
    logged = c.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{artifact_path}'",
    )
    if not logged:
        raise RegistryError(
            f"Run {run_id} logged no model named '{artifact_path}': log it with "
            f"mlflow.sklearn.log_model(model, name='{artifact_path}') inside the run."
        )
    try:
        c.get_registered_model(name)
    except MlflowException:
        c.create_registered_model(name)
    mv = c.create_model_version(
        name,
        logged[0].model_uri,
        run_id=run_id,
        tags={REGISTERED_BY: approvals.identity()},
        model_id=logged[0].model_id,
    )
    for _ in range(300):
        if mv.status == "READY":
            from mlops_workbench.registry import integrity

            integrity.record_digest(wb, name, mv.version, c)  # the artifact as registered, verified before every use
            return c.get_model_version(name, mv.version)
        time.sleep(0.1)
        mv = c.get_model_version(name, mv.version)
    raise RegistryError(f"Version {mv.version} of '{name}' is still {mv.status}: check the tracking server log.")


def get_alias(wb: Workbench, name: str, alias: str) -> ModelVersion | None:
    """The version ``alias`` points to, or None when the alias is not set (unknown model: RegistryError)."""
    from mlflow.exceptions import MlflowException

    c = client(wb)
    model = _model(c, name)
    if alias not in model.aliases:
        return None
    try:
        return c.get_model_version_by_alias(name, alias)
    except MlflowException:
        return None


def list_versions(wb: Workbench, name: str | None = None) -> list[ModelVersion]:
    """All versions of ``name``, newest first (unknown model: RegistryError)."""
    name = name or paramspec.model_name()
    c = client(wb)
    _model(c, name)
    return sorted(c.search_model_versions(f"name='{name}'"), key=lambda v: -int(v.version))


def quality_gate(
    wb: Workbench,
    name: str,
    candidate_version: str | int,
    holdout_df: Any = None,
    params: RegistryParams | dict[str, Any] | None = None,
    rule: GateRule | None = None,
) -> GateResult:
    """Score the candidate and the current production version on the fixed held-out set and judge.

    ``rule`` replaces the built-in rules: it gets both score dicts, the candidate run's tags (its lineage)
    and the params, and returns the reasons to refuse (the lab 03 exercise). A ``cost_budget`` in the params
    holds either way, against the cost recorded on the version.
    """
    import mlflow

    params = params if isinstance(params, RegistryParams) else RegistryParams.load(params)
    c = client(wb)
    tracking.use(wb)  # the models load through MLflow's fluent API
    candidate = _version(c, name, candidate_version)
    df = holdout(params) if holdout_df is None else holdout_df
    cand_scores = score(mlflow.sklearn.load_model(f"models:/{name}/{candidate.version}"), df)
    prod = _model(c, name).aliases.get(Alias.PRODUCTION)
    prod_scores = None
    if prod is not None:
        prod_scores = score(mlflow.sklearn.load_model(f"models:/{name}/{prod}"), df)
    cost = gates.measured_cost(candidate.tags)
    result = judge(name, str(candidate.version), cand_scores, prod, prod_scores, params, len(df), cost)
    if rule is None:
        return result
    tags = dict(c.get_run(candidate.run_id).data.tags) if candidate.run_id else {}
    reasons = rule(cand_scores, prod_scores, tags, params)
    if not isinstance(reasons, list) or not all(isinstance(r, str) for r in reasons):
        raise RegistryError(f"The gate rule returned {reasons!r}: return a list of reasons (strings), empty to pass.")
    reasons = reasons + gates.cost_reasons(str(candidate.version), cost, params)  # a budget holds whatever the rule
    return result.model_copy(update={"passed": not reasons, "reasons": reasons})


def promote(
    wb: Workbench,
    name: str,
    version: str | int,
    alias: str = Alias.PRODUCTION,
    approver: str | None = None,
    reason: str = "",
    gate_result: GateResult | None = None,
    params: RegistryParams | dict[str, Any] | None = None,
    requester: str | None = None,
) -> ModelVersion:
    """Point ``alias`` at ``version`` with an approval record; the replaced production version becomes ``previous``.

    Promotion to ``production`` needs a passing gate (run now when ``gate_result``
    is None), an approver other than the person who registered the version, and,
    with ``require_staging``, an earlier approval into ``staging`` (or the ``staging``
    alias on the version, set with MLflow's ``set_registered_model_alias``).
    With ``second_approval``, the person asking (``requester``, else ``approver``) is not the approver: the
    approval is the one recorded beforehand by :func:`approve`, and it must be someone else's.
    A version whose artifact fails its sha256 verification is refused for every alias.
    Every attempt, refused ones included, goes to the audit log.
    """
    params = params if isinstance(params, RegistryParams) else RegistryParams.load(params)
    approver = approvals.identity(approver)
    if alias not in ALIASES:
        raise RegistryError(f"Unknown alias '{alias}': promote to one of {', '.join(ALIASES)}.")
    if not reason.strip():
        raise RegistryError("An approval needs a reason: pass reason='why this version should serve'.")
    c = client(wb)
    mv = _version(c, name, version)
    version = str(mv.version)
    registrant = mv.tags.get(REGISTERED_BY)
    second = None
    if alias == Alias.PRODUCTION and params.second_approval:
        requester = approvals.identity(requester or approver)
        review = approvals.read_review(c, name, version)
        approver, second = approvals.second_person(requester, review, version, params.approval_max_age_days)
    entry: dict[str, Any] = dict(
        action=AuditAction.PROMOTE,
        model=name,
        version=version,
        alias=alias,
        approver=approver or None,
        registered_by=registrant,
        reason=reason,
        **({"requester": requester} if requester else {}),
    )
    from mlops_workbench.registry import integrity

    try:
        integrity.verify(wb, name, version, client=c)
    except integrity.IntegrityError as exc:
        _refuse(wb, entry, str(exc).rstrip("."))
    if alias == Alias.PRODUCTION:
        staged = "approval.staging.at" in mv.tags or _model(c, name).aliases.get(Alias.STAGING) == version
        if params.require_staging and not staged:
            _refuse(
                wb,
                entry,
                f"version {version} was never approved into staging: promote it to 'staging' first "
                "(or point the 'staging' alias at it)",
            )
        if second:
            _refuse(wb, entry, second)
        if registrant and registrant == approver:
            _refuse(
                wb,
                entry,
                f"separation of duties: {approver} registered version {version}, so {approver} may not "
                "approve its promotion to production; ask someone else to approve (approver=...)",
            )
        if gate_result is None:
            gate_result = quality_gate(wb, name, version, params=params)
        if str(gate_result.candidate_version) != version:
            _refuse(wb, entry, f"the gate result is for version {gate_result.candidate_version}, not {version}")
        if not gate_result.passed:
            _refuse(wb, entry, gate_result.summary(), gate_result)
    with audit.lock(wb, f"registry-{name}"):
        aliases = _model(c, name).aliases
        replaced = aliases.get(alias)
        if alias == Alias.PRODUCTION and gate_result is not None and gate_result.production_version != replaced:
            _refuse(
                wb,
                entry,
                f"production moved to v{replaced} after the gate compared against "
                f"v{gate_result.production_version}: run the gate again",
                gate_result,
            )
        stamp = approvals.record(c, name, version, approver=approver, reason=reason, gate=gate_result, alias=alias)[
            "at"
        ]
        if alias == Alias.PRODUCTION and replaced is not None and str(replaced) != version:
            c.set_registered_model_alias(name, PREVIOUS, str(replaced))
        c.set_registered_model_alias(name, alias, version)
        if alias == Alias.PRODUCTION and aliases.get(Alias.STAGING) == version:
            c.delete_registered_model_alias(name, Alias.STAGING)
        audit.append(
            wb, AuditEntry(**entry, outcome=AuditOutcome.PROMOTED, replaced=replaced, at=stamp, gate=gate_result)
        )
    return c.get_model_version(name, version)


def release(
    wb: Workbench,
    name: str,
    version: str | int,
    approver: str,
    reason: str,
    *,
    staging_approver: str | None = None,
    staging_reason: str | None = None,
    **production: Any,
) -> ModelVersion:
    """The whole walk a release takes: approve ``version`` into ``staging``, then into ``production`` (where the
    gate runs and the replaced version becomes ``previous``); returns the production version.

    Both steps go through :func:`promote`, so each leaves its own approval and audit line, and a refusal at either
    stops the walk with a :class:`RegistryError`. The staging step has the same approver and reason unless
    ``staging_approver``/``staging_reason`` say otherwise; ``production`` keywords (``gate_result``, ``params``)
    go to the production step only.
    """
    promote(
        wb,
        name,
        version,
        Alias.STAGING,
        approver=staging_approver or approver,
        reason=reason if staging_reason is None else staging_reason,
    )
    return promote(wb, name, version, Alias.PRODUCTION, approver=approver, reason=reason, **production)


def approve(
    wb: Workbench,
    name: str,
    version: str | int,
    approver: str | None = None,
    reason: str = "",
    alias: str = Alias.PRODUCTION,
) -> approvals.Review:
    """Record ``approver``'s approval of ``version`` for ``alias`` ahead of its promotion (second-person approvals:
    params.yaml ``registry.second_approval``); ``approver`` defaults to :func:`approvals.identity`. The registrant
    may not approve; approvals and refusals both go to the audit log.
    """
    if alias not in ALIASES:
        raise RegistryError(f"Unknown alias '{alias}': approve for one of {', '.join(ALIASES)}.")
    c = client(wb)
    mv = _version(c, name, version)
    return approvals.approve(wb, c, mv, approver=approvals.identity(approver), reason=reason, alias=alias)


def _refuse(wb: Workbench, entry: dict[str, Any], why: str, gate: GateResult | None = None) -> None:
    audit.append(wb, AuditEntry(**entry, outcome=AuditOutcome.REFUSED, error=why, gate=gate))
    raise RegistryError(f"Promotion refused, nothing changed: {why}.")


def rollback(
    wb: Workbench, name: str | None = None, approver: str | None = None, reason: str = "rollback"
) -> ModelVersion:
    """Point ``production`` back at ``previous`` (then unset ``previous``); RegistryError if there is none."""
    name = name or paramspec.model_name()
    approver = approvals.identity(approver)
    c = client(wb)
    with audit.lock(wb, f"registry-{name}"):
        aliases = _model(c, name).aliases
        previous, current = aliases.get(PREVIOUS), aliases.get(Alias.PRODUCTION)
        entry = dict(
            action=AuditAction.ROLLBACK,
            model=name,
            version=previous,
            alias=Alias.PRODUCTION,
            approver=approver,
            reason=reason,
            replaced=current,
        )
        if previous is None:
            audit.append(wb, AuditEntry(**entry, outcome=AuditOutcome.REFUSED, error="no previous version"))
            raise RegistryError(
                f"Model '{name}' has no '{PREVIOUS}' version to roll back to; nothing changed. "
                "Rollback needs an earlier production version: promote one explicitly instead."
            )
        stamp = audit.now()
        if current is not None:
            c.set_model_version_tag(name, current, "rolled_back.at", stamp)
            c.set_model_version_tag(name, current, "rolled_back.reason", reason)
        c.set_registered_model_alias(name, Alias.PRODUCTION, previous)
        c.delete_registered_model_alias(name, PREVIOUS)
        c.set_model_version_tag(
            name,
            previous,
            "approval.production.rollback",
            json.dumps({"approver": approver, "at": stamp, "reason": reason, "from_version": current}),
        )
        audit.append(wb, AuditEntry(**entry, outcome=AuditOutcome.ROLLED_BACK, at=stamp))
    return c.get_model_version(name, previous)
