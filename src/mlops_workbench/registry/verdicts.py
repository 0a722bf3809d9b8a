"""Verdicts the registry's audit log keeps beside the gate's: a shadow's judgement and the policy it applied.

:func:`mlops_workbench.monitoring.shadow.shadow_verdict` makes a :class:`ShadowVerdict`; the audit line of a
release's shadow step carries it (``AuditEntry.shadow``).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class ShadowPolicy(BaseModel):
    """What a shadow must show before its version may go on to a canary."""

    model_config = ConfigDict(extra="forbid")
    min_requests: int = Field(100, ge=1, description="mirrored requests needed before judging")
    min_agreement: float = Field(0.95, ge=0, le=1, description="share of compared answers equal to the primary's")
    max_error_rate: float = Field(0.01, ge=0, le=1, description="share of mirrored requests the shadow failed")
    max_latency_ratio: float = Field(2.0, gt=0, description="shadow p99 over the primary's p99, at most")
    latency_floor_ms: float = Field(
        50.0,
        ge=0,
        description="latencies below this count as this much: on a busy laptop one scheduler hiccup moves a p99 of "
        "a few hundred requests by tens of milliseconds, and that noise must fail nothing",
    )


class ShadowVerdict(BaseModel):
    """The judgement of a shadow (stored in the audit log with the ``shadow`` step)."""

    model_config = ConfigDict(extra="forbid")
    passed: bool
    model_version: str
    requests: int
    compared: int
    agreement: float | None
    error_rate: float | None
    shadow_p99_ms: float | None
    primary_p99_ms: float | None
    latency_ratio: float | None
    reasons: list[str] = Field(description="why it failed (empty when it passed)")
    policy: ShadowPolicy

    def summary(self) -> str:
        verdict = "PASSED" if self.passed else "FAILED"
        parts = [f"{self.requests} mirrored requests"]
        if self.agreement is not None:
            parts.append(f"agreement {self.agreement:.1%} (min {self.policy.min_agreement:.0%})")
        if self.error_rate is not None:
            parts.append(f"errors {self.error_rate:.1%} (max {self.policy.max_error_rate:.0%})")
        if self.latency_ratio is not None:
            parts.append(
                f"p99 {self.shadow_p99_ms:.1f} ms vs {self.primary_p99_ms:.1f} ms "
                f"(ratio {self.latency_ratio:.2f}, max {self.policy.max_latency_ratio:g})"
            )
        tail = f": {'; '.join(self.reasons)}" if self.reasons else ""
        return f"shadow {verdict} for version {self.model_version} ({', '.join(parts)}){tail}"
