"""Building blocks of the drills about a production run that cannot be reproduced: the learner's answer (the cause
code ``workbench reproduce`` reports and the file concerned), the checks on the training workspace (``ws/`` in the
drill folder) and the guards on its history, data version and runs.

The facts a setup saves: ``bad_run`` (the production run), ``runs`` (every run that must survive) and
``keep_commit`` (a commit that must stay on a branch).
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from mlops_workbench import tracking, versioning
from mlops_workbench.drills import common, workspaces
from mlops_workbench.drills.base import Drill, DrillContext, GradedCheck
from mlops_workbench.labs.checks import fail
from mlops_workbench.versioning import DATA

Cause = Literal[
    "dirty-tree",
    "params-changed",
    "data-modified",
    "stale-outputs",
    "data-hash",
    "environment",
    "package-code",
    "nondeterministic",
]
WORKSPACE = "ws"


class CauseAnswer(BaseModel):
    """``answer.yaml``: the cause code ``reproduce`` reports and the file it concerns."""

    model_config = ConfigDict(extra="forbid")
    cause: Cause = Field(description="the cause code `workbench reproduce` reports for the production run")
    path: str = Field(description="the file the cause is about, relative to ws/ (e.g. params.yaml)")


def expected(tags: dict[str, str]) -> tuple[str | None, str | None]:
    """The cause code and file a run's lineage tags point at (pure)."""
    if tags.get("data.modified") == "true":
        return "data-modified", tags.get("data.path")
    stale = tags.get("dvc.stale", "false")
    if stale != "false":
        return "stale-outputs", stale.split(",")[0].split(":")[0]
    return None, None


def ws(ctx: DrillContext) -> versioning.Workspace:
    """The drill's training workspace; fails the check when it is gone."""
    try:
        return versioning.open_workspace(ctx.folder / WORKSPACE)
    except versioning.WorkspaceError:
        fail(
            f"{ctx.folder / WORKSPACE} is no longer a workspace: it is the evidence; `workbench drill reset` and "
            "start again."
        )
    raise AssertionError("unreachable")


def lineage(ctx: DrillContext) -> dict[str, Any]:
    """The lineage tags of the production run the setup logged."""
    tags: dict[str, Any] = versioning.run_lineage(ctx.wb, ctx.fact("bad_run"))["tags"]
    return tags


def cause_named(ctx: DrillContext) -> None:
    """answer.yaml names the cause and the file the lineage of the production run shows."""
    answer: Any = ctx.read_record(ctx.answer_path, CauseAnswer)
    cause, path = expected(lineage(ctx))
    if answer.cause != cause:
        fail(
            f"'{answer.cause}' is not what the production run's lineage shows: read its tags "
            "(`workbench reproduce RUN_ID` lists the causes)."
        )
    if answer.path.strip().removeprefix("./") != path:
        fail(f"'{answer.path}' is not the file the cause is about: the run's lineage tags name it.")


def reproduced(ctx: DrillContext) -> None:
    """A run logged from the workspace after the setup, on the data version the production run names, with nothing
    stale, was reproduced exactly."""
    client, bad = tracking.client(ctx.wb), ctx.fact("bad_run")
    since = client.get_run(bad).info.start_time
    experiments = [e.experiment_id for e in client.search_experiments()]
    runs = client.search_runs(
        experiments, f"tags.`workspace.path` = '{ctx.folder / WORKSPACE}' and attributes.start_time > {since}"
    )
    recorded = lineage(ctx)["data.md5"]
    for run in runs:
        report = ctx.wb.layout.reproduction(run.info.run_id) / "reproduction.json"
        tags = run.data.tags
        if (
            tags.get("data.md5") == recorded
            and tags.get("data.modified") == "false"
            and tags.get("dvc.stale") == "false"
            and report.is_file()
            and json.loads(report.read_text()).get("matched")
        ):
            return
    fail(
        "No run on the data version of the production run was reproduced exactly: bring the workspace to that "
        "version, `dvc repro`, commit, log a run with versioning.log_model_run(ws) and reproduce it "
        "(versioning.reproduce(run_id))."
    )


def data_version_kept(ctx: DrillContext) -> None:
    """The data file is there and its .dvc file still records the version the production run names."""
    workspace, recorded = ws(ctx), lineage(ctx)["data.md5"]
    if not (workspace.path / DATA).is_file():
        fail(f"{DATA} is gone: restore it (`git checkout -- {DATA}.dvc`, `dvc checkout --force {DATA}.dvc`).")
    if workspace.dvc_md5(DATA) != recorded:
        fail(
            f"{DATA}.dvc records {workspace.dvc_md5(DATA)}, not {recorded}, the version the production run names: "
            f"another version was made official. Put the .dvc file of that version back (git), then "
            f"`dvc checkout --force {DATA}.dvc`."
        )


def history_intact(ctx: DrillContext) -> None:
    """The commit the production run came from is still on a branch of the workspace."""
    if ctx.fact("keep_commit") not in ws(ctx).git("rev-list", "--all", check=False).split():
        fail(
            "A commit of the production run's history is on no branch any more: history was rewritten (git reset "
            "--hard?); `git reflog` finds it, `git reset --hard <commit>` brings it back."
        )


def runs_intact(ctx: DrillContext) -> None:
    """The runs the setup logged still exist (not deleted)."""
    client = tracking.client(ctx.wb)
    gone = [r for r in ctx.fact("runs") if client.get_run(r).info.lifecycle_stage != "active"]
    if gone:
        fail(f"Run(s) {gone} were deleted: they are the evidence; `tracking.client(lab.wb).restore_run(run_id)` each.")


def answer(ctx: DrillContext) -> None:
    """Write the answer the production run's lineage supports."""
    cause, path = expected(lineage(ctx))
    ctx.answer_path.write_text(f"cause: {cause}\npath: {path}\n")


def retrain_and_reproduce(ctx: DrillContext, message: str) -> None:
    """``dvc repro``, commit, push, log a run and reproduce it; then answer."""
    versioning.reproduce(ctx.wb, workspaces.logged_run(ctx, ws(ctx), message))
    answer(ctx)


Act = Callable[[DrillContext], Any]


def then(first: Act, destroy: Act) -> Callable[[DrillContext], None]:
    """A destructive fix: ``first`` (what looks like the repair), then ``destroy``."""

    def act(ctx: DrillContext) -> None:
        first(ctx)
        destroy(ctx)

    return act


def delete_workspace(ctx: DrillContext) -> None:
    shutil.rmtree(ctx.folder / WORKSPACE)


def delete_production_run(ctx: DrillContext) -> None:
    tracking.client(ctx.wb).delete_run(ctx.fact("bad_run"))


def reset_history(ctx: DrillContext) -> None:
    ws(ctx).git("reset", "--hard", "--quiet", "HEAD~1")


GUARDS = [
    GradedCheck("data-version-kept", data_version_kept, guard=True),
    GradedCheck("history-intact", history_intact, guard=True),
    GradedCheck("runs-intact", runs_intact, guard=True),
    GradedCheck("registry-intact", common.guard_registry_intact, guard=True),
]
"""The guards of every reproducibility drill: the data version, the history, the runs and the registry kept."""


def remember(
    ctx: DrillContext, workspace: versioning.Workspace, bad: str, runs: list[str], versions: list[str]
) -> None:
    """Save the facts the checks read: the production run, every run to keep, the versions, the commit to keep."""
    ctx.save_facts(bad_run=bad, runs=runs, versions=versions, keep_commit=workspace.head())


class ReproducibilityDrill(Drill):
    """A drill about a production run that cannot be reproduced: no services, an answer, the workspace's guards."""

    answer_model = CauseAnswer
    teardown = "delete-the-workspace"

    def services(self, ctx: DrillContext) -> list[str]:
        return []
