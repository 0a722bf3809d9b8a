"""A notebook widget that redraws itself on a timer: the refreshing part of the live dashboards and panels.

A subclass says how to redraw once (:meth:`Live.tick`, which must not raise: it shows its own problems);
:meth:`Live.start` draws at once, then again every ``refresh_s`` seconds on a daemon thread, so what changes in
the services shows up without running the cell again; :meth:`Live.stop` ends it. ipywidgets sends a changed
value to the browser from any thread. :func:`sentence_html` shows the workbench's sentences (commands in backticks)
in their HTML.
"""

from __future__ import annotations

import html
import threading
from typing import Self

RED, GREEN, AMBER, GREY = "#c62828", "#2e7d32", "#f9a825", "#555"
"""The colours of a bad, good, waiting and neutral state in the live widgets."""


def escape(value: object) -> str:
    """``value`` as text safe inside HTML."""
    return html.escape(str(value))


def sentence_html(sentence: str) -> str:
    """A workbench sentence as HTML: escaped, its `backticked` commands as ``<code>``."""
    parts = escape(sentence).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(parts))


class Live:
    """Redraws every ``refresh_s`` seconds from :meth:`start` until :meth:`stop`."""

    thread_name = "workbench-live-widget"

    def __init__(self, refresh_s: float) -> None:
        self.refresh_s = refresh_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def tick(self) -> None:
        """Redraw once (never raises: a failure is shown in the widget and the next tick tries again)."""
        raise NotImplementedError

    def start(self) -> Self:
        """Draw now, then in the background until :meth:`stop`."""

        def loop() -> None:
            while not self._stop.wait(self.refresh_s):
                self.tick()

        self.tick()
        self._thread = threading.Thread(target=loop, daemon=True, name=self.thread_name)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(5)
