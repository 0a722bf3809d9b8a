"""Lab 02's state folder as the reference solution leaves it after Exercises 1-3, for the lab 02 check tests."""

from __future__ import annotations

from pathlib import Path

from mlops_workbench import versioning
from mlops_workbench.data import load_iris_frame, save_csv
from mlops_workbench.labs.checks import Context
from mlops_workbench.versioning import DATA, Workspace
from mlops_workbench.workbench import Workbench

LAB = "02-versioning"


def build_solution_state(home: Path) -> Workspace:
    """In ``home``: the lab's git + DVC workspace with a default remote (added by hand, as the learner does), the
    data tracked and pushed, the prepare -> train -> evaluate pipeline declared, run and committed."""
    ws = versioning.init_workspace(
        Workbench.from_env(home), Context(lab=LAB, wb=Workbench.from_env(home)).workspace, with_remote=False
    )
    assert ws.remote_url() == ""  # the learner adds it
    ws.dvc("remote", "add", "--default", "local", str(versioning.default_remote(Workbench.from_env(home))))
    save_csv(load_iris_frame(), ws.path / DATA)
    ws.dvc("add", DATA)
    ws.commit("Track the data; default remote")
    ws.dvc("push")
    versioning.write_params(ws)
    versioning.add_pipeline(ws)
    ws.commit("Pipeline")
    ws.dvc("repro")
    ws.commit("Run the pipeline")
    return ws
