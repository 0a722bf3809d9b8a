"""Drill ``triple-v``: trace a served request back to the code, data and run behind the model that answered it."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Callable

import httpx
from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench import procs, registry
from mlops_workbench.data import load_iris_frame
from mlops_workbench.drills import common, workspaces
from mlops_workbench.drills.bad_model import LENIENT_GATE
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck, delete_model
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.labs.checks import fail
from mlops_workbench.registry import audit
from mlops_workbench.serving.client import ModelServerClient

REQUEST = "request.json"


class TraceAnswer(BaseModel):
    """``answer.yaml``: the three V's of the model that answered the request."""

    model_config = ConfigDict(extra="forbid")
    git_commit: str = Field(min_length=7, description="the workspace commit (full hash or a prefix of 7+ characters)")
    data_md5: str = Field(min_length=32, max_length=32, description="the DVC md5 of the training data")
    run_id: str = Field(min_length=32, max_length=32, description="the MLflow run that logged the model")


class TripleV(Drill):
    answer_model = TraceAnswer
    spec = DrillSpec(
        name="triple-v",
        title="A trace question (Triple-V: code, data, model)",
        category="trace",
        incident=False,
        minutes=10,
        brief=(
            "A customer disputes a prediction. The access log entry is `request.json` in the drill folder (time, "
            "payload, answer; the version is not logged). Which model answered it, and what produced that model? "
            "Write answer.yaml with `git_commit`, `data_md5` and `run_id`. Production has moved on since."
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

    def setup(self, ctx: DrillContext) -> None:
        iris = load_iris_frame()
        ws = workspaces.create(ctx, iris)
        first = workspaces.register(ctx, workspaces.logged_run(ctx, ws, "Train v1"))
        common.ship(ctx, first, "first release")
        service = common.serve(ctx)
        at = audit.now()
        reply = httpx.post(f"{service.url}/predict", json={"instances": [common.VERSICOLOR]}, timeout=30).json()
        (ctx.folder / REQUEST).write_text(json.dumps({"at": at, "path": "/predict",
                                                      "payload": {"instances": [common.VERSICOLOR]},
                                                      "answer": reply["predictions"]}, indent=1))
        iris.drop(index=[0, 50, 100]).reset_index(drop=True).to_csv(ws.path / "data/iris.csv", index=False)
        ws.dvc("add", "--quiet", "data/iris.csv")
        ws.set_params(train={"C": 0.5})
        second = workspaces.register(ctx, workspaces.logged_run(ctx, ws, "Train v2: deduplicated export, C=0.5"))
        gate = registry.quality_gate(ctx.model_name, second, params=LENIENT_GATE, home=ctx.home)
        common.ship(ctx, second, "second release", gate_result=gate)
        ModelServerClient(service.url, home=ctx.home).reload()
        ctx.save_facts(versions=[first, second])

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
            "stop-every-service": lambda ctx: (_write_answer(ctx, _served_version(ctx)),
                                               procs.stop_all(ctx.home)) and None,
            "delete-the-registered-model": lambda ctx: (_write_answer(ctx, _served_version(ctx)),
                                                        delete_model(ctx)) and None,
        }


def _served_version(ctx: DrillContext) -> str:
    """The version ``production`` pointed to when the request was answered (from the audit log)."""
    request = json.loads((ctx.folder / REQUEST).read_text())
    at = datetime.fromisoformat(request["at"])
    moves = [e for e in audit.read(home=ctx.home) if e.get("model") == ctx.model_name
             and e.get("alias") == "production" and e.get("outcome") in ("promoted", "rolled_back")
             and datetime.fromisoformat(e["ts"]) <= at]
    if not moves:
        fail("The audit log has no production promotion before the request: the trail is broken.")
    return str(moves[-1]["version"])


def _lineage(ctx: DrillContext, version: str) -> dict[str, str]:
    client = registry.client(ctx.home)
    run_id = client.get_model_version(ctx.model_name, version).run_id
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
        fail(f"{', '.join(wrong)} do not belong to the model that answered the request: find the version that "
             "held production at the request's time, then its run and lineage.")


DRILL = TripleV()
