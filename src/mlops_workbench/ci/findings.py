"""Findings: one problem in a file (rule, line, message, fix), shared by workflow checks and Docker lint."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

Severity = Literal["error", "warning", "info"]


class Finding(BaseModel):
    """One problem found in ``file`` at ``line`` (1-based, ``None`` when it concerns the whole file)."""

    rule: str = Field(description="stable id of the rule, e.g. 'schema', 'test-step', 'DL3008'")
    severity: Severity = "error"
    message: str
    fix: str = ""
    file: str = ""
    line: int | None = None
    path: str = Field("", description="where in the document, e.g. 'jobs.build.steps[2]'")

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        text = f"{where}: {self.severity} [{self.rule}] {self.message}"
        return f"{text} Fix: {self.fix}" if self.fix else text


class Report(BaseModel):
    """All findings for one file; ``ok`` when none is an error."""

    file: str
    findings: list[Finding] = Field(default_factory=list)

    @property
    def errors(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def ok(self) -> bool:
        return not self.errors

    def rules(self) -> set[str]:
        return {f.rule for f in self.findings}

    def exit_code(self) -> int:
        return 0 if self.ok else 1

    @classmethod
    def for_file(cls, path: Path | str, findings: list[Finding]) -> Report:
        name = str(path)
        for f in findings:
            f.file = f.file or name
        findings.sort(key=lambda f: (f.line or 0, f.rule))
        return cls(file=name, findings=findings)
