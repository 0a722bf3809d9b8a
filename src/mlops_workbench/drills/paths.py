"""Where drills keep their state under the state folder (``<home>/drills/``)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mlops_workbench import settings


@dataclass(frozen=True)
class DrillPaths:
    """``<home>/drills/``: the running drill's timer, the reports and one folder per drill."""

    root: Path

    @property
    def session(self) -> Path:
        """The running drill: name, start time, hints used."""
        return self.root / "session.json"

    @property
    def reports(self) -> Path:
        """Every graded attempt, one JSON file each."""
        return self.root / "reports"

    @property
    def latest_report(self) -> Path:
        return self.root / "report.json"

    @property
    def interview(self) -> Path:
        """The running interview: its drills, their seeds and results so far."""
        return self.root / "interview.json"

    @property
    def interviews(self) -> Path:
        """One folder per finished interview, with its scorecard (JSON and HTML)."""
        return self.root / "interviews"

    def folder(self, drill: str) -> Path:
        """The drill's own folder: hidden facts, workspaces, the learner's post-mortem and answers."""
        return self.root / drill


def drill_paths(home: Path | None = None) -> DrillPaths:
    """The drill paths under ``home`` (default: the state folder); the root is created."""
    root = settings.layout(home).drills
    root.mkdir(parents=True, exist_ok=True)
    return DrillPaths(root)
