"""Seeded A/B traffic for testing a decision procedure the way it is used: looked at after every batch.

An :class:`ABScenario` is two true rates, a batch size, a number of batches and a seed; :meth:`ABScenario.looks`
yields the cumulative counts of both arms after each batch, the same numbers every time for the same seed. A
decision procedure (``decide(a, b) -> Decision | Verdict | str``) is run on a scenario by :func:`run` until it
concludes or the data ends; :func:`operating` runs it on many scenarios and reports how often it declared a
winner. On null scenarios (equal rates) that is the false-positive rate, which a valid procedure keeps at most
``alpha`` (up to the simulation noise :func:`noise_margin`); on effect scenarios it is the power.

:func:`naive_peeking` is the classic mistake, kept here to show (and to let graders catch) it: the fixed-sample
z-test looked at after every batch, stopping at the first ``p < alpha``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError
from mlops_workbench.fielderrors import validated
from mlops_workbench.strategies.abtest import FIX, Arm, Decision, Verdict, z_test

Decide = Callable[[Arm, Arm], "Decision | Verdict | str"]
"""A decision procedure: the cumulative counts of arm a and arm b in, a verdict (or a Decision holding one) out."""


class ABScenario(BaseModel):
    """Seeded traffic: ``batches`` batches of ``batch_size`` trials per arm at the true rates."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int = Field(ge=0, description="the seed of the traffic (the same seed gives the same counts)")
    rate_a: float = Field(ge=0, le=1, description="the true rate of arm a")
    rate_b: float = Field(ge=0, le=1, description="the true rate of arm b")
    batch_size: int = Field(ge=1, description="trials per arm between two looks")
    batches: int = Field(ge=1, description="how many looks the data allows")

    @property
    def null(self) -> bool:
        """True when both arms have the same true rate (any winner declared is a false positive)."""
        return self.rate_a == self.rate_b

    def looks(self) -> Iterator[tuple[Arm, Arm]]:
        """(arm a, arm b) cumulative counts after each batch."""
        rng = np.random.default_rng(self.seed)
        wins = rng.binomial(self.batch_size, [self.rate_a, self.rate_b], size=(self.batches, 2)).cumsum(axis=0)
        for i, (sa, sb) in enumerate(wins.tolist(), 1):
            n = i * self.batch_size
            yield Arm(successes=sa, trials=n), Arm(successes=sb, trials=n)


def scenarios(
    count: int, seed: int, rate_a: float, rate_b: float, batch_size: int = 50, batches: int = 100
) -> list[ABScenario]:
    """``count`` scenarios with independent seeds derived from ``seed`` (numpy's SeedSequence)."""
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        raise InputError(f"count must be a whole number of scenarios, at least 1, got {count!r}.")
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise InputError(f"seed must be a whole number, at least 0, got {seed!r}.")
    fields = dict(seed=0, rate_a=rate_a, rate_b=rate_b, batch_size=batch_size, batches=batches)
    first = validated(ABScenario, fields, "scenarios(...)", FIX)
    seeds = np.random.SeedSequence(seed).generate_state(count).tolist()
    return [first.model_copy(update={"seed": int(s)}) for s in seeds]


def null_scenarios(
    count: int, seed: int, rate: float = 0.9, batch_size: int = 50, batches: int = 100
) -> list[ABScenario]:
    """Scenarios where both arms have the same true ``rate``: every declared winner is a false positive."""
    return scenarios(count, seed, rate, rate, batch_size, batches)


class Run(BaseModel):
    """How a procedure ended on one scenario."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    seed: int
    verdict: Verdict
    looks: int = Field(description="how many looks it took (the last one when it never concluded)")
    n_a: int
    n_b: int

    @property
    def declared_winner(self) -> bool:
        return self.verdict in (Verdict.A_BETTER, Verdict.B_BETTER)


def verdict_of(answer: object) -> Verdict:
    """The verdict in a procedure's answer (a Decision, a Verdict or its text), else InputError naming the choices."""
    value = getattr(answer, "verdict", answer)
    if isinstance(value, str) and value in set(Verdict):
        return Verdict(value)
    choices = ", ".join(repr(v.value) for v in Verdict)
    raise InputError(f"The decision procedure answered {value!r}: return a Decision or one of {choices}.")


def run(decide: Decide, scenario: ABScenario) -> Run:
    """Feed ``scenario``'s looks to ``decide`` until it concludes (any verdict but CONTINUE) or the data ends."""
    verdict, looks, a, b = Verdict.CONTINUE, 0, Arm(successes=0, trials=0), Arm(successes=0, trials=0)
    for looks, (a, b) in enumerate(scenario.looks(), 1):  # noqa: B007 (the last look is reported)
        verdict = verdict_of(decide(a, b))
        if verdict is not Verdict.CONTINUE:
            break
    return Run(seed=scenario.seed, verdict=verdict, looks=looks, n_a=a.trials, n_b=b.trials)


def noise_margin(rate: float, runs: int, sigmas: float = 3.0) -> float:
    """``sigmas`` binomial standard errors of a rate estimated from ``runs`` simulations."""
    return sigmas * math.sqrt(rate * (1 - rate) / runs)


class Operating(BaseModel):
    """How often a procedure declared a winner over many scenarios (false-positive rate on null ones)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    scenarios: int
    winners: int = Field(description="runs that declared a winner")
    rate: float = Field(description="winners / scenarios")
    mean_looks: float
    runs: list[Run]


def operating(decide: Decide, cases: list[ABScenario]) -> Operating:
    """Run ``decide`` on every scenario of ``cases``."""
    if not cases:
        raise InputError("No scenarios given: make some with scenarios(...) or null_scenarios(...).")
    runs = [run(decide, case) for case in cases]
    winners = sum(r.declared_winner for r in runs)
    return Operating(
        scenarios=len(runs),
        winners=winners,
        rate=winners / len(runs),
        mean_looks=sum(r.looks for r in runs) / len(runs),
        runs=runs,
    )


def naive_peeking(alpha: float = 0.05) -> Decide:
    """The mistake: the fixed-sample z-test at every look, stopping at the first ``p < alpha`` (not a valid test)."""

    def decide(a: Arm, b: Arm) -> Verdict:
        test = z_test(a, b, alpha)
        if test.p_value >= alpha:
            return Verdict.CONTINUE
        return Verdict.B_BETTER if test.difference > 0 else Verdict.A_BETTER

    return decide
