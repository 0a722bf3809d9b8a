"""Small drills for testing the drill machinery (session, clock, hints, scoring, interviews) in a second: a setup
that starts a tiny HTTP service, a check that passes once a file exists, a reference fix that writes it."""

from __future__ import annotations

import sys

import pytest

from mlops_workbench import procs
from mlops_workbench.drills import catalog
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.workbench import Workbench

VALIDATE_TIMEOUT = 2400
"""Seconds for validating every variant of a drill: three real setups and repairs, on a busy 2-core machine."""


def _serve(name: str, home) -> procs.Service:
    port = procs.free_port()
    return procs.start(
        Workbench.from_env(home),
        name,
        [sys.executable, "-m", "http.server", "--bind", "127.0.0.1", str(port)],
        port,
        health_path="/",
    )


class FakeDrill(Drill):
    """``fixed`` written in the drill folder passes it; the setup starts the service ``<handle>-serve``."""

    variants = (Variant(key="one"), Variant(key="two"), Variant(key="three"))

    def __init__(
        self, name: str, number: int = 90, minutes: int = 5, serve: bool = True, needs: tuple[str, ...] = ()
    ) -> None:
        self.spec = DrillSpec(
            name=name,
            number=number,
            symptom=f"{name} symptom",
            root_cause=RootCause.ANALYSIS_CONFIG,
            fixes=[Change.POLICY_CORRECTED],
            incident=False,
            minutes=minutes,
            brief="Something is off in {model}.",
            hints=["look around", "look closer", "write `fixed`"],
            answer="it was a fake",
            needs=list(needs),
        )
        self.serve = serve

    def setup(self, ctx: DrillContext, variant: Variant) -> None:
        if self.serve:
            _serve(ctx.server, ctx.home)
        ctx.save_facts(ready=True)

    def checks(self) -> list[GradedCheck]:
        return [GradedCheck("fixed", _fixed), GradedCheck("folder-kept", _folder_kept, guard=True)]

    def reference_fix(self, ctx: DrillContext) -> None:
        (ctx.folder / "fixed").write_text("yes")

    def destructive_fixes(self):
        return {"delete-the-folder": lambda ctx: (ctx.folder / ".facts.json").unlink()}

    def services(self, ctx: DrillContext) -> list[str]:
        return [ctx.server] if self.serve else []


def _fixed(ctx: DrillContext) -> None:
    if not (ctx.folder / "fixed").exists():
        fail("write `fixed` in the drill folder")


def _folder_kept(ctx: DrillContext) -> None:
    ctx.fact("ready")


def install(monkeypatch: pytest.MonkeyPatch, *fakes: FakeDrill) -> None:
    """Make the catalog hold only ``fakes``."""
    by_name = {fake.name: fake for fake in fakes}

    def get(name: str) -> Drill:
        if name not in by_name:
            raise catalog.DrillError(f"There is no drill '{name}'. Known drills: {', '.join(by_name)}")
        return by_name[name]

    monkeypatch.setattr(catalog, "get", get)
    monkeypatch.setattr(catalog, "MODULES", {name: name for name in by_name})
