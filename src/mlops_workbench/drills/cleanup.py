"""Drills leave no process behind: what a drill (or a reset, or a validation) started is stopped when it ends,
and what ran before it (a learner's own tracking server, a pipeline's) is kept."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager

from mlops_workbench import procs
from mlops_workbench.workbench import Workbench


def running(wb: Workbench) -> list[str]:
    """Names of the background services of the state folder of ``wb`` that run now."""
    return [service.name for service in procs.running(wb)]


def stop_started(wb: Workbench, before: Iterable[str]) -> list[str]:
    """Stop every service of ``wb`` that is not in ``before``; returns their names."""
    return procs.stop_all(wb, keep=list(before))


@contextmanager
def stopping_what_starts(wb: Workbench) -> Iterator[list[str]]:
    """Within the block services may start (a setup needs the tracking server); at its end, even on an error, each
    service that was not running before is stopped. Yields the names of those that were."""
    before = running(wb)
    try:
        yield before
    finally:
        stop_started(wb, before)
