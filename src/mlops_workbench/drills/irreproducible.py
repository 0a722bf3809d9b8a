"""Drill ``irreproducible``: the production model cannot be reproduced because its data changed outside DVC.

The setup edits ``data/iris.csv`` in place and reruns the pipeline's stages as single items: a plain
``dvc repro`` would also re-record the changed data file in ``data/iris.csv.dvc`` (DVC commits a changed data
source), versioning the drift and leaving nothing to restore. The checks only compare hashes; they never run DVC.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench import settings, tracking, versioning
from mlops_workbench.data import load_iris_frame
from mlops_workbench.drills import common, workspaces
from mlops_workbench.drills.base import Drill, DrillContext, DrillError, GradedCheck, delete_model
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.labs.checks import fail
from mlops_workbench.versioning import DATA
from mlops_workbench.versioning.workspace import file_md5

Cause = Literal["dirty-tree", "params-changed", "data-modified", "stale-outputs", "data-hash", "environment",
                "package-code", "nondeterministic"]


class CauseAnswer(BaseModel):
    """``answer.yaml`` of the drill: the cause code ``reproduce`` reports and the file that changed."""

    model_config = ConfigDict(extra="forbid")
    cause: Cause = Field(description="the cause code `workbench reproduce` reports for the production run")
    path: str = Field(description="the file that changed outside DVC, relative to ws/ (e.g. params.yaml)")


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
            "NOT reproduced. Write answer.yaml (`cause:` the code reproduce reports, `path:` the file that changed), "
            "restore the workspace to the data version the run recorded without rewriting history, then log a "
            "clean run and reproduce it exactly."
        ),
        hints=[
            "registry.get_alias('drill-irreproducible', 'production').run_id, then `workbench reproduce RUN_ID`: "
            "read its causes and the run's lineage tags (data.path, data.md5, data.modified).",
            "`dvc status` in ws/ shows data/iris.csv modified since its `dvc add`. `dvc checkout --force "
            "data/iris.csv.dvc` brings back the versioned bytes. Not `dvc add`, and not `dvc repro` first: both "
            "record the changed bytes as a new version.",
            "Then ws.dvc('repro'), commit, versioning.log_model_run(ws) and versioning.reproduce(run_id): "
            "matched=True.",
        ],
        answer=(
            "The run was logged with data.modified=true: someone edited data/iris.csv in place and retrained, so "
            "the bytes it trained on were never versioned. Cause: data-modified, path data/iris.csv. Restore the "
            "versioned data (dvc checkout; a `dvc add` or a plain `dvc repro` would version the drift instead), "
            "retrain (dvc repro), commit, log a run from a clean tree and reproduce it: same commit + data hash + "
            "params give the same metrics. Prevent it: CI refuses to log a run whose lineage says dirty, modified "
            "or stale."
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
        # every stage, each alone, in the order given: the data's .dvc file (not a target) stays as it was
        ws.dvc("repro", "--quiet", "--single-item", *(stage.name for stage in versioning.PIPELINE))
        bad = versioning.log_model_run(ws, experiment=f"drill-{ctx.name}", home=ctx.home)
        recorded = tracking.client(ctx.home).get_run(bad).data.tags["data.md5"]
        if file_md5(ws.path / DATA) == recorded:
            raise DrillError(f"The setup of '{ctx.name}' left {DATA} equal to the version its run recorded: "
                             "the drill would not be broken. Report this bug.")
        versions = [workspaces.register(ctx, clean), workspaces.register(ctx, bad)]
        common.ship(ctx, versions[1], "retrained on the cleaned-up data", params={"min_accuracy": 0.5})
        ctx.save_facts(clean_run=clean, bad_run=bad, versions=versions, clean_commit=ws.head())

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("cause-named", _cause_named),
            GradedCheck("data-restored", _data_restored),
            GradedCheck("reproduced-exactly", _reproduced),
            GradedCheck("data-version-kept", _data_version_kept, guard=True),
            GradedCheck("history-intact", _history_intact, guard=True),
            GradedCheck("runs-intact", _runs_intact, guard=True),
            GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        _restore_and_reproduce(ctx)

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        def reset_history(ctx: DrillContext) -> None:
            versioning.open_workspace(ctx.folder / "ws").git("reset", "--hard", "--quiet", "HEAD~1")

        return {
            "version-the-drift": _version_the_drift,
            "delete-the-data": _then(_answer, lambda ctx: shutil.rmtree(ctx.folder / "ws" / "data")),
            "reset-the-history": _then(_answer, reset_history),
            "delete-the-production-run": _then(_restore_and_reproduce,
                                               lambda ctx: tracking.client(ctx.home).delete_run(ctx.fact("bad_run"))),
            "delete-the-registered-model": _then(_restore_and_reproduce, delete_model),
        }


def _ws(ctx: DrillContext) -> versioning.Workspace:
    try:
        return versioning.open_workspace(ctx.folder / "ws")
    except versioning.WorkspaceError:
        fail(f"{ctx.folder / 'ws'} is no longer a workspace: it is the evidence; `workbench drill reset` and restart.")
    raise AssertionError("unreachable")


def _lineage(ctx: DrillContext) -> dict[str, Any]:
    """The lineage tags of the production run the setup logged."""
    return versioning.run_lineage(ctx.fact("bad_run"), home=ctx.home)["tags"]


def _cause_named(ctx: DrillContext) -> None:
    """answer.yaml names the cause and the changed file the lineage of the production run shows."""
    answer: Any = ctx.read_record(ctx.answer_path, CauseAnswer)
    tags = _lineage(ctx)
    expected = "data-modified" if tags.get("data.modified") == "true" else None
    if answer.cause != expected:
        fail(f"'{answer.cause}' is not what the production run's lineage shows: read its tags "
             "(`workbench reproduce RUN_ID` lists the causes).")
    if answer.path.strip().removeprefix("./") != tags.get("data.path"):
        fail(f"'{answer.path}' is not the file that changed: the lineage tag data.path names the file DVC tracks.")


def _data_restored(ctx: DrillContext) -> None:
    """The workspace's data has the md5 the production run's lineage recorded (data.md5)."""
    path, recorded = _ws(ctx).path / DATA, _lineage(ctx)["data.md5"]
    actual = file_md5(path) if path.is_file() else "missing"
    if actual != recorded:
        fail(f"{DATA} has md5 {actual}, not {recorded}, the version the run's lineage recorded: "
             f"`dvc checkout --force {DATA}.dvc` restores the versioned bytes.")


def _reproduced(ctx: DrillContext) -> None:
    """A run logged from the workspace after the setup, on the recorded data version, was reproduced exactly."""
    client, bad = tracking.client(ctx.home), ctx.fact("bad_run")
    since = client.get_run(bad).info.start_time
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(experiments, f"tags.`workspace.path` = '{ctx.folder / 'ws'}' "
                                           f"and attributes.start_time > {since}")
    recorded = _lineage(ctx)["data.md5"]
    for run in runs:
        report = settings.layout(ctx.home).reproduction(run.info.run_id) / "reproduction.json"
        tags = run.data.tags
        if tags.get("data.md5") == recorded and tags.get("data.modified") == "false" and report.is_file() \
                and json.loads(report.read_text()).get("matched"):
            return
    fail("No run on the versioned data was reproduced exactly: restore the data, `dvc repro`, commit, log a run "
         "with versioning.log_model_run(ws) and reproduce it (versioning.reproduce(run_id)).")


def _data_version_kept(ctx: DrillContext) -> None:
    """The data file is there and its .dvc file still records the version the run's lineage names."""
    ws, recorded = _ws(ctx), _lineage(ctx)["data.md5"]
    if not (ws.path / DATA).is_file():
        fail(f"{DATA} is gone: restore it (`git checkout -- {DATA}.dvc`, `dvc checkout --force {DATA}.dvc`).")
    if ws.dvc_md5(DATA) != recorded:
        fail(f"{DATA}.dvc records {ws.dvc_md5(DATA)}, not {recorded}, the version the run used: `dvc add` of the "
             f"changed data made the drift official. `git checkout -- {DATA}.dvc`, `dvc checkout --force {DATA}.dvc`.")


def _history_intact(ctx: DrillContext) -> None:
    """The commit of the production run is still on a branch of the workspace."""
    if ctx.fact("clean_commit") not in _ws(ctx).git("rev-list", "--all", check=False).split():
        fail("The commit of the production run is on no branch any more: history was rewritten (git reset --hard?); "
             "`git reflog` finds it, `git reset --hard <commit>` brings it back.")


def _runs_intact(ctx: DrillContext) -> None:
    """The clean run and the production run still exist (not deleted)."""
    client = tracking.client(ctx.home)
    runs = (ctx.fact("clean_run"), ctx.fact("bad_run"))
    gone = [r for r in runs if client.get_run(r).info.lifecycle_stage != "active"]
    if gone:
        fail(f"Run(s) {gone} were deleted: they are the evidence; `tracking.client().restore_run(run_id)` each.")


def _answer(ctx: DrillContext) -> None:
    ctx.answer_path.write_text(f"cause: data-modified\npath: {DATA}\n")


def _retrain_and_reproduce(ctx: DrillContext, ws: versioning.Workspace, message: str) -> None:
    versioning.reproduce(workspaces.logged_run(ctx, ws, message), home=ctx.home)
    _answer(ctx)


def _restore_and_reproduce(ctx: DrillContext) -> None:
    """The reference fix: the versioned bytes back (no `dvc add`, no plain repro first), retrain, reproduce."""
    ws = versioning.open_workspace(ctx.folder / "ws")
    ws.dvc("checkout", "--force", f"{DATA}.dvc")
    _retrain_and_reproduce(ctx, ws, "Retrain on the versioned data")


Act = Callable[[DrillContext], Any]


def _then(first: Act, destroy: Act) -> Callable[[DrillContext], None]:
    """A destructive fix: ``first`` (what looks like the repair), then ``destroy``."""

    def act(ctx: DrillContext) -> None:
        first(ctx)
        destroy(ctx)

    return act


def _version_the_drift(ctx: DrillContext) -> None:
    ws = versioning.open_workspace(ctx.folder / "ws")
    ws.dvc("add", "--quiet", DATA)
    _retrain_and_reproduce(ctx, ws, "Version the cleaned-up data")


DRILL = Irreproducible()
