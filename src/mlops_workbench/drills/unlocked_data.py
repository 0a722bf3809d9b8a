"""Drill ``unlocked-data``: new data was committed (its .dvc file, pushed) without rerunning the pipeline, so
``dvc.lock`` still describes the old data and the production run's model and metrics belong to it: the Triple-V
reproduce of that run fails. The repair reruns the pipeline on the committed data and commits ``dvc.lock``; going
back to the old data, or rewriting history, is not a repair."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
from pydantic import Field

from mlops_workbench import tracking, versioning
from mlops_workbench.data import FEATURES, LABEL, load_iris_frame
from mlops_workbench.drills import common, workspaces
from mlops_workbench.drills import reproducibility as rp
from mlops_workbench.drills.base import AfterRepair, DrillContext, DrillError, GradedCheck, delete_model
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.versioning import DATA
from mlops_workbench.versioning.workspace import stale_inputs


class DataCommit(Variant):
    """What the data commit changed: rows added (noisy copies of one species), rows dropped, or labels corrected."""

    species: str
    added: int = Field(0, ge=0)
    dropped: int = Field(0, ge=0)
    relabelled_as: str | None = None
    message: str


class UnlockedData(rp.ReproducibilityDrill):
    variants = (
        DataCommit(key="rows-added", species="setosa", added=30, message="Data: 30 new setosa measurements"),
        DataCommit(
            key="rows-dropped",
            species="virginica",
            dropped=20,
            message="Data: drop 20 virginica rows the lab flagged as duplicates",
        ),
        DataCommit(
            key="labels-corrected",
            species="versicolor",
            relabelled_as="virginica",
            dropped=0,
            message="Data: relabel versicolor rows the botanist corrected",
        ),
    )
    spec = DrillSpec(
        name="unlocked-data",
        number=9,
        symptom="the newest production model fails its audit",
        root_cause=RootCause.PIPELINE_NOT_RERUN,
        symptoms=[RootCause.NOT_REPRODUCIBLE],
        fixes=[Change.PIPELINE_RERUN],
        incident=False,
        minutes=20,
        brief=(
            "The audit of the newest production model of `{model}` failed: `workbench reproduce RUN_ID` on its run "
            "answers NOT reproduced, although its commit is clean and its data versioned and pushed (the training "
            "workspace is `ws/` in {folder}). Write answer.yaml (`cause:` the code reproduce reports, `path:` the "
            "file it concerns), keep the data the team committed, and log a run of it that reproduces exactly, "
            "without rewriting history."
        ),
        hints=[
            "registry.get_alias(lab.wb, MODEL, 'production').run_id, then `workbench reproduce RUN_ID`: which cause, and "
            "which lineage tag of the run names the file?",
            "Compare what `dvc.lock` records for data/iris.csv with what data/iris.csv.dvc records (`dvc status` "
            "shows it too): the last commit changed one without the other.",
            "`dvc repro` in ws/, commit dvc.lock (and push), then versioning.log_model_run(ws) and "
            "versioning.reproduce(run_id): matched=True. Answer `cause: stale-outputs`, `path: data/iris.csv`.",
        ],
        answer=(
            "The data commit brought a new data/iris.csv.dvc but no new dvc.lock: nobody ran `dvc repro`, so the run "
            "logged from that commit carried the old model and metrics (its lineage tag dvc.stale lists the data). "
            "Rebuilding the commit trains on the new data and gets other metrics. Cause: stale-outputs, path "
            "data/iris.csv. Rerun the pipeline, commit dvc.lock with the data, log a run and reproduce it. Prevent "
            "it: CI runs `dvc status` (or `dvc repro --dry`) and fails when dvc.lock is behind its inputs."
        ),
    )

    def setup(self, ctx: DrillContext, variant: DataCommit) -> None:
        data = load_iris_frame()
        ws = workspaces.create(ctx, data)
        first = workspaces.logged_run(ctx, ws, "Train on the Iris export")
        changed(variant, data, ctx.fact("seed")).to_csv(ws.path / DATA, index=False)
        ws.dvc("add", "--quiet", DATA)
        ws.commit(variant.message)
        ws.dvc("push", "--quiet")
        bad = versioning.log_model_run(ctx.wb, ws, experiment=ctx.experiment)
        if tracking.client(ctx.wb).get_run(bad).data.tags.get("dvc.stale", "false") == "false":
            raise DrillError(
                f"The setup of '{ctx.name}' left dvc.lock in step with the data: the drill would not "
                "be broken. Report this bug."
            )
        versions = [workspaces.register(ctx, first), workspaces.register(ctx, bad)]
        for version, reason in zip(versions, ("release 1", variant.message), strict=True):
            common.ship(ctx, version, reason)
        rp.remember(ctx, ws, bad, [first, bad], versions)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("cause-named", rp.cause_named),
            GradedCheck("lock-committed", _lock_committed),
            GradedCheck("reproduced-exactly", rp.reproduced),
            *rp.GUARDS,
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        rp.retrain_and_reproduce(ctx, "Rerun the pipeline on the committed data")

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "delete-the-workspace": rp.delete_workspace,
            "revert-the-data-commit": _revert_the_data,
            "reset-the-history": rp.then(rp.answer, rp.reset_history),
            "delete-the-production-run": AfterRepair(self.reference_fix, rp.delete_production_run),
            "delete-the-registered-model": AfterRepair(self.reference_fix, delete_model),
        }


def changed(variant: DataCommit, data: pd.DataFrame, seed: int) -> pd.DataFrame:
    """``data`` after the variant's commit (seeded where it draws rows)."""
    import numpy as np

    out = data.copy()
    rows = out.index[out[LABEL] == variant.species]
    if variant.relabelled_as is not None:
        out.loc[rows[::5], LABEL] = variant.relabelled_as
    if variant.dropped:
        out = out.drop(index=rows[-variant.dropped :])
    if variant.added:
        rng = np.random.default_rng(seed)
        new = out.loc[rows].sample(variant.added, replace=True, random_state=seed).reset_index(drop=True)
        new[FEATURES] = (new[FEATURES] + rng.normal(0, 0.1, (variant.added, len(FEATURES)))).clip(0.1, 9.9).round(1)
        out = pd.concat([out, new], ignore_index=True)
    return out.reset_index(drop=True)


def _lock_committed(ctx: DrillContext) -> None:
    """The pipeline was rerun on the committed data and dvc.lock is committed with it."""
    ws = rp.ws(ctx)
    stale = stale_inputs(ws)
    if stale:
        fail(
            f"dvc.lock is behind its inputs ({', '.join(stale)}): the outputs were never rebuilt from them. "
            "Run `dvc repro` in ws/."
        )
    if ws.git("status", "--porcelain", "--", "dvc.lock").strip():
        fail("dvc.lock is rebuilt but not committed: commit it, so the commit names the outputs of its own data.")


def _revert_the_data(ctx: DrillContext) -> None:
    """Undo the data commit instead of finishing it, then retrain on the old data."""
    ws = rp.ws(ctx)
    ws.git("revert", "--no-edit", "HEAD")
    ws.dvc("checkout", "--force", f"{DATA}.dvc")
    rp.retrain_and_reproduce(ctx, "Retrain after reverting the data commit")


DRILL = UnlockedData()
