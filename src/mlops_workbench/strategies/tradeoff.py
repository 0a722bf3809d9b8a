"""Which release strategy fits which release: seeded situations, and what each strategy does to traffic in them.

A :class:`Situation` is what a release manager knows before a release (does the request format change, does a bad
model show in errors within minutes or only in labels that arrive later, how long an undo takes). Its hidden
:class:`Truth` is what the candidate really does. :func:`play` runs one strategy (``blue-green``, ``canary`` or
``ab``) on a situation, second by second, on simulated traffic drawn from the truth's seed, and returns the
:class:`Outcome`: how many requests failed and which version serves production at the end. :func:`judge` says
what went wrong for the users or for production. Pure: no server, no clock, the same numbers for the same seed.

The simulation keeps each strategy to its textbook shape: blue-green smokes the candidate and switches all
traffic at once (clients that change their request format move with the switch), then switches back when
monitoring sees errors; a canary sends 5%, 25%, then 50% and aborts on a significant error rate; an A/B test
splits 50/50 and decides on delayed labels with the sequential test of :mod:`~mlops_workbench.strategies.abtest`.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal, get_args

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError
from mlops_workbench.strategies.abtest import Arm, Verdict, decide_sequential

Strategy = Literal["blue-green", "canary", "ab"]
STRATEGIES: tuple[Strategy, ...] = get_args(Strategy)
Kind = Literal["schema", "risky", "slow-metric"]
KINDS: tuple[Kind, ...] = get_args(Kind)
Production = Literal["current", "candidate"]

RPS = 100
HORIZON = 900
"""Seconds of traffic each play covers."""
FAILED_BUDGET = 0.005
"""Most of the horizon's requests that may fail (0.5%) before the users count as hurt."""
BASE_ERRORS = 0.002
MONITOR_S = 60
"""How long production monitoring takes to notice a fully switched release that errs."""
CANARY_STEPS = ((5, 60), (25, 60), (50, 60))
CANARY_EVERY, CANARY_MIN = 10, 20
LABEL_DELAY = 120
"""Seconds before a request's label (was the prediction right?) arrives."""
AB_EVERY = 10

Decide = Callable[[Arm, Arm], object]


class Situation(BaseModel):
    """What is known about a release before it starts (the input of ``choose``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(description="an opaque id of the release")
    summary: str = Field(description="the release in words, for people")
    schema_change: bool = Field(
        description="the candidate needs the clients' new request format: old and new cannot serve the same clients"
    )
    harm_visible_in_errors: bool = Field(
        description="a bad candidate shows within minutes in error rate or latency (False: only in the labels)"
    )
    label_delay_hours: float = Field(ge=0, description="how long until the business metric (labels) arrives")
    rollback_seconds: float = Field(ge=0, description="how long undoing the release takes")


class Truth(BaseModel):
    """What the candidate really does (hidden from ``choose``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    kind: Kind
    seed: int
    smoke_passes: bool = True
    error_rate: float = Field(BASE_ERRORS, ge=0, le=1, description="the share of real requests the candidate fails")
    accuracy_current: float = 0.9
    accuracy_candidate: float = 0.9

    @property
    def ship(self) -> Production:
        """Which version should serve at the end."""
        good = self.smoke_passes and self.error_rate <= 2 * BASE_ERRORS
        return "candidate" if good and self.accuracy_candidate >= self.accuracy_current else "current"


class Outcome(BaseModel):
    """What one strategy did to the traffic of one situation."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    situation: str
    strategy: Strategy
    requests: int
    failed: int = Field(description="requests whose users saw an error")
    candidate_requests: int
    production: Production = Field(description="which version serves at the end")
    events: list[str]

    @property
    def failed_share(self) -> float:
        return self.failed / self.requests if self.requests else 0.0


def strategy(value: object) -> Strategy:
    """``value`` as a :data:`Strategy`, else InputError naming the three."""
    for s in STRATEGIES:
        if value == s:
            return s
    raise InputError(f"Unknown strategy {value!r}: choose one of {', '.join(repr(s) for s in STRATEGIES)}.")


class _Run:
    """Per-second traffic of one play: the failures and the candidate's labelled predictions."""

    def __init__(self, truth: Truth) -> None:
        self.truth, self.rng = truth, np.random.default_rng(truth.seed)
        self.failed = self.candidate = self.requests = 0
        self.events: list[str] = []
        self.labels: list[tuple[int, int, int, int, int]] = []  # (t, a correct, a n, b correct, b n)

    def second(self, t: int, weight: float, mixed: bool) -> tuple[int, int]:
        """One second at canary ``weight`` percent; ``mixed``: clients still send the old format. (b n, b errors)"""
        n_b = int(self.rng.binomial(RPS, weight / 100))
        n_a = RPS - n_b
        rate = 1.0 if mixed and self.truth.kind == "schema" else self.truth.error_rate
        err_b = int(self.rng.binomial(n_b, rate))
        err_a = int(self.rng.binomial(n_a, BASE_ERRORS))
        ok_a = int(self.rng.binomial(n_a - err_a, self.truth.accuracy_current))
        ok_b = int(self.rng.binomial(n_b - err_b, self.truth.accuracy_candidate))
        self.labels.append((t, ok_a, n_a, ok_b, n_b))
        self.failed += err_a + err_b
        self.candidate += n_b
        self.requests += RPS
        return n_b, err_b

    def outcome(self, situation: Situation, chosen: Strategy, production: Production) -> Outcome:
        return Outcome(
            situation=situation.name,
            strategy=chosen,
            requests=self.requests,
            failed=self.failed,
            candidate_requests=self.candidate,
            production=production,
            events=self.events,
        )


def _blue_green(run: _Run, situation: Situation) -> Production:
    if not run.truth.smoke_passes:
        run.events.append("t=0s green failed its smoke test: switch refused, all traffic stays on blue")
        for t in range(HORIZON):
            run.second(t, 0, mixed=False)
        return "current"
    run.events.append("t=0s green passed its smoke test: all traffic switched to green at once")
    errors, back = 0, None
    for t in range(HORIZON):
        live = back is None or t < back
        _, err = run.second(t, 100 if live else 0, mixed=False)
        errors += err
        if back is None and t + 1 >= MONITOR_S and errors / ((t + 1) * RPS) > 5 * BASE_ERRORS:
            back = t + 1 + int(situation.rollback_seconds)
            run.events.append(f"t={t + 1}s monitoring saw green erring: switch back to blue done at t={back}s")
    return "candidate" if back is None else "current"


def _canary(run: _Run) -> Production:
    t = 0
    for weight, hold in CANARY_STEPS:
        run.events.append(f"t={t}s canary weight {weight}%")
        n = errs = 0
        for _ in range(hold):
            got, err = run.second(t, weight, mixed=True)
            n, errs, t = n + got, errs + err, t + 1
            if t % CANARY_EVERY == 0 and n >= CANARY_MIN and errs / n > 5 * BASE_ERRORS + 0.01:
                run.events.append(f"t={t}s canary aborted: {errs}/{n} canary requests failed; weight 0")
                for rest in range(t, HORIZON):
                    run.second(rest, 0, mixed=False)
                return "current"
    run.events.append(f"t={t}s canary analysis passed: candidate promoted")
    for rest in range(t, HORIZON):
        run.second(rest, 100, mixed=False)
    return "candidate"


def _ab(run: _Run, decide: Decide) -> Production:
    from mlops_workbench.strategies.scenarios import verdict_of

    verdict = Verdict.CONTINUE
    for t in range(HORIZON):
        weight = {Verdict.CONTINUE: 50, Verdict.B_BETTER: 100}.get(verdict, 0)
        run.second(t, weight, mixed=weight < 100)
        if verdict is Verdict.CONTINUE and t % AB_EVERY == 0 and t >= LABEL_DELAY:
            known = np.array([row[1:] for row in run.labels if row[0] <= t - LABEL_DELAY]).sum(axis=0)
            a, b = (
                Arm(successes=int(known[0]), trials=int(known[1])),
                Arm(successes=int(known[2]), trials=int(known[3])),
            )
            verdict = verdict_of(decide(a, b))
            if verdict is not Verdict.CONTINUE:
                run.events.append(
                    f"t={t}s A/B decided {verdict.value} on labels so far (a {a.successes}/{a.trials}, "
                    f"b {b.successes}/{b.trials})"
                )
    if verdict is Verdict.CONTINUE:
        run.events.append(f"t={HORIZON}s A/B undecided at the end: the current version stays")
    return "candidate" if verdict is Verdict.B_BETTER else "current"


def sequential(a: Arm, b: Arm) -> Verdict:
    """The A/B decision :func:`play` uses unless given another: the mSPRT at alpha 0.05, tau 0.05."""
    return decide_sequential(a, b, tau=0.05, alpha=0.05, min_per_arm=100).verdict


def play(situation: Situation, truth: Truth, chosen: object, decide: Decide = sequential) -> Outcome:
    """Run strategy ``chosen`` on ``situation`` with the candidate behaving as ``truth`` says."""
    pick = strategy(chosen)
    run = _Run(truth)
    if pick == "blue-green":
        production = _blue_green(run, situation)
    elif pick == "canary":
        production = _canary(run)
    else:
        production = _ab(run, decide)
    return run.outcome(situation, pick, production)


def judge(truth: Truth, outcome: Outcome) -> list[str]:
    """What went wrong (empty: production ended right and few enough users saw errors)."""
    problems = []
    if outcome.production != truth.ship:
        wanted = "the candidate should serve" if truth.ship == "candidate" else "the current version should stay"
        problems.append(f"production ended on the {outcome.production} version, but {wanted}")
    if outcome.failed_share > FAILED_BUDGET:
        problems.append(
            f"{outcome.failed} of {outcome.requests} requests failed ({outcome.failed_share:.2%}, budget "
            f"{FAILED_BUDGET:.1%})"
        )
    return problems


_WORDS = ["orion", "lark", "kestrel", "maple", "quartz", "tern", "basil", "cobalt", "juniper", "wren"]


def situation(kind: Kind, rng: random.Random) -> tuple[Situation, Truth]:
    """A seeded situation of ``kind`` and its truth (the candidate is good for ``schema``, errs for ``risky``, is
    less accurate for ``slow-metric``)."""
    name = f"release-{rng.choice(_WORDS)}-{rng.randrange(100, 1000)}"
    seed = rng.randrange(2**31)
    if kind == "schema":
        return Situation(
            name=name,
            summary="The model now takes two extra features; the clients send them from the moment they upgrade.",
            schema_change=True,
            harm_visible_in_errors=True,
            label_delay_hours=round(rng.uniform(0, 2), 1),
            rollback_seconds=round(rng.uniform(5, 30)),
        ), Truth(kind=kind, seed=seed)
    if kind == "risky":
        return Situation(
            name=name,
            summary="A new model family, never served before; the old version can take the traffic back in seconds.",
            schema_change=False,
            harm_visible_in_errors=True,
            label_delay_hours=0.0,
            rollback_seconds=round(rng.uniform(1, 10)),
        ), Truth(kind=kind, seed=seed, error_rate=round(rng.uniform(0.2, 0.5), 2))
    accuracy = round(rng.uniform(0.86, 0.92), 3)
    return Situation(
        name=name,
        summary="A retrained model: it answers as fast and as reliably; whether it is right shows once labels arrive.",
        schema_change=False,
        harm_visible_in_errors=False,
        label_delay_hours=round(rng.uniform(2, 48), 1),
        rollback_seconds=round(rng.uniform(1, 10)),
    ), Truth(
        kind=kind,
        seed=seed,
        accuracy_current=accuracy,
        accuracy_candidate=round(accuracy - rng.uniform(0.08, 0.12), 3),
    )


def hidden(rng: random.Random) -> list[tuple[Situation, Truth]]:
    """One situation of each kind, in a seeded order."""
    return [situation(kind, rng) for kind in rng.sample(list(KINDS), len(KINDS))]


EXAMPLES_SEED = 8


def examples() -> list[tuple[Situation, Truth]]:
    """The three situations the notebook shows (hidden ones come from the grading run's seed)."""
    return hidden(random.Random(EXAMPLES_SEED))
