"""Re-release a retrained version: shadow first, then lab 04's canary, then production (lab 07).

:func:`release_after_shadow` serves the candidate as the router's shadow
(:meth:`~mlops_workbench.rollout.backends.local.LocalBackend.deploy_shadow`): the router mirrors each live
prediction request to it and discards its answers, until ``requests`` copies were answered or ``window_s``
seconds have passed. The router's counters over that window are judged by
:func:`~mlops_workbench.monitoring.shadow.shadow_verdict`; a failing verdict stops here with
:class:`ReleaseFailed` and production untouched. A passing one goes on to a canary driven by lab 04's controller
(:func:`mlops_workbench.rollout.ops.controller`), whose promotion walks the registry's aliases (staging, then
production) with the gate result the retrain got on its fresh window. The shadow and the canary are lines of the
audit log carrying the candidate's lineage, so the chain alert -> data commit -> run -> version -> shadow verdict
-> rollout can be read back (:mod:`mlops_workbench.monitoring.chain`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict

from mlops_workbench import paramspec
from mlops_workbench.errors import Failed, RegistryError
from mlops_workbench.monitoring.retrain import RetrainResult
from mlops_workbench.monitoring.shadow import read_stats, shadow_verdict, watch
from mlops_workbench.registry import audit
from mlops_workbench.registry.audit import AuditAction, AuditEntry, AuditOutcome, Lineage
from mlops_workbench.registry.gate import GateResult
from mlops_workbench.registry.verdicts import ShadowPolicy, ShadowVerdict
from mlops_workbench.rollout import ops
from mlops_workbench.rollout.backends.local import LocalBackend, MetricsMode
from mlops_workbench.rollout.policy import Policy
from mlops_workbench.rollout.policy import load as load_policy
from mlops_workbench.rollout.state import RolloutPhase
from mlops_workbench.workbench import Workbench


class ReleaseResult(BaseModel):
    """How a release went: the shadow's verdict and, when it passed, the canary rollout's end."""

    model_config = ConfigDict(extra="forbid")
    model: str
    version: str
    shadow: ShadowVerdict
    rollout: str | None = None
    phase: str | None = None
    reason: str = ""

    @property
    def promoted(self) -> bool:
        return self.phase == RolloutPhase.PROMOTED

    def summary(self) -> str:
        tail = f"; canary {self.rollout}: {self.phase} ({self.reason})" if self.rollout else ""
        return f"{self.model} version {self.version}: {self.shadow.summary()}{tail}"


class ReleaseFailed(Failed):
    """The shadow's verdict failed, or the canary did not promote: production was left as it was."""

    def __init__(self, result: ReleaseResult) -> None:
        why = (
            f"the canary ended {result.phase}: {result.reason}"
            if result.rollout
            else "the shadow failed, so no canary started"
        )
        super().__init__(f"{result.summary()}. Not released: {why}; production is unchanged.")
        self.result = result


def retrain_record(entries: list[AuditEntry], model: str, version: str) -> tuple[Lineage | None, GateResult | None]:
    """The lineage of the retrain that registered ``version`` of ``model`` and its gate's verdict on the fresh
    window (pure; None for what no retrain recorded)."""
    lineage, gate = None, None
    for e in entries:
        if e.model == model and e.version == str(version):
            if e.action == AuditAction.RETRAIN and e.outcome == AuditOutcome.REGISTERED:
                lineage = e.lineage
            elif e.action == AuditAction.GATE and e.gate is not None:
                gate = e.gate
    return lineage, gate


def _candidate(
    wb: Workbench, candidate: RetrainResult | str, model_name: str | None
) -> tuple[str, str, GateResult | None, Lineage | None]:
    """(model, version, the retrain's gate verdict, its lineage); RegistryError for a version that lost its gate."""
    gate: GateResult | None
    lineage: Lineage | None
    if isinstance(candidate, RetrainResult):
        model, version, gate, lineage = candidate.model, candidate.version, candidate.gate, candidate.lineage
    else:
        model, version = model_name or paramspec.model_name(), str(candidate)
        lineage, gate = retrain_record(audit.read(wb), model, version)
    if gate is not None and not gate.passed:
        raise RegistryError(
            f"Version {version} of '{model}' lost the gate on its fresh window ({gate.summary()}): it is not "
            "released, nothing changed. Retrain on better data, or release a version that passed."
        )
    return model, version, gate, lineage


def release_after_shadow(
    wb: Workbench,
    candidate: RetrainResult | str,
    *,
    model_name: str | None = None,
    requests: int | None = None,
    window_s: float = 120.0,
    policy: ShadowPolicy | None = None,
    rollout_policy: Policy | str = "default",
    metrics: MetricsMode = "auto",
    say: Callable[[str], None] | None = None,
) -> ReleaseResult:
    """Shadow ``candidate`` (a retrain's result, or a registered version), judge it, then canary it to production.

    Waits for ``requests`` mirrored requests (default: the policy's ``min_requests``) or ``window_s`` seconds of
    live traffic. A version a retrain registered is promoted on that retrain's gate verdict (a fresh window), and
    refused (RegistryError) when it lost it. Raises :class:`ReleaseFailed` when the shadow fails or the canary does
    not promote.
    """
    say = say or (lambda _text: None)
    policy = policy or ShadowPolicy()
    model, version, gate, lineage = _candidate(wb, candidate, model_name)
    plan = rollout_policy if isinstance(rollout_policy, Policy) else load_policy(rollout_policy)

    def log(action: AuditAction, outcome: AuditOutcome, **fields: Any) -> None:
        audit.append(wb, AuditEntry(action=action, model=model, version=version, outcome=outcome, **fields))

    backend = LocalBackend(wb, model_name=model, metrics=metrics)
    backend.up()
    router = backend.router()
    baseline = read_stats(router.metrics(), version)
    say(f"shadowing version {version}: the router mirrors live requests to it")
    try:
        backend.deploy_shadow(version)
        stats = watch(router, version, baseline, requests or policy.min_requests, window_s)
    finally:
        backend.stop_shadow()
    verdict = shadow_verdict(stats, policy)
    say(verdict.summary())
    outcome = AuditOutcome.PASSED if verdict.passed else AuditOutcome.FAILED
    log(AuditAction.SHADOW, outcome, shadow=verdict, lineage=lineage, reason=verdict.summary())
    result = ReleaseResult(model=model, version=version, shadow=verdict)
    if not verdict.passed:
        raise ReleaseFailed(result)
    promoter = ops.registry_promoter(wb, model, gate=gate)
    state = ops.controller(wb, metrics, model_name=model, say=say, promoter=promoter).start(plan, version)
    result = result.model_copy(update={"rollout": state.id, "phase": str(state.phase), "reason": state.reason or ""})
    moved = lineage.model_copy(update={"rollout": state.id}) if lineage else None
    outcome = AuditOutcome.PASSED if result.promoted else AuditOutcome.FAILED
    log(AuditAction.CANARY, outcome, lineage=moved, reason=f"rollout {state.id} {state.phase}: {state.reason}")
    if not result.promoted:
        raise ReleaseFailed(result)
    return result
