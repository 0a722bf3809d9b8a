"""A versioned training workspace for the versioning drills: git + DVC, the prepare -> train -> evaluate
pipeline, runs with lineage.

Only the package's versioning API is used (``init_workspace``, ``write_params``, ``add_pipeline``, ``dvc``,
``log_model_run``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from mlops_workbench import tracking, versioning
from mlops_workbench.data import save_csv
from mlops_workbench.drills.base import DrillContext
from mlops_workbench.versioning import DATA, Workspace


def create(ctx: DrillContext, data: pd.DataFrame, train: dict[str, Any] | None = None) -> Workspace:
    """A fresh workspace ``<drill folder>/ws`` with ``data`` tracked by DVC and the pipeline declared.

    Its DVC cache is the state folder's shared one: a drill prepared again from the same seed (a retry, or
    ``workbench drill validate`` rebuilding it for every case) gets its stage outputs from DVC's run cache."""
    tracking.up(ctx.wb, timeout=300)
    ws = versioning.init_workspace(ctx.wb, ctx.folder / "ws", reset=True, shared_cache=True)
    versioning.write_params(ws, train=train or {})
    save_csv(data, ws.path / DATA)
    ws.dvc("add", "--quiet", DATA)
    versioning.add_pipeline(ws)
    return ws


def logged_run(ctx: DrillContext, ws: Workspace, message: str, push: bool = True) -> str:
    """``dvc repro``, commit, push the data, log the run with its lineage; returns the run id."""
    ws.dvc("repro", "--quiet")
    ws.commit(message)
    if push:
        ws.dvc("push", "--quiet")
    return versioning.log_model_run(ctx.wb, ws, experiment=ctx.experiment)


def register(ctx: DrillContext, run_id: str) -> str:
    from mlops_workbench import registry

    return str(registry.register(ctx.wb, run_id, ctx.model_name).version)
