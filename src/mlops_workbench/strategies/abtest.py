"""A/B test statistics for a business metric that is a proportion (accuracy on delayed labels, conversion).

Pure functions on counts; nothing here touches a server. Two valid ways to decide between arm ``a`` (the current
version) and arm ``b`` (the challenger):

* **Fixed sample** (:func:`required_sample_size`, :func:`z_test`, :func:`decide_fixed`): the two-sided
  two-proportion z-test with a pooled standard error. The sample size per arm is computed *before* the test from
  the baseline rate, the minimum detectable effect (absolute), alpha and power (the normal-approximation formula
  of Fleiss, Levin & Paik, *Statistical Methods for Rates and Proportions*, 3rd ed., 2003, eq. 4.14, without
  continuity correction). The decision refuses to conclude before every arm has that many trials, and concludes
  at the first look after. Looking earlier and stopping on ``p < alpha`` is *not* this test: with a look after
  every batch its false-positive rate climbs far above alpha (``scenarios`` shows it).
* **Sequential** (:func:`msprt`, :func:`decide_sequential`): the mixture sequential probability ratio test with a
  normal mixing distribution (Robbins 1970; as used for A/B tests by Johari, Koomen, Pekelis & Walsh, "Peeking at
  A/B Tests: Why it matters, and what to do about it", KDD 2017, and "Always Valid Inference", Operations Research
  70(3), 2022). With ``V`` the variance of the observed difference ``d`` of rates and ``tau`` the spread of effects
  one expects, ``Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 d^2 / (2 V (V + tau^2)))`` is a martingale under the
  null, so by Ville's inequality stopping the first time ``Lambda >= 1/alpha`` keeps the false-positive rate at
  most alpha however often one looks. ``1/Lambda`` is the always-valid p-value. ``V`` is estimated from the
  pooled rate (the normal approximation; ``min_per_arm`` trials per arm come before the first verdict).
"""

from __future__ import annotations

import math
from enum import StrEnum
from statistics import NormalDist
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mlops_workbench.errors import InputError
from mlops_workbench.fielderrors import validated

_NORMAL = NormalDist()
FIX = "fix each one and call again"
Method = Literal["fixed", "msprt"]


class Verdict(StrEnum):
    """What the test says now."""

    CONTINUE = "continue"
    """Not enough data yet (or not enough evidence, for the sequential test): keep the split running."""
    A_BETTER = "a_better"
    B_BETTER = "b_better"
    NO_DIFFERENCE = "no_difference"
    """The planned sample was reached and no difference was shown: keep ``a``."""


class Arm(BaseModel):
    """One arm's counts: ``successes`` (correct predictions, conversions) out of ``trials``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    successes: int = Field(ge=0, description="how many trials succeeded (a whole number, at least 0)")
    trials: int = Field(ge=0, description="how many trials the arm had (a whole number, at least 0)")

    @model_validator(mode="after")
    def _at_most_trials(self) -> Arm:
        if self.successes > self.trials:
            raise ValueError(f"successes ({self.successes}) cannot exceed trials ({self.trials})")
        return self

    @property
    def rate(self) -> float:
        """successes / trials (0 for an arm without trials)."""
        return self.successes / self.trials if self.trials else 0.0


def arm(successes: int, trials: int) -> Arm:
    """An :class:`Arm`, or :class:`~mlops_workbench.errors.InputError` naming the bad count."""
    return validated(Arm, dict(successes=successes, trials=trials), "arm(successes, trials)", FIX)


class SampleSize(BaseModel):
    """A fixed-sample plan: the trials each arm needs to detect ``mde`` with ``power`` at level ``alpha``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    baseline: float = Field(gt=0, lt=1, description="the current rate of arm a, a proportion between 0 and 1")
    mde: float = Field(description="the minimum detectable effect, an absolute difference of rates such as 0.02")
    alpha: float = Field(0.05, gt=0, lt=1, description="the false-positive rate allowed (two-sided), e.g. 0.05")
    power: float = Field(0.8, gt=0, lt=1, description="the chance to detect an effect of size mde, e.g. 0.8")
    per_arm: int = Field(0, ge=0, description="trials each arm needs (computed)")

    @model_validator(mode="after")
    def _effect_in_range(self) -> SampleSize:
        if self.mde == 0:
            raise ValueError("mde must not be 0: give the smallest difference worth detecting, e.g. 0.02")
        if not 0 < self.baseline + self.mde < 1:
            raise ValueError(
                f"baseline + mde = {self.baseline + self.mde:g} is not a rate between 0 and 1: choose a smaller mde"
            )
        return self

    @property
    def total(self) -> int:
        return 2 * self.per_arm


def required_sample_size(baseline: float, mde: float, alpha: float = 0.05, power: float = 0.8) -> SampleSize:
    """Trials per arm for a two-sided two-proportion z-test to detect ``baseline`` -> ``baseline + mde``.

    ``n = (z(1-alpha/2) sqrt(2 p q) + z(power) sqrt(p1 q1 + p2 q2))^2 / mde^2`` with ``p`` the mean of the two rates,
    rounded up. Decide the plan before the test starts; :func:`decide_fixed` holds you to it.
    """
    plan = validated(
        SampleSize, dict(baseline=baseline, mde=mde, alpha=alpha, power=power), "required_sample_size(...)", FIX
    )
    p1, p2 = plan.baseline, plan.baseline + plan.mde
    mean = (p1 + p2) / 2
    z_a, z_b = _NORMAL.inv_cdf(1 - plan.alpha / 2), _NORMAL.inv_cdf(plan.power)
    root = z_a * math.sqrt(2 * mean * (1 - mean)) + z_b * math.sqrt(p1 * (1 - p1) + p2 * (1 - p2))
    return plan.model_copy(update={"per_arm": math.ceil(root**2 / plan.mde**2)})


class ZTest(BaseModel):
    """The two-proportion z-test of ``b`` against ``a``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    a: Arm
    b: Arm
    difference: float = Field(description="rate of b minus rate of a")
    z: float
    p_value: float = Field(description="two-sided, from the pooled standard error")
    ci_low: float = Field(description="lower end of the (1 - alpha) confidence interval of the difference")
    ci_high: float
    alpha: float


def z_test(a: Arm, b: Arm, alpha: float = 0.05) -> ZTest:
    """The two-sided two-proportion z-test (pooled standard error under the null; Wald interval for the CI)."""
    if a.trials == 0 or b.trials == 0:
        raise _unusable("z_test needs trials in both arms", a, b)
    diff = b.rate - a.rate
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials))
    z = diff / se0 if se0 > 0 else 0.0
    p_value = 2 * (1 - _NORMAL.cdf(abs(z)))
    se = math.sqrt(a.rate * (1 - a.rate) / a.trials + b.rate * (1 - b.rate) / b.trials)
    half = _NORMAL.inv_cdf(1 - alpha / 2) * se
    return ZTest(a=a, b=b, difference=diff, z=z, p_value=p_value, ci_low=diff - half, ci_high=diff + half, alpha=alpha)


def _unusable(problem: str, a: Arm, b: Arm) -> InputError:
    return InputError(
        f"{problem} (a: {a.successes}/{a.trials}, b: {b.successes}/{b.trials}): collect traffic in both arms first."
    )


class Decision(BaseModel):
    """A verdict with the numbers behind it."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    verdict: Verdict
    method: Method
    n_a: int
    n_b: int
    difference: float = Field(description="rate of b minus rate of a")
    p_value: float | None = Field(description="None while the test refuses to look")
    reason: str

    @property
    def conclusive(self) -> bool:
        return self.verdict is not Verdict.CONTINUE

    @property
    def winner(self) -> Literal["a", "b"] | None:
        """``b`` or ``a`` when the test found one better; None otherwise."""
        return {Verdict.A_BETTER: "a", Verdict.B_BETTER: "b"}.get(self.verdict)  # type: ignore[return-value]


def _decision(method: Method, a: Arm, b: Arm, verdict: Verdict, p_value: float | None, reason: str) -> Decision:
    return Decision(
        verdict=verdict,
        method=method,
        n_a=a.trials,
        n_b=b.trials,
        difference=b.rate - a.rate,
        p_value=p_value,
        reason=reason,
    )


def _better(diff: float) -> Verdict:
    return Verdict.B_BETTER if diff > 0 else Verdict.A_BETTER


def decide_fixed(a: Arm, b: Arm, plan: SampleSize) -> Decision:
    """The fixed-sample decision: CONTINUE until both arms reached ``plan.per_arm`` trials, then the z-test once."""
    if plan.per_arm <= 0:
        raise _unusable("the plan has no sample size: make it with required_sample_size(...)", a, b)
    n_a, n_b, diff = a.trials, b.trials, b.rate - a.rate
    if min(n_a, n_b) < plan.per_arm:
        why = f"{min(n_a, n_b)} of the {plan.per_arm} trials per arm planned: no verdict before the plan is met"
        return _decision("fixed", a, b, Verdict.CONTINUE, None, why)
    test = z_test(a, b, plan.alpha)
    significant = test.p_value < plan.alpha
    why = f"z = {test.z:.3f}, p = {test.p_value:.4f} {'<' if significant else '>='} alpha {plan.alpha:g}"
    return _decision("fixed", a, b, _better(diff) if significant else Verdict.NO_DIFFERENCE, test.p_value, why)


class MixtureSPRT(BaseModel):
    """The mSPRT statistic at one look."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    difference: float
    variance: float = Field(description="estimated variance of the difference (pooled rate)")
    tau: float
    log_lr: float = Field(description="log of the mixture likelihood ratio Lambda")
    p_value: float = Field(description="always-valid p-value, min(1, 1/Lambda)")


class SequentialParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    alpha: float = Field(0.05, gt=0, lt=1, description="the false-positive rate allowed however often you look")
    tau: float = Field(gt=0, description="the spread of effects you expect: your minimum detectable effect, e.g. 0.02")
    min_per_arm: int = Field(100, ge=1, description="trials per arm before the first verdict (normal approximation)")
    max_per_arm: int | None = Field(None, ge=1, description="stop with no_difference at this many trials per arm")


def msprt(a: Arm, b: Arm, tau: float) -> MixtureSPRT:
    """The normal-mixture SPRT statistic for ``rate(b) - rate(a) = 0`` (see the module docstring)."""
    params = validated(SequentialParams, dict(tau=tau), "msprt(a, b, tau)", FIX)
    diff = b.rate - a.rate
    if a.trials == 0 or b.trials == 0:
        return MixtureSPRT(difference=diff, variance=0.0, tau=params.tau, log_lr=0.0, p_value=1.0)
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    var = pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials)
    if var <= 0:  # every trial succeeded (or none did): no evidence of a difference
        return MixtureSPRT(difference=diff, variance=0.0, tau=params.tau, log_lr=0.0, p_value=1.0)
    t2 = params.tau**2
    log_lr = 0.5 * math.log(var / (var + t2)) + t2 * diff**2 / (2 * var * (var + t2))
    return MixtureSPRT(
        difference=diff, variance=var, tau=params.tau, log_lr=log_lr, p_value=min(1.0, math.exp(-log_lr))
    )


def decide_sequential(
    a: Arm, b: Arm, *, tau: float, alpha: float = 0.05, min_per_arm: int = 100, max_per_arm: int | None = None
) -> Decision:
    """The sequential decision, valid at every look: a winner once ``Lambda >= 1/alpha``; CONTINUE before that
    (NO_DIFFERENCE once ``max_per_arm`` trials per arm are reached without one)."""
    params = validated(
        SequentialParams,
        dict(alpha=alpha, tau=tau, min_per_arm=min_per_arm, max_per_arm=max_per_arm),
        "decide_sequential(...)",
        FIX,
    )
    n_a, n_b = a.trials, b.trials
    if min(n_a, n_b) < params.min_per_arm:
        why = f"{min(n_a, n_b)} of the {params.min_per_arm} trials per arm needed before the first verdict"
        return _decision("msprt", a, b, Verdict.CONTINUE, None, why)
    stat = msprt(a, b, params.tau)
    threshold = math.log(1 / params.alpha)
    if stat.log_lr >= threshold:
        verdict = _better(stat.difference)
    elif params.max_per_arm is not None and min(n_a, n_b) >= params.max_per_arm:
        verdict = Verdict.NO_DIFFERENCE
    else:
        verdict = Verdict.CONTINUE
    sign = "<=" if stat.log_lr >= threshold else ">"
    why = f"always-valid p = {stat.p_value:.4f} ({sign} alpha {params.alpha:g})"
    return _decision("msprt", a, b, verdict, stat.p_value, why)
