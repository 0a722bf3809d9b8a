"""Drill ``triple-v``: trace a served request back to the code, data and run behind the model that answered it."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench import registry
from mlops_workbench.data import load_iris_frame
from mlops_workbench.drills import common, workspaces
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck, delete_model, stop_every_service
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry import audit
from mlops_workbench.serving import paths
from mlops_workbench.serving.client import ModelServerClient
from mlops_workbench.versioning import DATA

REQUEST = "request.json"


class TraceAnswer(BaseModel):
    """``answer.yaml``: the three V's of the model that answered the request."""

    model_config = ConfigDict(extra="forbid")
    git_commit: str = Field(min_length=7, description="the workspace commit (full hash or a prefix of 7+ characters)")
    data_md5: str = Field(min_length=32, max_length=32, description="the DVC md5 of the training data")
    run_id: str = Field(min_length=32, max_length=32, description="the MLflow run that logged the model")


class Release(BaseModel):
    """What one release changed before training: rows dropped from the data, the regularisation C."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    drop_rows: tuple[int, ...] = ()
    C: float | None = None


class TraceVariant(Variant):
    releases: tuple[Release, ...] = Field(min_length=2)
    answered: int = Field(ge=1, description="the release (1-based) in production when the request was answered")


class TripleV(Drill):
    answer_model = TraceAnswer
    variants = (
        TraceVariant(key="first-of-two", answered=1, releases=(Release(), Release(drop_rows=(0, 50, 100), C=0.5))),
        TraceVariant(
            key="second-of-three", answered=2, releases=(Release(), Release(C=0.5), Release(drop_rows=(1, 51, 101)))
        ),
        TraceVariant(
            key="first-of-three", answered=1, releases=(Release(), Release(drop_rows=(2, 52, 102)), Release(C=0.3))
        ),
    )
    spec = DrillSpec(
        name="triple-v",
        number=7,
        symptom="a customer disputes a prediction",
        root_cause=None,
        incident=False,
        minutes=10,
        brief=(
            "A customer disputes a prediction of `{model}`. The access log entry is `request.json` in {folder} "
            "(time, payload, answer; the version is not logged). Which model answered it, and what produced that "
            "model? Write answer.yaml with `git_commit`, `data_md5` and `run_id`. Production has moved on since."
        ),
        hints=[
            "The registry audit log says which version held `production` at the request's time "
            "(compare each promotion's `ts` with the request's `at`).",
            "The version's run_id leads to the run's lineage tags: versioning.run_lineage(run_id)['tags'] has "
            "git.commit and data.md5.",
        ],
        answer=(
            "Version: the production promotion in force at the request time (audit log). Model: its run_id in the "
            "registry. Code and data: the run's lineage tags git.commit and data.md5 (DVC hash), from which "
            "`workbench reproduce` rebuilds the exact model. Prevent the detective work: log the model version "
            "with every prediction."
        ),
    )

    def setup(self, ctx: DrillContext, variant: TraceVariant) -> None:
        data = load_iris_frame()
        ws = workspaces.create(ctx, data)
        versions: list[str] = []
        service = None
        for number, release in enumerate(variant.releases, start=1):
            if release.drop_rows:
                data = data.drop(index=list(release.drop_rows)).reset_index(drop=True)
                data.to_csv(ws.path / DATA, index=False)
                ws.dvc("add", "--quiet", DATA)
            if release.C is not None:
                ws.set_params(train={"C": release.C})
            versions.append(workspaces.register(ctx, workspaces.logged_run(ctx, ws, f"Train v{number}: {release}")))
            gate = registry.quality_gate(ctx.wb, ctx.model_name, versions[-1], params=common.LENIENT_GATE)
            common.ship(ctx, versions[-1], f"release {number}", gate_result=gate)
            service = common.serve(ctx) if service is None else service
            ModelServerClient.of(ctx.wb, service.url).reload()
            if number == variant.answered:
                _record_request(ctx, service.url)
        ctx.save_facts(versions=versions)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("trace-correct", _trace_correct),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        _write_answer(ctx, _served_version(ctx))

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "answer-current-production": lambda ctx: _write_answer(ctx, common.production(ctx)),
            "stop-every-service": lambda ctx: _answer_then(ctx, stop_every_service),
            "delete-the-registered-model": lambda ctx: _answer_then(ctx, delete_model),
        }


def _answer_then(ctx: DrillContext, destroy: Callable[[DrillContext], None]) -> None:
    """The right answer, then ``destroy``: the guard must catch what the answer alone would pass."""
    _write_answer(ctx, _served_version(ctx))
    destroy(ctx)


def _record_request(ctx: DrillContext, url: str) -> None:
    """Answer one request now and keep it as the access log entry the customer disputes."""
    at = audit.now()
    reply = ModelServerClient.of(ctx.wb, url).predict([common.VERSICOLOR], timeout=30)
    (ctx.folder / REQUEST).write_text(
        json.dumps(
            {
                "at": at,
                "path": paths.PREDICT,
                "payload": {"instances": [common.VERSICOLOR]},
                "answer": reply["predictions"],
            },
            indent=1,
        )
    )


def _served_version(ctx: DrillContext) -> str:
    """The version ``production`` pointed to when the request was answered (from the audit log)."""
    request = json.loads((ctx.folder / REQUEST).read_text())
    at = datetime.fromisoformat(request["at"])
    moves = [
        e for e in audit.production_moves(audit.read(ctx.wb), ctx.model_name) if datetime.fromisoformat(e.ts) <= at
    ]
    if not moves:
        fail("The audit log has no production promotion before the request: the trail is broken.")
    return str(moves[-1].version)


def _lineage(ctx: DrillContext, version: str) -> dict[str, str]:
    client = registry.client(ctx.wb)
    run_id = client.get_model_version(ctx.model_name, version).run_id
    if run_id is None:  # every version the setup registers comes from a run
        fail(f"Version {version} of '{ctx.model_name}' names no run, so it has no lineage: reset the drill.")
    tags = client.get_run(run_id).data.tags
    return {"run_id": run_id, "git_commit": tags["git.commit"], "data_md5": tags["data.md5"]}


def _write_answer(ctx: DrillContext, version: str) -> None:
    import yaml

    ctx.answer_path.write_text(yaml.safe_dump(_lineage(ctx, version)))


def _trace_correct(ctx: DrillContext) -> None:
    """answer.yaml names the commit, data hash and run of the version that answered the request."""
    answer = ctx.read_record(ctx.answer_path, TraceAnswer)
    truth = _lineage(ctx, _served_version(ctx))
    wrong = []
    if not truth["git_commit"].startswith(answer.git_commit.lower()):  # type: ignore[attr-defined]
        wrong.append("git_commit")
    if answer.data_md5.lower() != truth["data_md5"]:  # type: ignore[attr-defined]
        wrong.append("data_md5")
    if answer.run_id.lower() != truth["run_id"]:  # type: ignore[attr-defined]
        wrong.append("run_id")
    if wrong:
        fail(
            f"{', '.join(wrong)} do not belong to the model that answered the request: find the version that "
            "held production at the request's time, then its run and lineage."
        )


DRILL = TripleV()
