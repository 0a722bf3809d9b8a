"""Per-arm counts of a live A/B test, from the prediction log joined with the labels that arrived (pure).

A live A/B test names its requests ``<prefix>-d<day>-<i>``: the test's own prefix, the day (the batch after which
the counts are looked at) and the request's number. Each logged row carries the version that answered it and,
once the label feed delivered it, the true class. :func:`tally` turns such rows into one :class:`Tally` per
version (requests answered, labelled, right); :func:`looks` gives the cumulative tallies after each day, the
numbers a decision saw when it was looked at after every batch; :func:`split_problem` says whether the traffic
really was split as planned. Nothing here reads the log: :mod:`mlops_workbench.monitoring.ablive` does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench.errors import InputError
from mlops_workbench.strategies.abtest import Arm


class Logged(Protocol):
    """What a row of the prediction log has that the counting needs."""

    @property
    def request_id(self) -> str: ...

    @property
    def version(self) -> str: ...

    @property
    def prediction(self) -> str: ...

    @property
    def label(self) -> str | None: ...


class Tally(BaseModel):
    """One version's rows of an A/B test: requests it answered, how many of them have a label, how many were right."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    version: str
    requests: int = Field(0, ge=0)
    labelled: int = Field(0, ge=0)
    right: int = Field(0, ge=0)

    @property
    def arm(self) -> Arm:
        """The arm a decision gets: ``right`` successes out of ``labelled`` trials."""
        return Arm(successes=self.right, trials=self.labelled)


def request_id(prefix: str, day: int, number: int) -> str:
    """The name of request ``number`` of ``day`` in the A/B test ``prefix``."""
    return f"{day_prefix(prefix, day)}-{number}"


def day_prefix(prefix: str, day: int) -> str:
    """What every request id of ``day`` in the A/B test ``prefix`` starts with (before ``-<number>``)."""
    return f"{prefix}-d{day}"


def day_of(request_id: str, prefix: str) -> int | None:
    """The day of a request of the A/B test ``prefix``; None for a request of anything else."""
    found = re.fullmatch(rf"{re.escape(prefix)}-d(\d+)-\d+", request_id)
    return int(found.group(1)) if found else None


def tally(rows: Iterable[Logged], versions: Sequence[str]) -> dict[str, Tally]:
    """The tally of each of ``versions`` over ``rows`` (a version without rows gets zeros). A row of another
    version is an error: an A/B test compares exactly the versions it names."""
    counts = {v: [0, 0, 0] for v in versions}
    for row in rows:
        if row.version not in counts:
            raise InputError(
                f"Request {row.request_id} was answered by version {row.version}, which is not one of the arms "
                f"{', '.join(versions)}: only the two versions under test may serve the test's traffic."
            )
        seen = counts[row.version]
        seen[0] += 1
        if row.label is not None:
            seen[1] += 1
            seen[2] += int(row.prediction == row.label)
    return {v: Tally(version=v, requests=n, labelled=k, right=r) for v, (n, k, r) in counts.items()}


def looks(rows: Iterable[Logged], prefix: str, versions: Sequence[str], days: int) -> list[dict[str, Tally]]:
    """The cumulative tallies after each of days 1..``days`` of the A/B test ``prefix`` (rows of other tests and
    of later days are left out)."""
    by_day: dict[int, list[Logged]] = {}
    for row in rows:
        day = day_of(row.request_id, prefix)
        if day is not None:
            by_day.setdefault(day, []).append(row)
    seen: list[Logged] = []
    result = []
    for day in range(1, days + 1):
        seen.extend(by_day.get(day, []))
        result.append(tally(seen, versions))
    return result


def days_logged(rows: Iterable[Logged], prefix: str) -> list[int]:
    """The days of the A/B test ``prefix`` that have logged requests, in order."""
    return sorted({d for r in rows if (d := day_of(r.request_id, prefix)) is not None})


def split_problem(tallies: dict[str, Tally], version: str, share: float = 0.5, sigmas: float = 4.0) -> str | None:
    """Why the share of requests ``version`` answered is not ``share`` up to ``sigmas`` binomial standard errors
    (at least 5 points); None when it is."""
    total = sum(t.requests for t in tallies.values())
    if total == 0:
        return "no request of the test was logged"
    seen = tallies[version].requests / total
    margin = max(0.05, sigmas * math.sqrt(share * (1 - share) / total))
    if abs(seen - share) > margin:
        return (
            f"version {version} answered {seen:.0%} of the test's {total} requests, not {share:.0%} "
            f"(give or take {margin:.0%} of noise)"
        )
    return None
