"""The trade-off simulation: in every seeded situation exactly one strategy leaves production right and users
unhurt, each wrong one fails for the reason the strategy is known for, and the same seed plays the same way."""

from __future__ import annotations

import random

import pytest

from mlops_workbench.errors import InputError
from mlops_workbench.strategies import tradeoff
from mlops_workbench.strategies.abtest import Arm

RIGHT = {"schema": "blue-green", "risky": "canary", "slow-metric": "ab"}


@pytest.mark.parametrize("seed", range(8))
def test_only_the_fitting_strategy_passes_each_situation(seed):
    for situation, truth in tradeoff.hidden(random.Random(seed)):
        passed = [s for s in tradeoff.STRATEGIES if not tradeoff.judge(truth, tradeoff.play(situation, truth, s))]
        assert passed == [RIGHT[truth.kind]], (truth.kind, passed)


def test_each_wrong_strategy_fails_for_its_known_weakness():
    cases = {truth.kind: (s, truth) for s, truth in tradeoff.hidden(random.Random(3))}
    schema, risky, slow = cases["schema"], cases["risky"], cases["slow-metric"]
    canary = tradeoff.play(*schema, "canary")
    assert canary.production == "current" and any("aborted" in e for e in canary.events), "a mixed fleet errs"
    switched = tradeoff.play(*risky, "blue-green")
    assert switched.production == "current" and switched.failed_share > tradeoff.FAILED_BUDGET, "everyone met it"
    assert tradeoff.play(*risky, "canary").failed_share < tradeoff.FAILED_BUDGET / 2, "a few users met it"
    for blind in ("canary", "blue-green"):
        assert tradeoff.play(*slow, blind).production == "candidate", "errors cannot show a worse model"
    ab = tradeoff.play(*slow, "ab")
    assert ab.production == "current" and any("a_better" in e for e in ab.events)


def test_a_candidate_failing_its_smoke_test_never_gets_traffic_in_blue_green():
    situation, truth = tradeoff.situation("schema", random.Random(1))
    broken = truth.model_copy(update={"smoke_passes": False})
    outcome = tradeoff.play(situation, broken, "blue-green")
    assert outcome.candidate_requests == 0 and outcome.production == "current" == broken.ship
    assert tradeoff.judge(broken, outcome) == []


def test_ab_uses_the_decision_it_is_given_and_a_better_candidate_ships():
    situation, truth = tradeoff.situation("slow-metric", random.Random(2))
    better = truth.model_copy(update={"accuracy_candidate": truth.accuracy_current + 0.08})
    assert tradeoff.play(situation, better, "ab").production == "candidate" == better.ship
    looks: list[tuple[Arm, Arm]] = []

    def never(a: Arm, b: Arm) -> str:
        looks.append((a, b))
        return "continue"

    undecided = tradeoff.play(situation, better, "ab", decide=never)
    assert undecided.production == "current" and looks and looks[0][0].trials > 0
    assert all(later[0].trials >= earlier[0].trials for earlier, later in zip(looks, looks[1:], strict=False))


def test_plays_are_seeded_and_bad_input_is_named():
    situation, truth = tradeoff.situation("risky", random.Random(4))
    assert tradeoff.play(situation, truth, "canary") == tradeoff.play(situation, truth, "canary")
    with pytest.raises(InputError, match="Unknown strategy 'rolling': choose one of 'blue-green', 'canary', 'ab'"):
        tradeoff.play(situation, truth, "rolling")
    assert [s.name for s, _ in tradeoff.examples()] == [s.name for s, _ in tradeoff.examples()]
