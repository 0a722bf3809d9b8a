"""A/B test statistics: the planned sample size, the fixed-sample test, the sequential test and what peeking does.

The validity claims are proved by simulation on seeded scenarios, with a look after every batch: the sequential
test keeps its false-positive rate at alpha (within the simulation's noise), the fixed test used as planned does
too, and the naive "peek at the fixed test, stop at p < alpha" does not.
"""

from __future__ import annotations

import math
from functools import partial

import pytest

from mlops_workbench.errors import InputError
from mlops_workbench.strategies import abtest as ab
from mlops_workbench.strategies import scenarios as sc

ALPHA = 0.05
RUNS = 400  # simulations per claim: the noise margin (3 standard errors at alpha) is about 0.033


def test_the_sample_size_matches_the_textbook_formula():
    assert ab.required_sample_size(0.10, 0.02).per_arm == 3841  # Fleiss et al. (2003), no continuity correction
    assert ab.required_sample_size(0.5, 0.1).per_arm == 388
    plan = ab.required_sample_size(0.9, -0.03, alpha=0.01, power=0.9)
    assert plan.per_arm > ab.required_sample_size(0.9, -0.03).per_arm, "a stricter alpha and more power cost trials"
    assert plan.total == 2 * plan.per_arm


def test_a_bad_plan_names_every_bad_value_and_its_fix():
    with pytest.raises(InputError) as err:
        ab.required_sample_size(1.5, 0.02, alpha=0, power=2)
    message = str(err.value)
    assert message.startswith("required_sample_size(...) has 3 bad field(s)")
    assert "baseline" in message and "alpha" in message and "power" in message
    with pytest.raises(InputError, match="mde must not be 0"):
        ab.required_sample_size(0.5, 0)
    with pytest.raises(InputError, match="choose a smaller mde"):
        ab.required_sample_size(0.95, 0.1)


def test_an_arm_refuses_more_successes_than_trials():
    with pytest.raises(InputError, match=r"successes \(5\) cannot exceed trials \(3\)"):
        ab.arm(5, 3)
    with pytest.raises(InputError, match="trials"):
        ab.arm(1, -1)
    assert ab.arm(3, 4).rate == 0.75 and ab.arm(0, 0).rate == 0.0


def test_the_z_test_agrees_with_the_chi_square_test():
    from scipy.stats import chi2_contingency

    a, b = ab.arm(870, 1000), ab.arm(900, 1000)
    test = ab.z_test(a, b)
    chi2, p, _, _ = chi2_contingency([[870, 130], [900, 100]], correction=False)
    assert test.p_value == pytest.approx(p, rel=1e-9) and test.z**2 == pytest.approx(chi2, rel=1e-9)
    assert test.difference == pytest.approx(0.03) and test.ci_low < 0.03 < test.ci_high
    with pytest.raises(InputError, match="trials in both arms"):
        ab.z_test(ab.arm(0, 0), b)


def test_the_fixed_decision_refuses_to_conclude_before_the_planned_sample():
    plan = ab.required_sample_size(0.9, -0.03)
    early = ab.decide_fixed(ab.arm(100, 100), ab.arm(10, 100), plan)  # a glaring difference, too early
    assert early.verdict is ab.Verdict.CONTINUE and early.p_value is None and not early.conclusive
    assert f"of the {plan.per_arm} trials per arm planned" in early.reason
    n = plan.per_arm
    worse = ab.decide_fixed(ab.arm(int(0.9 * n), n), ab.arm(int(0.85 * n), n), plan)
    assert worse.verdict is ab.Verdict.A_BETTER and worse.winner == "a" and worse.p_value < ALPHA
    same = ab.decide_fixed(ab.arm(int(0.9 * n), n), ab.arm(int(0.9 * n) + 3, n), plan)
    assert same.verdict is ab.Verdict.NO_DIFFERENCE and same.winner is None and same.p_value >= ALPHA


def test_the_planned_sample_gives_the_planned_power():
    plan = ab.required_sample_size(0.9, -0.03)
    cases = sc.scenarios(RUNS, seed=3, rate_a=0.9, rate_b=0.87, batch_size=plan.per_arm, batches=1)
    power = sc.operating(partial(ab.decide_fixed, plan=plan), cases).rate
    assert abs(power - plan.power) <= sc.noise_margin(plan.power, RUNS), power


def test_the_msprt_statistic_is_the_normal_mixture_likelihood_ratio():
    a, b = ab.arm(880, 1000), ab.arm(910, 1000)
    stat = ab.msprt(a, b, tau=0.03)
    pooled = 1790 / 2000
    var = pooled * (1 - pooled) * (2 / 1000)
    expected = math.sqrt(var / (var + 0.03**2)) * math.exp(0.03**2 * 0.03**2 / (2 * var * (var + 0.03**2)))
    assert stat.log_lr == pytest.approx(math.log(expected)) and stat.p_value == pytest.approx(1 / expected)
    assert ab.msprt(ab.arm(10, 10), ab.arm(10, 10), tau=0.03).p_value == 1.0, "no variance: no evidence"
    with pytest.raises(InputError, match="tau"):
        ab.msprt(a, b, tau=0)


def test_the_sequential_decision_waits_for_its_burn_in_and_stops_at_its_horizon():
    early = ab.decide_sequential(ab.arm(50, 50), ab.arm(5, 50), tau=0.03)
    assert early.verdict is ab.Verdict.CONTINUE and early.p_value is None
    clear = ab.decide_sequential(ab.arm(900, 1000), ab.arm(800, 1000), tau=0.03)
    assert clear.verdict is ab.Verdict.A_BETTER and clear.p_value <= ALPHA
    flat = ab.decide_sequential(ab.arm(900, 1000), ab.arm(901, 1000), tau=0.03, max_per_arm=1000)
    assert flat.verdict is ab.Verdict.NO_DIFFERENCE and flat.p_value > ALPHA
    with pytest.raises(InputError, match="min_per_arm"):
        ab.decide_sequential(ab.arm(1, 1), ab.arm(1, 1), tau=0.03, min_per_arm=0)


def test_scenarios_are_seeded_and_independent():
    first, second = sc.null_scenarios(2, seed=11)
    assert list(first.looks()) == list(sc.null_scenarios(2, seed=11)[0].looks())
    assert list(first.looks()) != list(second.looks()) and first.null
    a, b = list(first.looks())[-1]
    assert a.trials == b.trials == first.batch_size * first.batches
    with pytest.raises(InputError, match="rate_b"):
        sc.scenarios(3, seed=1, rate_a=0.5, rate_b=1.5)
    with pytest.raises(InputError, match="count"):
        sc.null_scenarios(0, seed=1)


def test_a_procedure_must_answer_a_verdict():
    case = sc.null_scenarios(1, seed=2)[0]
    assert sc.run(lambda a, b: "continue", case).looks == case.batches
    assert sc.run(lambda a, b: ab.Verdict.B_BETTER, case).looks == 1
    with pytest.raises(InputError, match="'continue', 'a_better', 'b_better', 'no_difference'"):
        sc.run(lambda a, b: "ship it", case)


@pytest.fixture(scope="module")
def null_cases() -> list[sc.ABScenario]:
    """Equal true rates (accuracy 0.9 on delayed labels), a look after every batch of 50 per arm, 100 looks."""
    return sc.null_scenarios(RUNS, seed=20260131, rate=0.9, batch_size=50, batches=100)


def test_the_sequential_test_stays_valid_under_peeking(null_cases):
    result = sc.operating(partial(ab.decide_sequential, tau=0.03, alpha=ALPHA), null_cases)
    assert result.rate <= ALPHA + sc.noise_margin(ALPHA, RUNS), result.rate
    assert result.mean_looks > 90, "under the null it rarely stops"


def test_peeking_at_the_fixed_test_inflates_false_positives_and_the_plan_does_not(null_cases):
    naive = sc.operating(sc.naive_peeking(ALPHA), null_cases)
    assert naive.rate > 4 * ALPHA, f"peeking after every batch declared a winner in {naive.rate:.0%} of null runs"
    plan = ab.required_sample_size(0.9, -0.03, alpha=ALPHA)
    assert plan.per_arm <= null_cases[0].batch_size * null_cases[0].batches, "the data reaches the plan"
    fixed = sc.operating(partial(ab.decide_fixed, plan=plan), null_cases)
    assert fixed.rate <= ALPHA + sc.noise_margin(ALPHA, RUNS), fixed.rate
    assert {r.looks for r in fixed.runs} == {math.ceil(plan.per_arm / 50)}, "the plan concludes at one look"


def test_the_sequential_test_finds_a_real_effect_early():
    cases = sc.scenarios(200, seed=5, rate_a=0.9, rate_b=0.86, batch_size=50, batches=100)
    result = sc.operating(partial(ab.decide_sequential, tau=0.03), cases)
    assert result.rate >= 0.9 and all(r.verdict is not ab.Verdict.B_BETTER for r in result.runs)
    plan = ab.required_sample_size(0.9, -0.04)
    assert result.mean_looks * 50 < 2 * plan.per_arm
