"""Drill ``irreproducible``: the production model cannot be reproduced because its data changed outside DVC.

The setup edits ``data/iris.csv`` in place and reruns the pipeline's stages as single items: a plain
``dvc repro`` would also re-record the changed data file in ``data/iris.csv.dvc`` (DVC commits a changed data
source), versioning the drift and leaving nothing to restore. The checks only compare hashes; they never run DVC.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable

from mlops_workbench import tracking, versioning
from mlops_workbench.data import load_iris_frame
from mlops_workbench.drills import common, workspaces
from mlops_workbench.drills import reproducibility as rp
from mlops_workbench.drills.base import AfterRepair, DrillContext, DrillError, GradedCheck, delete_model
from mlops_workbench.drills.causes import Change, RootCause
from mlops_workbench.drills.spec import DrillSpec
from mlops_workbench.drills.variants import Variant
from mlops_workbench.labs.checks import fail
from mlops_workbench.versioning import DATA
from mlops_workbench.versioning.workspace import file_md5


class EditVariant(Variant):
    """The edit made to the data in place: one column of one species scaled and shifted."""

    column: str
    species: str
    factor: float = 1.0
    shift: float = 0.0


class Irreproducible(rp.ReproducibilityDrill):
    variants = (
        EditVariant(key="versicolor-sepal-width", column="sepal_width", species="versicolor", factor=1.15),
        EditVariant(key="setosa-petal-length", column="petal_length", species="setosa", shift=0.4),
        EditVariant(key="virginica-sepal-length", column="sepal_length", species="virginica", factor=0.9),
    )
    spec = DrillSpec(
        name="irreproducible",
        number=3,
        symptom="an audit that cannot rebuild the production model",
        root_cause=RootCause.UNVERSIONED_DATA,
        symptoms=[RootCause.NOT_REPRODUCIBLE],
        fixes=[Change.DATA_RESTORED, Change.PIPELINE_RERUN],
        incident=False,
        minutes=20,
        brief=(
            "An auditor asks you to rebuild the production model of `{model}` from its recorded lineage (its run is "
            "in the registry; the training workspace is `ws/` in {folder}). `workbench reproduce RUN_ID` answers NOT "
            "reproduced. Write answer.yaml (`cause:` the code reproduce reports, `path:` the file it concerns), "
            "bring the workspace back to what the production run recorded without rewriting history, then log a "
            "clean run that reproduces exactly."
        ),
        hints=[
            "registry.get_alias(lab.wb, MODEL, 'production').run_id, then `workbench reproduce RUN_ID`: read its causes and "
            "the run's lineage tags (data.path, data.md5, data.modified).",
            "`dvc status` in ws/ compares each tracked file with the hash its .dvc file records. Bring back the "
            "recorded bytes rather than recording the current ones: `dvc add`, and a plain `dvc repro` too, would "
            "make the current bytes the new version.",
            "`dvc checkout --force data/iris.csv.dvc`, then ws.dvc('repro'), commit, versioning.log_model_run(ws) and "
            "versioning.reproduce(run_id): matched=True.",
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

    def setup(self, ctx: DrillContext, variant: EditVariant) -> None:
        original = load_iris_frame()
        ws = workspaces.create(ctx, original)
        clean = workspaces.logged_run(ctx, ws, "Train on the versioned Iris data")
        drifted = original.copy()  # a "quick clean-up" of one column for one species, never dvc-added
        rows = drifted["species"] == variant.species
        drifted.loc[rows, variant.column] = drifted.loc[rows, variant.column] * variant.factor + variant.shift
        drifted.round(3).to_csv(ws.path / DATA, index=False)
        # every stage, each alone, in the order given: the data's .dvc file (not a target) stays as it was
        ws.dvc("repro", "--quiet", "--single-item", *(stage.name for stage in versioning.PIPELINE))
        bad = versioning.log_model_run(ctx.wb, ws, experiment=ctx.experiment)
        recorded = tracking.client(ctx.wb).get_run(bad).data.tags["data.md5"]
        if file_md5(ws.path / DATA) == recorded:
            raise DrillError(
                f"The setup of '{ctx.name}' left {DATA} equal to the version its run recorded: "
                "the drill would not be broken. Report this bug."
            )
        versions = [workspaces.register(ctx, clean), workspaces.register(ctx, bad)]
        common.ship(ctx, versions[1], "retrained on the cleaned-up data", params={"min_accuracy": 0.5})
        rp.remember(ctx, ws, bad, [clean, bad], versions)

    def checks(self) -> list[GradedCheck]:
        return [
            GradedCheck("cause-named", rp.cause_named),
            GradedCheck("data-restored", _data_restored),
            GradedCheck("reproduced-exactly", rp.reproduced),
            *rp.GUARDS,
        ]

    def reference_fix(self, ctx: DrillContext) -> None:
        _restore_and_reproduce(ctx)

    def destructive_fixes(self) -> dict[str, Callable[[DrillContext], None]]:
        return {
            "version-the-drift": _version_the_drift,
            "delete-the-data": rp.then(rp.answer, lambda ctx: shutil.rmtree(ctx.folder / rp.WORKSPACE / "data")),
            "delete-the-workspace": rp.delete_workspace,
            "reset-the-history": rp.then(rp.answer, rp.reset_history),
            "delete-the-production-run": AfterRepair(self.reference_fix, rp.delete_production_run),
            "delete-the-registered-model": AfterRepair(self.reference_fix, delete_model),
        }


def _data_restored(ctx: DrillContext) -> None:
    """The workspace's data has the md5 the production run's lineage recorded (data.md5)."""
    path, recorded = rp.ws(ctx).path / DATA, rp.lineage(ctx)["data.md5"]
    actual = file_md5(path) if path.is_file() else "missing"
    if actual != recorded:
        fail(
            f"{DATA} has md5 {actual}, not {recorded}, the version the run's lineage recorded: "
            f"`dvc checkout --force {DATA}.dvc` restores the versioned bytes."
        )


def _restore_and_reproduce(ctx: DrillContext) -> None:
    """The reference fix: the versioned bytes back (no `dvc add`, no plain repro first), retrain, reproduce."""
    rp.ws(ctx).dvc("checkout", "--force", f"{DATA}.dvc")
    rp.retrain_and_reproduce(ctx, "Retrain on the versioned data")


def _version_the_drift(ctx: DrillContext) -> None:
    rp.ws(ctx).dvc("add", "--quiet", DATA)
    rp.retrain_and_reproduce(ctx, "Version the cleaned-up data")


DRILL = Irreproducible()
