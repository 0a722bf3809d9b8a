"""The pure counting of a live A/B test: log rows (with or without a label) in, per-version tallies out."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mlops_workbench.errors import InputError
from mlops_workbench.strategies import abcount
from mlops_workbench.strategies.abtest import Arm


@dataclass(frozen=True)
class Row:
    request_id: str
    version: str
    prediction: str
    label: str | None


def rows() -> list[Row]:
    return [
        Row("ab-x-d1-0", "1", "setosa", "setosa"),
        Row("ab-x-d1-1", "2", "setosa", "virginica"),
        Row("ab-x-d1-2", "2", "versicolor", None),
        Row("ab-x-d2-0", "1", "virginica", "virginica"),
        Row("ab-x-d2-1", "2", "virginica", "virginica"),
        Row("ab-x-d2-2", "1", "setosa", None),
        Row("other-d1-0", "3", "setosa", "setosa"),  # another test's row
    ]


def test_request_ids_name_the_test_and_the_day():
    assert abcount.request_id("ab-x", 3, 7) == "ab-x-d3-7"
    assert abcount.day_of("ab-x-d3-7", "ab-x") == 3
    assert abcount.day_of("ab-x-d3-7", "ab-y") is None and abcount.day_of("ab-x-3-7", "ab-x") is None
    assert abcount.days_logged(rows(), "ab-x") == [1, 2]


def test_tally_counts_requests_labelled_and_right_per_version():
    mine = [r for r in rows() if r.request_id.startswith("ab-x")]
    found = abcount.tally(mine, ["1", "2"])
    assert found["1"] == abcount.Tally(version="1", requests=3, labelled=2, right=2)
    assert found["2"] == abcount.Tally(version="2", requests=3, labelled=2, right=1)
    assert found["2"].arm == Arm(successes=1, trials=2)
    assert abcount.tally([], ["1", "2"])["1"].arm == Arm(successes=0, trials=0)


def test_a_row_of_a_third_version_is_refused_by_name():
    with pytest.raises(InputError, match="answered by version 3, which is not one of the arms 1, 2"):
        abcount.tally(rows(), ["1", "2"])


def test_looks_are_cumulative_per_day_and_ignore_other_tests():
    first, second = abcount.looks(rows(), "ab-x", ["1", "2"], 2)
    assert (first["1"].arm, first["2"].arm) == (Arm(successes=1, trials=1), Arm(successes=0, trials=1))
    assert (second["1"].arm, second["2"].arm) == (Arm(successes=2, trials=2), Arm(successes=1, trials=2))
    assert abcount.looks(rows(), "ab-x", ["1", "2"], 3)[2] == second


def test_the_split_is_judged_with_room_for_noise():
    even = {"1": abcount.Tally(version="1", requests=230), "2": abcount.Tally(version="2", requests=250)}
    assert abcount.split_problem(even, "2") is None
    skewed = {"1": abcount.Tally(version="1", requests=380), "2": abcount.Tally(version="2", requests=100)}
    assert "version 2 answered 21% of the test's 480 requests, not 50%" in str(abcount.split_problem(skewed, "2"))
    assert abcount.split_problem({"1": abcount.Tally(version="1"), "2": abcount.Tally(version="2")}, "2") == (
        "no request of the test was logged"
    )
