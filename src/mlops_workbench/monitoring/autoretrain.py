"""The monitor's retrain wiring: a newly firing alert group retrains a learner's workspace by itself.

:class:`RetrainWiring` names the git + DVC workspace to retrain, the registered model its candidates join and the
labelled CSV the gate judges them on (read again for each retrain, so a fresher window can be dropped in place).
:func:`check` refuses bad wiring before ``workbench monitor up`` starts anything; :func:`action` makes the
webhook receiver's ``on_firing``: :func:`mlops_workbench.monitoring.retrain.on_alert` on the workspace, with the
alert group as the retrain's cause. The receiver runs it once per alert group; the retrain writes every step (and
a rejected commit or a lost gate) to the audit log, and never moves an alias.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlops_workbench.errors import InputError
from mlops_workbench.workbench import Workbench

if TYPE_CHECKING:
    import pandas as pd

    from mlops_workbench.monitoring.webhook import OnFiring


class RetrainWiring(BaseModel):
    """Retrain ``workspace`` into ``model`` on each newly firing alert group, judged on the ``evaluation`` CSV."""

    model_config = ConfigDict(extra="forbid")

    workspace: Path = Field(description="the learner's git + DVC project (lab 02's pipeline)")
    model: str = Field(min_length=1, description="the registered model whose production the candidate must beat")
    evaluation: Path = Field(description="a labelled CSV (the Iris features and species): the gate's fresh window")

    @field_validator("workspace", "evaluation")
    @classmethod
    def _absolute(cls, path: Path) -> Path:
        return path.expanduser().resolve()

    def args(self) -> list[str]:
        """The ``monitor serve`` options that rebuild this wiring."""
        return [
            "--retrain-workspace",
            str(self.workspace),
            "--retrain-model",
            self.model,
            "--retrain-evaluation",
            str(self.evaluation),
        ]


def evaluation_window(path: Path) -> pd.DataFrame:
    """The labelled window in ``path``, checked against the Iris schema (raises naming the problem)."""
    from mlops_workbench import data

    if not path.is_file():
        raise InputError(
            f"The evaluation window {path} does not exist: write a labelled CSV (the four Iris features and "
            "species) of recent traffic there and name it with --retrain-evaluation."
        )
    try:
        return data.load_csv(path)
    except data.DataValidationError as err:
        raise InputError(f"The evaluation window {path} cannot judge a candidate: {err}") from None


def check(wb: Workbench, wiring: RetrainWiring) -> None:
    """Raise (naming the fix) when ``wiring`` cannot retrain: the folder is not a git + DVC workspace, the model is
    not registered, or the evaluation CSV is missing or breaks the schema."""
    from mlops_workbench import registry

    missing = [f"{marker}/" for marker in (".git", ".dvc") if not (wiring.workspace / marker).is_dir()]
    missing += [] if (wiring.workspace / "dvc.yaml").is_file() else ["dvc.yaml"]
    if missing:
        raise InputError(
            f"--retrain-workspace {wiring.workspace} is not a git + DVC workspace to retrain (no "
            f"{', no '.join(missing)}): name the learner's project, the git repository with DVC initialised whose "
            "dvc.yaml holds the training pipeline."
        )
    registry.list_versions(wb, wiring.model)  # an unknown model raises RegistryError naming the fix
    evaluation_window(wiring.evaluation)


def action(wb: Workbench, wiring: RetrainWiring) -> OnFiring:
    """The receiver's ``on_firing``: retrain the workspace with the alert group as cause (see the module)."""
    from mlops_workbench.monitoring.retrain import on_alert

    return on_alert(wb, wiring.workspace, lambda: evaluation_window(wiring.evaluation), model_name=wiring.model)
