"""The drill protocol: ``setup`` breaks the system, ``checks`` grade the state, ``reference_fix`` repairs it,
``destructive_fixes`` are the wrong repairs the guard checks must catch, ``reset`` puts everything back.

A check is a function of the :class:`DrillContext` that returns when the state is right and calls
:func:`mlops_workbench.labs.checks.fail` with a message telling the learner what to do when it is not.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection

from pydantic import BaseModel, ValidationError

from mlops_workbench import procs, safeyaml, settings
from mlops_workbench.drills.paths import drill_paths
from mlops_workbench.drills.spec import CheckOutcome, DrillSpec, PostMortem, PostMortemTruth
from mlops_workbench.errors import InputError, WorkbenchError
from mlops_workbench.fielderrors import describe
from mlops_workbench.labs.checks import CheckFailed, fail

SETUP_APPROVER = "drill-setup"
"""Who the setup's own registry actions are recorded as (never the learner)."""


class DrillError(WorkbenchError, RuntimeError):
    """A drill cannot run here (bad name, missing tool, nothing started); the message says what to do."""


@dataclass
class DrillContext:
    """What a drill works on: the state folder and the drill's own folder in it."""

    name: str
    home: Path

    @property
    def folder(self) -> Path:
        path = drill_paths(self.home).folder(self.name)
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def model_name(self) -> str:
        """The drill's own registered model, so drills and labs never share versions."""
        return f"drill-{self.name}"

    @property
    def server(self) -> str:
        """Service name of the drill's model server."""
        return f"drill-{self.name}-serve"

    # hidden facts written by setup and read by checks (the learner is never told to look here)
    def save_facts(self, **facts: Any) -> dict[str, Any]:
        merged = {**self.facts(), **facts}
        (self.folder / ".facts.json").write_text(json.dumps(merged, indent=1, default=str))
        return merged

    def facts(self) -> dict[str, Any]:
        path = self.folder / ".facts.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def fact(self, key: str) -> Any:
        facts = self.facts()
        if key not in facts:
            fail(f"The drill '{self.name}' was not set up here: run `workbench drill start {self.name}` first.")
        return facts[key]

    # the learner's records
    @property
    def postmortem_path(self) -> Path:
        return self.folder / "postmortem.yaml"

    @property
    def answer_path(self) -> Path:
        return self.folder / "answer.yaml"

    def read_record(self, path: Path, model: type[BaseModel]) -> BaseModel:
        """The learner's record at ``path`` as ``model``; anything wrong with it fails the calling check only."""
        if not path.exists():
            fail(f"{path} is missing: write it (YAML, fields {', '.join(model.model_fields)}) "
                 f"or call mlops_workbench.drills.record('{self.name}', ...).")
        try:
            return parse_record(safeyaml.load(path, what=str(path)), model, str(path), self.name)
        except InputError as exc:
            fail(str(exc))
        raise AssertionError("unreachable")


def parse_record(data: Any, model: type[BaseModel], source: str, drill: str) -> BaseModel:
    """``data`` as the record ``model``, else :class:`InputError` listing each bad field, what it expects, the fix."""
    fields = ", ".join(model.model_fields)
    if not isinstance(data, dict):
        raise InputError(f"{source} must be a YAML mapping of the fields {fields} (one 'field: value' line each), "
                         f"not {'an empty file' if data is None else type(data).__name__}. Rewrite it, or call "
                         f"mlops_workbench.drills.record('{drill}', ...).")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        lines = describe(err, model)
        raise InputError(f"{source} has {len(lines)} bad field(s); fix each one, then check again:\n"
                         + "\n".join(lines)) from None


Check = Callable[[DrillContext], None]


@dataclass(frozen=True)
class GradedCheck:
    id: str
    func: Check
    guard: bool = False


class Drill:
    """Base of every drill module's drill; subclasses set ``spec`` and implement the five parts."""

    spec: DrillSpec
    answer_model: type[BaseModel] | None = None
    """The shape of ``answer.yaml`` when the drill asks for values (e.g. the trace drill)."""

    @property
    def name(self) -> str:
        return self.spec.name

    def context(self, home: Path | None = None) -> DrillContext:
        return DrillContext(self.name, home or settings.home())

    def preflight(self) -> None:
        """Raise :class:`DrillError` when a tool the drill needs is missing."""
        from mlops_workbench.rollout import prometheus

        if "prometheus" in self.spec.needs and not prometheus.available():
            raise DrillError(f"The drill '{self.name}' needs a Prometheus server: install it "
                             "(`apt-get install prometheus`) or set WORKBENCH_PROMETHEUS, then start it again.")

    def setup(self, ctx: DrillContext) -> None:
        raise NotImplementedError

    def checks(self) -> list[GradedCheck]:
        raise NotImplementedError

    def reference_fix(self, ctx: DrillContext) -> None:
        raise NotImplementedError

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        raise NotImplementedError

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        """What the logs say about the incident (incident drills only)."""
        raise NotImplementedError

    def services(self, ctx: DrillContext) -> list[str]:
        """Background services the drill starts (stopped by :meth:`reset`)."""
        return [ctx.server]

    def reset(self, ctx: DrillContext) -> None:
        """Stop the drill's services, delete its registered model and its folder."""
        for service in self.services(ctx):
            procs.stop(service, ctx.home)
        delete_model(ctx)
        shutil.rmtree(drill_paths(ctx.home).folder(self.name), ignore_errors=True)

    # --- grading ---------------------------------------------------------------------------------
    def all_checks(self) -> list[GradedCheck]:
        checks = list(self.checks())
        if self.spec.incident:
            checks.append(GradedCheck("postmortem", self._postmortem))
        return checks

    def _postmortem(self, ctx: DrillContext) -> None:
        """The post-mortem record matches what the event log and the registry say."""
        from mlops_workbench.drills.postmortem import compare

        record = ctx.read_record(ctx.postmortem_path, PostMortem)
        problems = compare(record, self.truth(ctx))  # type: ignore[arg-type]
        if problems:
            fail("The post-mortem does not match the logs: " + "; ".join(problems))

    def grade(self, ctx: DrillContext, only: Collection[str] | None = None) -> list[CheckOutcome]:
        """Run every check (or those whose id is in ``only``); one broken check never stops the others."""
        outcomes = []
        for check in self.all_checks():
            if only is not None and check.id not in only:
                continue
            try:
                check.func(ctx)
                outcomes.append(CheckOutcome(id=check.id, passed=True, guard=check.guard))
            except CheckFailed as exc:
                outcomes.append(CheckOutcome(id=check.id, passed=False, message=str(exc), guard=check.guard))
            except Exception as exc:  # noqa: BLE001 - a crashing check is a failed check, with its cause
                outcomes.append(CheckOutcome(id=check.id, passed=False, guard=check.guard,
                                             message=f"the check could not read the state ({type(exc).__name__}: {exc})"))
        return outcomes


def delete_model(ctx: DrillContext) -> None:
    """Delete the drill's registered model (starting the state folder's tracking server if it has a store)."""
    from mlflow.exceptions import MlflowException

    from mlops_workbench import registry, tracking

    if procs.get("mlflow", ctx.home) is None:
        if not tracking.store_paths(ctx.home)[0].exists():
            return  # no registry was ever created here
        tracking.up(home=ctx.home, timeout=300)

    try:
        registry.client(ctx.home).delete_registered_model(ctx.model_name)
    except (MlflowException, registry.RegistryError):
        pass
