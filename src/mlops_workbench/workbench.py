"""The ``Workbench`` context: which state folder, checkout and ports one command, lab kernel or test works with.

It is made once at an entry point (a CLI command, ``labs.session.start()``, the grader, a server's ``main()``, a
test fixture) with :meth:`Workbench.from_env`, the one place that reads ``WORKBENCH_HOME``,
``WORKBENCH_PROJECT`` and ``WORKBENCH_PORT_OFFSET``, and passed down as the first parameter of whatever needs it.
Making one does no I/O and creates no folder. The tracking URI and the clients stay with their owners, which take
the context: ``tracking.uri(wb)``, ``tracking.client(wb)``, ``registry.client(wb)``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mlops_workbench import settings
from mlops_workbench.errors import NotFoundError


@dataclass(frozen=True)
class Workbench:
    """One workbench: its state folder (absolute), its checkout (None outside one) and its port offset."""

    home: Path
    project: Path | None = None
    port_offset: int = 0

    @classmethod
    def from_env(cls, home: Path | None = None) -> Workbench:
        """The workbench the environment describes; ``home`` (made absolute) instead of ``WORKBENCH_HOME`` when
        given. Reads the environment now, creates nothing."""
        try:
            project: Path | None = settings.project_root()
        except NotFoundError:
            project = None
        state = Path(home).expanduser().resolve() if home is not None else settings.home()
        return cls(home=state, project=project, port_offset=settings.port_offset())

    def at(self, home: Path) -> Workbench:
        """The same checkout and ports with another state folder (a drill's or a pipeline group's own)."""
        return Workbench(home=Path(home).expanduser().resolve(), project=self.project, port_offset=self.port_offset)

    @property
    def layout(self) -> settings.StateLayout:
        """Every path under the state folder."""
        return settings.StateLayout(self.home)

    def port(self, service: str) -> int:
        """The default port of ``service`` (a key of ``settings.BASE_PORTS``) with this workbench's offset."""
        return settings.BASE_PORTS[service] + self.port_offset

    def port_reason(self, service: str) -> str:
        """The default port of ``service`` and where it comes from, for messages: ``8988 (8888 +
        WORKBENCH_PORT_OFFSET=100)``, or ``8888 (the default)`` without an offset."""
        port, base = self.port(service), settings.BASE_PORTS[service]
        return (
            f"{port} ({base} + {settings.PORT_OFFSET_ENV}={self.port_offset})"
            if self.port_offset
            else f"{port} (the default)"
        )

    def env(self) -> dict[str, str]:
        """The environment variables a child process needs to see this same workbench."""
        found = {settings.HOME_ENV: str(self.home), settings.PORT_OFFSET_ENV: str(self.port_offset)}
        if self.project is not None:
            found[settings.PROJECT_ENV] = str(self.project)
        return found

    def child_env(self) -> dict[str, str]:
        """This process's environment with :meth:`env` on top: what a spawned server, kernel or stage gets."""
        return {**os.environ, **self.env()}
