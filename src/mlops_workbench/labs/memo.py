"""A grading's memo: work that several checks need, done once per grading and shared.

Two checks of a lab may need the same expensive fact, e.g. "do the learner's tests pass on this exact code?"
(lab 01's ``data-tests`` and ``tests-catch-data-bugs``). :meth:`Memo.once` computes the answer for a key the first
time it is asked and hands the same answer to every later caller; a caller asking while the first one is still
computing waits for it instead of starting the same work a second time (isolated checks run side by side).

A key must name everything the answer depends on (the content of the files, the command): equal keys must mean
equal work. The memo lives in one :class:`~mlops_workbench.labs.checks.Context`, so nothing carries over from one
grading, or one ``check()`` call in a notebook, to the next.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from concurrent.futures import Future
from typing import Any, TypeVar

T = TypeVar("T")


class Memo:
    """Answers by key, each computed once; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[Hashable, Future[Any]] = {}

    def once(self, key: Hashable, compute: Callable[[], T]) -> T:
        """``compute()`` the first time ``key`` is asked, the same answer (or the same exception) after that."""
        with self._lock:
            answer = self._answers.get(key)
            first = answer is None
            if answer is None:
                answer = self._answers[key] = Future()
        if first:
            try:
                answer.set_result(compute())
            except BaseException as exc:  # handed to every caller of this key, this one included
                answer.set_exception(exc)
        result: T = answer.result()
        return result

    def __len__(self) -> int:
        return len(self._answers)
