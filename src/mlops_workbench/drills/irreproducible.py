"""Drill ``irreproducible``: the production model cannot be reproduced because its data changed outside DVC."""

from __future__ import annotations

import json
import shutil
from typing import Callable, Literal

from pydantic import BaseModel, ConfigDict

from mlops_workbench import registry, versioning
from mlops_workbench.data import load_iris_frame
from mlops_workbench.drills import common, workspaces
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck, delete_model
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.labs.checks import fail
from mlops_workbench.versioning import DATA
from mlops_workbench.versioning.workspace import file_md5

Cause = Literal["dirty-tree", "params-changed", "data-modified", "stale-outputs", "data-hash", "environment",
                "package-code", "nondeterministic"]


class CauseAnswer(BaseModel):
    """``answer.yaml`` of the drill: the cause code ``reproduce`` reports (see ReproductionReport.causes)."""

    model_config = ConfigDict(extra="forbid")
    cause: Cause


class Irreproducible(Drill):
    answer_model = CauseAnswer
    spec = DrillSpec(
        name="irreproducible",
        title="A model that cannot be reproduced",
        category="data",
        incident=False,
        minutes=20,
        brief=(
            "An auditor asks you to reproduce the production model of `drill-irreproducible` (its run is in the "
            "registry; the training workspace is `ws/` in the drill folder). `workbench reproduce RUN_ID` says "
            "NOT reproduced. Name the cause in answer.yaml (`cause:` the code reproduce reports), restore the "
            "workspace to its versioned state without rewriting history, then log a clean run and reproduce it exactly."
        ),
        hints=[
            "registry.get_alias('drill-irreproducible', 'production').run_id, then `workbench reproduce RUN_ID`: "
            "read its causes and the run's lineage tags (data.modified, data.md5).",
            "`git status` is clean but `dvc status` is not: the data changed without `dvc add`. `dvc checkout --force "
            "data/iris.csv.dvc` brings back the versioned bytes.",
            "Then ws.dvc('repro'), versioning.log_model_run(ws) and versioning.reproduce(run_id): matched=True.",
        ],
        answer=(
            "The run was logged with data.modified=true: someone edited data/iris.csv in place, retrained and "
            "logged it, so the bytes it trained on were never versioned and are gone. Cause: data-modified. "
            "Restore the versioned data (dvc checkout), retrain (dvc repro), log a run from a clean tree and "
            "reproduce it: same commit + same data hash + same params give the same metrics. Prevent it: CI refuses "
            "to log a run whose lineage says dirty, modified or stale."
        ),
    )

    def services(self, ctx: DrillContext) -> list[str]:
        return []

    def setup(self, ctx: DrillContext) -> None:
        original = load_iris_frame()
        ws = workspaces.create(ctx, original)
        clean = workspaces.logged_run(ctx, ws, "Train on the versioned Iris data")
        drifted = original.copy()
        drifted.loc[drifted["species"] == "versicolor", "sepal_width"] *= 1.15  # a "quick clean-up", never dvc-added
        drifted.round(3).to_csv(ws.path / DATA, index=False)
        ws.dvc("repro", "--quiet")
        bad = versioning.log_model_run(ws, experiment=f"drill-{ctx.name}", home=ctx.home)
        clean_v, bad_v = workspaces.register(ctx, clean), workspaces.register(ctx, bad)
        common.ship(ctx, bad_v, "retrained on the cleaned-up data", params={"min_accuracy": 0.5})
        ctx.save_facts(clean_run=clean, bad_run=bad, versions=[clean_v, bad_v], original_md5=ws.dvc_md5(DATA),
                       clean_commit=ws.head())

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("cause-named", _cause_named),
            GradedCheck("data-restored", _data_restored, guard=True),
            GradedCheck("reproduced-exactly", _reproduced),
            GradedCheck("history-intact", _history_intact, guard=True),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        ws = versioning.open_workspace(ctx.folder / "ws")
        ws.dvc("checkout", "--force", f"{DATA}.dvc")
        ws.dvc("repro", "--quiet")
        run = versioning.log_model_run(ws, experiment=f"drill-{ctx.name}", home=ctx.home)
        versioning.reproduce(run, home=ctx.home)
        (ctx.answer_path).write_text("cause: data-modified\n")

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "version-the-drift": _version_the_drift,
            "delete-the-workspace": lambda ctx: shutil.rmtree(ctx.folder / "ws"),
            "delete-the-registered-model": delete_model,
        }


def _ws(ctx: DrillContext) -> versioning.Workspace:
    try:
        return versioning.open_workspace(ctx.folder / "ws")
    except versioning.WorkspaceError:
        fail(f"{ctx.folder / 'ws'} is no longer a workspace: it is the evidence; `workbench drill reset` and restart.")
    raise AssertionError("unreachable")


def _cause_named(ctx: DrillContext) -> None:
    """answer.yaml names the cause the lineage of the production run shows."""
    answer = ctx.read_record(ctx.answer_path, CauseAnswer)
    tags = registry.client(ctx.home).get_run(ctx.fact("bad_run")).data.tags
    expected = "data-modified" if tags.get("data.modified") == "true" else None
    if answer.cause != expected:  # type: ignore[attr-defined]
        fail(f"'{answer.cause}' is not what the production run's lineage shows: read its tags "  # type: ignore[attr-defined]
             "(`workbench reproduce RUN_ID` lists the causes).")


def _data_restored(ctx: DrillContext) -> None:
    """The workspace's data is the versioned data again (same bytes as the .dvc file, the original hash)."""
    ws = _ws(ctx)
    original = ctx.fact("original_md5")
    if ws.dvc_md5(DATA) != original:
        fail(f"{DATA}.dvc now records {ws.dvc_md5(DATA)}, not the original {original}: `dvc add` of the changed "
             "data makes the drift official; restore the original with `git checkout` of the .dvc file.")
    if not (ws.path / DATA).exists() or file_md5(ws.path / DATA) != original:
        fail(f"{DATA} differs from its versioned bytes: `dvc checkout --force {DATA}.dvc`.")


def _reproduced(ctx: DrillContext) -> None:
    """A run trained on the versioned data was reproduced exactly (reproduction.json, matched)."""
    client = registry.client(ctx.home)
    for report in sorted((ctx.home / "reproductions").glob("*/reproduction.json")):
        data = json.loads(report.read_text())
        if not data.get("matched"):
            continue
        tags = client.get_run(data["run_id"]).data.tags
        if tags.get("data.md5") == ctx.fact("original_md5") and tags.get("data.modified") == "false" \
                and tags.get("workspace.path") == str(ctx.folder / "ws"):
            return
    fail("No reproduction of a run on the versioned data matched: restore the data, `dvc repro`, log a run with "
         "versioning.log_model_run(ws) and versioning.reproduce(run_id).")


def _history_intact(ctx: DrillContext) -> None:
    """The commit of the last clean run is still in the workspace's history."""
    ws = _ws(ctx)
    if ws.git("cat-file", "-t", ctx.fact("clean_commit"), check=False) != "commit":
        fail("The commit of the last clean run is gone: history was rewritten; runs pointing at it are lost.")


def _version_the_drift(ctx: DrillContext) -> None:
    ws = versioning.open_workspace(ctx.folder / "ws")
    ws.dvc("add", "--quiet", DATA)
    run = workspaces.logged_run(ctx, ws, "Version the cleaned-up data")
    versioning.reproduce(run, home=ctx.home)
    ctx.answer_path.write_text("cause: data-modified\n")


DRILL = Irreproducible()
