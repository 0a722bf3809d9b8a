"""The drill protocol: ``prepare`` draws a variant from a seed and ``setup`` breaks the system that way, ``checks``
grade the state, ``reference_fix`` repairs it, ``destructive_fixes`` are the wrong repairs the guard checks must
catch (``teardown`` names the one that tears everything down), ``truth`` reads what happened from the drill's own
run for the post-mortem, ``reset`` puts everything back.

A check is a function of the :class:`DrillContext` that returns when the state is right and calls
:func:`mlops_workbench.labs.checks.fail` with a message telling the learner what to do when it is not.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from mlops_workbench import output, procs, safeyaml
from mlops_workbench.drills import variants
from mlops_workbench.drills.causes import Change
from mlops_workbench.drills.postmortem_spec import PostMortemTruth
from mlops_workbench.drills.records import parse_record
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import V, Variant
from mlops_workbench.errors import InputError, WorkbenchError
from mlops_workbench.labs.checks import fail
from mlops_workbench.workbench import Workbench

SETUP_APPROVER = "drill-setup"
"""Who the setup's own registry actions are recorded as (never the learner)."""


class DrillError(WorkbenchError, RuntimeError):
    """A drill cannot run here (bad name, missing tool, nothing started); the message says what to do."""


@dataclass
class DrillContext:
    """What a drill works on: the state folder and the drill's own folder in it.

    Everything the learner sees carries the drill's neutral ``handle`` (``incident-3``), never its name: the name
    says what broke.
    """

    name: str
    wb: Workbench
    handle: str = ""
    """Defaults to the name (a drill outside the catalog)."""

    def __post_init__(self) -> None:
        self.handle = self.handle or self.name

    @property
    def home(self) -> Path:
        """The state folder (``wb.home``)."""
        return self.wb.home

    @property
    def folder(self) -> Path:
        """The drill's own folder; made by :meth:`save_facts`, the first thing a setup writes."""
        return self.wb.layout.drills.folder(self.handle)

    @property
    def model_name(self) -> str:
        """The drill's own registered model, so drills and labs never share versions."""
        return self.handle

    @property
    def server(self) -> str:
        """Service name of the drill's model server."""
        return f"{self.handle}-serve"

    @property
    def experiment(self) -> str:
        """The MLflow experiment of the drill's runs."""
        return self.handle

    # hidden facts written by setup and read by checks (the learner is never told to look here)
    def save_facts(self, **facts: Any) -> dict[str, Any]:
        merged = {**self.facts(), **facts}
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / ".facts.json").write_text(json.dumps(merged, indent=1, default=str))
        return merged

    def facts(self) -> dict[str, Any]:
        path = self.folder / ".facts.json"
        return json.loads(path.read_text()) if path.exists() else {}

    def variant(self, model: type[V]) -> V:
        """The variant the setup drew, as the drill's own variant model."""
        return model.model_validate(self.fact("variant"))

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
            fail(
                f"{path} is missing: write it (YAML, fields {', '.join(model.model_fields)}) "
                f"or call mlops_workbench.drills.record(lab.wb, '{self.name}', ...)."
            )
        try:
            return parse_record(safeyaml.load(path, what=str(path)), model, str(path), self.name)
        except InputError as exc:
            fail(str(exc))
        raise AssertionError("unreachable")


Check = Callable[[DrillContext], object]
"""A graded check: it passes by returning (whatever it returns is ignored) and fails by raising."""


@dataclass(frozen=True)
class GradedCheck:
    id: str
    func: Check
    guard: bool = False


@dataclass(frozen=True)
class AfterRepair:
    """A destructive fix that first does the drill's whole reference repair, then destroys something the repair
    needs to stay (its run, its model). Called, it does both; ``workbench drill validate`` starts it from the state
    the reference fix left, when it can restore that state exactly, and runs only :attr:`destroy`."""

    repair: Callable[[DrillContext], Any]
    destroy: Callable[[DrillContext], Any]

    def __call__(self, ctx: DrillContext) -> None:
        self.repair(ctx)
        self.destroy(ctx)


class Drill:
    """Base of every drill module's drill; subclasses set ``spec`` and implement the five parts."""

    spec: DrillSpec
    variants: tuple[Variant, ...]
    """What the drill may break, one drawn per seed (at least :data:`variants.MIN_VARIANTS`)."""
    teardown = "stop-every-service"
    """The destructive fix that tears everything down: validated after the reference fix of every variant."""
    answer_model: type[BaseModel] | None = None
    """The shape of ``answer.yaml`` when the drill asks for values (e.g. the trace drill)."""

    @property
    def name(self) -> str:
        return self.spec.name

    def context(self, wb: Workbench) -> DrillContext:
        return DrillContext(self.name, wb, self.spec.handle)

    def brief(self, ctx: DrillContext) -> str:
        """The brief with the drill's model and folder filled in."""
        return self.spec.brief.format(model=ctx.model_name, folder=ctx.folder)

    def preflight(self) -> None:
        """Raise :class:`DrillError` when a tool the drill needs is missing."""
        from mlops_workbench.drills import tools

        absent = tools.missing(self.spec.needs)
        if absent:
            raise DrillError(
                f"The drill '{self.name}' cannot run here: it {tools.reason(absent)}; then start it again."
            )

    def pick(self, seed: int) -> Variant:
        """The variant ``seed`` draws."""
        return variants.draw(self.variants, self.name, seed)

    def prepare(self, ctx: DrillContext, seed: int) -> Variant:
        """Break the system the way ``seed`` draws: the seed and the variant go to the hidden facts first."""
        variant = self.pick(seed)
        ctx.save_facts(seed=seed, variant=variant.model_dump())
        with output.hidden():  # what the setup does is the puzzle: MLflow's chatter would give it away
            self.setup(ctx, variant)
        return variant

    def setup(self, ctx: DrillContext, variant: Any) -> None:
        raise NotImplementedError

    def checks(self) -> list[GradedCheck]:
        raise NotImplementedError

    def reference_fix(self, ctx: DrillContext) -> None:
        raise NotImplementedError

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        """The wrong repairs the guard checks must catch: the two blunt ones every live-service drill must refuse
        to reward (stop every service; delete the registered model) around the drill's own
        (:meth:`wrong_repairs`). A drill whose blunt repairs differ (a workspace to break first) overrides this."""
        return {
            "stop-every-service": stop_every_service,
            **self.wrong_repairs(),
            "delete-the-registered-model": delete_model,
        }

    def wrong_repairs(self) -> dict[str, Callable[[DrillContext], None]]:
        """This drill's own tempting wrong repairs (see :meth:`destructive_fixes`)."""
        return {}

    def truth(self, ctx: DrillContext) -> PostMortemTruth:
        """What the run says about the incident (incident drills only): see :mod:`mlops_workbench.drills.postmortem`."""
        raise NotImplementedError

    def services(self, ctx: DrillContext) -> list[str]:
        """Background services the drill starts (stopped by :meth:`reset`)."""
        return [ctx.server]

    def reset(self, ctx: DrillContext) -> None:
        """Stop the drill's services, delete its registered model and its folder."""
        for service in self.services(ctx):
            procs.stop(ctx.wb, service)
        delete_model(ctx)
        shutil.rmtree(ctx.folder, ignore_errors=True)

    # --- grading (in :mod:`mlops_workbench.drills.grading`) ---------------------------------------------
    def all_checks(self) -> list[GradedCheck]:
        """The state checks, and for an incident drill the post-mortem's (graded apart, part by part)."""
        checks = list(self.checks())
        if self.spec.incident:
            checks.append(GradedCheck(POSTMORTEM, _graded_apart))
        return checks

    def known(self, ctx: DrillContext, changes: list[Change]) -> dict[str, Any]:
        """What a post-mortem truth takes from the drill itself: its cause, symptoms, needed fixes, the evidence."""
        return {
            "root_cause": self.spec.root_cause,
            "symptoms": self.spec.symptoms,
            "required": self.spec.fixes,
            "changes": changes,
        }


POSTMORTEM = "postmortem"


def _graded_apart(_ctx: DrillContext) -> None:
    raise AssertionError("the post-mortem is graded by drills.grading.assess, answer by answer")


def stop_every_service(ctx: DrillContext) -> None:
    """The blunt repair: every service of the state folder stopped (users lose the service)."""
    procs.stop_all(ctx.wb)


def delete_model(ctx: DrillContext) -> None:
    """Delete the drill's registered model (starting the state folder's tracking server if it has a store)."""
    from mlflow.exceptions import MlflowException

    from mlops_workbench import registry, tracking

    if procs.get(ctx.wb, "mlflow") is None:
        if not tracking.store_paths(ctx.wb)[0].exists():
            return  # no registry was ever created here
        tracking.up(ctx.wb, timeout=300)

    try:
        registry.client(ctx.wb).delete_registered_model(ctx.model_name)
    except (MlflowException, registry.RegistryError):
        pass
